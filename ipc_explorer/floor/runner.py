"""The parent side of a floor run: check the request, create the kernel objects, start the
receiver then the sender, collect their one-line results, remove everything, report."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipc_explorer.floor.families import family_of
from ipc_explorer.floor.protocol import DEFAULT_TIMEOUT_S, MECHANISMS, PATTERNS, FloorError
from ipc_explorer.floor.resources import create_resources, remove_resources

#: The directory that holds the ``ipc_explorer`` package: the children import it from there
#: even when it is not installed.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def run_floor(
    mechanism: str,
    pattern: str,
    size: int,
    count: int,
    pin: Sequence[int] | str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Run one floor measurement in two fresh child processes and return its figures.

    ``pin`` is ``(sender_cpu, receiver_cpu)`` or ``"S,R"``; None lets the OS place them.
    Every kernel object is removed before returning, whatever happens.
    """
    pin = parse_pin(pin) if isinstance(pin, str) else (tuple(pin) if pin else None)
    _validate(mechanism, pattern, size, count, pin)
    deadline = time.monotonic() + timeout
    setup: dict[str, Any] = {}
    parent_fds: list[int] = []
    children: dict[str, _Child] = {}
    try:
        setup, parent_fds = create_resources(mechanism, size)
        receiver = children["receiver"] = _Child.start(
            "receiver", mechanism, pattern, size, count, setup, pin[1] if pin else None
        )
        ready = receiver.read_json(deadline)
        if ready is None:
            raise FloorError(f"receiver exited before it was ready (exit code {receiver.code()})")
        setup["port"] = ready.get("port")
        children["sender"] = _Child.start(
            "sender", mechanism, pattern, size, count, setup, pin[0] if pin else None
        )
        for fd in parent_fds:  # the children hold their own ends now
            os.close(fd)
        parent_fds = []
        results = _collect(children, deadline)
        for child in children.values():
            child.wait(deadline)
        return _report(mechanism, pattern, size, count, pin, results)
    finally:
        for child in reversed(children.values()):  # sender first: it is the one that drives
            child.terminate()
        for child in children.values():
            child.stop()
        for fd in parent_fds:
            os.close(fd)
        remove_resources(setup)


def _validate(
    mechanism: str, pattern: str, size: int, count: int, pin: tuple[int, ...] | None
) -> None:
    """Refuse early, with a clear message, what a mechanism cannot carry."""
    if mechanism not in MECHANISMS:
        raise FloorError(f"unknown mechanism {mechanism!r}; one of {', '.join(MECHANISMS)}")
    if pattern not in PATTERNS:
        raise FloorError(f"unknown pattern {pattern!r}; one of {', '.join(PATTERNS)}")
    if count < 1:
        raise FloorError("--count must be at least 1")
    low, high = family_of(mechanism).wire_sizes(mechanism)
    if not low <= size <= high:
        raise FloorError(f"{mechanism} carries messages of {low}..{high} wire bytes, not {size}")
    if pin is not None:
        allowed = os.sched_getaffinity(0)
        if len(pin) != 2 or not set(pin) <= allowed:
            raise FloorError(f"--pin needs two CPUs among {sorted(allowed)}, got {pin}")


def parse_pin(text: str) -> tuple[int, int]:
    """``"S,R"`` as (sender CPU, receiver CPU)."""
    try:
        sender, receiver = (int(part) for part in text.split(","))
    except ValueError:
        raise FloorError(f"--pin takes S,R (two CPU numbers), not {text!r}") from None
    return sender, receiver


def _child_env() -> dict[str, str]:
    """This environment, with the package's root first on PYTHONPATH."""
    env = dict(os.environ)
    root = str(PACKAGE_ROOT)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class _Child:
    """One child process of the floor and the lines it writes on its stdout."""

    def __init__(self, role: str, proc: subprocess.Popen[bytes]):
        self.role = role
        self.proc = proc
        self.fd = proc.stdout.fileno() if proc.stdout else -1
        self.pending = b""
        self.eof = False

    @classmethod
    def start(
        cls,
        role: str,
        mechanism: str,
        pattern: str,
        size: int,
        count: int,
        setup: dict[str, Any],
        cpu: int | None,
    ) -> _Child:
        args = [
            sys.executable, "-m", "ipc_explorer.floor", "--role", role,
            "--mechanism", mechanism, "--pattern", pattern,
            "--size", str(size), "--count", str(count),
            "--setup", json.dumps(setup), "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        if cpu is not None:
            args += ["--cpu", str(cpu)]
        fds = setup.get("fds")
        ends = ("s2r_w", "r2s_r") if role == "sender" else ("s2r_r", "r2s_w")
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            bufsize=0,
            pass_fds=[fds[end] for end in ends] if fds else (),
            start_new_session=True,  # no terminal signal reaches it: the parent decides
            env=_child_env(),
        )
        return cls(role, proc)

    def fill(self) -> None:
        chunk = os.read(self.fd, 65536)
        self.pending += chunk
        self.eof = not chunk

    def pop_json(self) -> dict[str, Any] | None:
        line, newline, rest = self.pending.partition(b"\n")
        if not newline:
            return None
        self.pending = rest
        return json.loads(line)

    def read_json(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line, or None at end of output."""
        while (message := self.pop_json()) is None and not self.eof:
            if not select.select([self.fd], [], [], _remaining(deadline))[0]:
                raise FloorError(f"{self.role} said nothing before the deadline")
            self.fill()
        return message

    def code(self) -> int | None:
        try:
            return self.proc.wait(1.0)
        except subprocess.TimeoutExpired:
            return None

    def wait(self, deadline: float) -> None:
        code = self.proc.wait(max(_remaining(deadline), 0.1))
        if code:
            raise FloorError(f"{self.role} exited with code {code}")

    def terminate(self) -> None:
        """SIGTERM, so that the child removes what it knows before it goes."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        """Terminate, and SIGKILL if the child does not go within two seconds."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FloorError("the run did not finish before the deadline; children were stopped")
    return left


def _collect(children: dict[str, _Child], deadline: float) -> dict[str, dict[str, Any]]:
    """Wait for the result line of every child; a child that dies without one ends the run."""
    results: dict[str, dict[str, Any]] = {}
    while len(results) < len(children):
        waiting = []
        for role, child in children.items():
            if role in results:
                continue
            if (message := child.pop_json()) is not None:
                results[role] = message
            elif child.eof:
                raise FloorError(f"{role} exited without a result (exit code {child.code()})")
            else:
                waiting.append(child)
        if waiting:
            ready = select.select([c.fd for c in waiting], [], [], _remaining(deadline))[0]
            for child in waiting:
                if child.fd in ready:
                    child.fill()
    return results


def _report(
    mechanism: str,
    pattern: str,
    size: int,
    count: int,
    pin: tuple[int, ...] | None,
    results: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Turn the children's raw clocks and counts into the published figures."""
    sender, receiver = results["sender"], results["receiver"]
    if pattern == "stream":
        # First message sent (sender clock) to last message received (receiver clock): both
        # are CLOCK_MONOTONIC, one clock for every process of the machine.
        received = receiver["received"]
        end_ns = receiver["t_last_ns"] or sender["t0_ns"]
        rtt_us = None
    else:
        received = sender["completed"]
        end_ns = sender["t_end_ns"]
        rtt_us = {k: round(v / 1000, 2) for k, v in sender["rtt_ns"].items()} if received else None
    elapsed = (end_ns - sender["t0_ns"]) / 1e9
    rate = received / elapsed if elapsed > 0 else 0.0
    return {
        "mechanism": mechanism,
        "pattern": pattern,
        "size": size,
        "count": count,
        "received": received,
        "elapsed_s": round(elapsed, 6),
        "msgs_per_s": round(rate, 1),
        "mb_per_s": round(rate * size / 1e6, 3),
        "rtt_us": rtt_us,
        "placement": _placement(pin, sender["placement"], receiver["placement"]),
    }


def _placement(pin: tuple[int, ...] | None, sender: dict, receiver: dict) -> str:
    """Say where each side ran: latency depends on it more than on most other things."""
    if pin is not None:
        same = "same CPU" if pin[0] == pin[1] else "different CPUs"
        return (
            f"pinned: sender on CPU {pin[0]}, receiver on CPU {pin[1]} ({same}; last ran on "
            f"CPU {sender['last_cpu']} and CPU {receiver['last_cpu']})"
        )

    def side(name: str, info: dict) -> str:
        return f"{name} allowed CPUs {info['affinity']}, last ran on CPU {info['last_cpu']}"

    return f"unpinned (OS placement): {side('sender', sender)}; {side('receiver', receiver)}"


def format_result(result: dict[str, Any]) -> str:
    """One line for a person: rate, throughput, round trips and placement."""
    line = (
        f"{result['mechanism']} {result['pattern']} {result['size']} B x {result['count']}: "
        f"received {result['received']} in {result['elapsed_s']:.4f} s, "
        f"{result['msgs_per_s']:,.0f} msg/s, {result['mb_per_s']:.2f} MB/s"
    )
    if rtt := result["rtt_us"]:
        line += ", rtt µs " + " ".join(f"{k} {v:.1f}" for k, v in rtt.items())
    return f"{line} [{result['placement']}]"
