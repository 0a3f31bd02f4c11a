"""The floor: a bare Python loop per IPC mechanism, to compare the instrument against.

ipc_explorer measures every message (stage timings, codec, checksums, telemetry). This
script does the same transport work with nothing else: one sender process and one receiver
process, the same kernel objects and framing, the tightest loop plain Python allows. The gap
between the instrument and this floor is the cost of the instrument; the floor itself is the
cost of the mechanism as seen from Python.

    python benchmarks/floor.py --mechanism tcp --pattern ping-pong --size 100 --count 20000

Only the stdlib and posix_ipc are imported (never ipc_explorer), so that nothing of the
instrument can leak into the floor. ``run_floor`` gives the same result to another script.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import json
import math
import mmap
import os
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import posix_ipc

MECHANISMS = ("pipe", "fifo", "unix-stream", "unix-dgram", "tcp", "udp", "shm", "mq", "http")
PATTERNS = ("stream", "ping-pong")
STREAMS = ("pipe", "fifo", "unix-stream", "tcp")
DGRAMS = ("unix-dgram", "udp")

#: Uncounted round trips before timing starts: both sides connected, caches and code warm.
WARMUP = 100
#: Slots per shared-memory ring (each slot holds one framed message).
SHM_SLOTS = 16
#: The three semaphores of a ring and their initial values.
SEMAPHORES = {"empty": SHM_SLOTS, "full": 0, "mutex": 1}
#: Little-endian u32 length prefix of every frame on a byte stream and in a shm slot.
LEN = struct.Struct("<I")
#: Datagram layout: kind byte, then a u32 sequence number (used to match UDP echoes).
KIND_WARMUP, KIND_MESSAGE, KIND_END = b"W"[0], b"M"[0], b"E"[0]
SEQ = struct.Struct("<I")
UDP_MAX = 65507
#: UDP: an echo not back within this time is a loss; the receiver stops after this silence.
UDP_ECHO_TIMEOUT_S = 0.2
UDP_SILENCE_S = 0.5
UDP_END_MARKERS = 5
DEFAULT_TIMEOUT_S = 300.0

HTTP_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
HTTP_OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
HEAD_END = b"\r\n\r\n"


class FloorError(Exception):
    """A run that cannot be done as asked (bad size for the mechanism, a child failed)."""


# --------------------------------------------------------------------------- parent side


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
    pin = _parse_pin(pin) if isinstance(pin, str) else (tuple(pin) if pin else None)
    _validate(mechanism, pattern, size, count, pin)
    deadline = time.monotonic() + timeout
    setup: dict[str, Any] = {}
    parent_fds: list[int] = []
    children: dict[str, _Child] = {}
    try:
        setup, parent_fds = _create_resources(mechanism, size)
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
        _remove_resources(setup)


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
    low, high = {
        "unix-dgram": (SEQ.size + 1, _unix_dgram_max()),
        "udp": (SEQ.size + 1, UDP_MAX),
        "mq": (1, posix_ipc.QUEUE_MESSAGE_SIZE_MAX_DEFAULT),
        "http": (len(_http_head(65535) % 0), 1 << 30),
    }.get(mechanism, (LEN.size, 1 << 30))
    if not low <= size <= high:
        raise FloorError(f"{mechanism} carries messages of {low}..{high} wire bytes, not {size}")
    if pin is not None:
        allowed = os.sched_getaffinity(0)
        if len(pin) != 2 or not set(pin) <= allowed:
            raise FloorError(f"--pin needs two CPUs among {sorted(allowed)}, got {pin}")


def _unix_dgram_max() -> int:
    """Linux refuses a Unix datagram longer than the send buffer minus 32 bytes (EMSGSIZE)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        return probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - 32


def _parse_pin(text: str) -> tuple[int, int]:
    try:
        sender, receiver = (int(part) for part in text.split(","))
    except ValueError:
        raise FloorError(f"--pin takes S,R (two CPU numbers), not {text!r}") from None
    return sender, receiver


def _create_resources(mechanism: str, size: int) -> tuple[dict[str, Any], list[int]]:
    """Create the kernel objects in the parent, so the parent can always remove them.

    Both directions exist in both patterns: the warm-up is a round trip in every case.
    """
    setup: dict[str, Any] = {"mechanism": mechanism}
    fds: list[int] = []
    tag = f"ipcfloor-{os.getpid()}-{secrets.token_hex(4)}"
    if mechanism == "pipe":
        s2r_r, s2r_w = os.pipe()
        r2s_r, r2s_w = os.pipe()
        fds = [s2r_r, s2r_w, r2s_r, r2s_w]
        setup["fds"] = {"s2r_r": s2r_r, "s2r_w": s2r_w, "r2s_r": r2s_r, "r2s_w": r2s_w}
    elif mechanism in ("fifo", "unix-stream", "unix-dgram"):
        setup["dir"] = tempfile.mkdtemp(prefix=tag + "-")  # mode 0700
        setup["s2r"] = os.path.join(setup["dir"], "s2r")
        setup["r2s"] = os.path.join(setup["dir"], "r2s")
        if mechanism == "fifo":
            os.mkfifo(setup["s2r"], 0o600)
            os.mkfifo(setup["r2s"], 0o600)
    elif mechanism == "shm":
        setup["rings"] = []
        for direction in ("s2r", "r2s"):
            ring = {part: f"/{tag}-{direction}-{part}" for part in ("shm", *SEMAPHORES)}
            setup["rings"].append(ring)  # recorded first: a failure below still cleans up
            posix_ipc.SharedMemory(
                ring["shm"], posix_ipc.O_CREX, mode=0o600, size=size * SHM_SLOTS
            ).close_fd()
            for part, initial in SEMAPHORES.items():
                posix_ipc.Semaphore(
                    ring[part], posix_ipc.O_CREX, mode=0o600, initial_value=initial
                ).close()
    elif mechanism == "mq":
        setup["queues"] = []
        for direction in ("s2r", "r2s"):
            name = f"/{tag}-{direction}"
            setup["queues"].append(name)
            posix_ipc.MessageQueue(name, posix_ipc.O_CREX, mode=0o600).close()
    return setup, fds


def _remove_resources(setup: dict[str, Any]) -> None:
    """Unlink every named object of a run; missing ones are fine (the other side was first)."""
    for ring in setup.get("rings", ()):
        for part, name in ring.items():
            unlink = posix_ipc.unlink_shared_memory if part == "shm" else posix_ipc.unlink_semaphore
            try:
                unlink(name)
            except posix_ipc.ExistentialError:
                pass
    for name in setup.get("queues", ()):
        try:
            posix_ipc.unlink_message_queue(name)
        except posix_ipc.ExistentialError:
            pass
    if "dir" in setup:
        shutil.rmtree(setup["dir"], ignore_errors=True)


class _Child:
    """One child process of this script and the lines it writes on its stdout."""

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
            sys.executable, os.path.abspath(__file__), "--role", role,
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


def _format(result: dict[str, Any]) -> str:
    line = (
        f"{result['mechanism']} {result['pattern']} {result['size']} B x {result['count']}: "
        f"received {result['received']} in {result['elapsed_s']:.4f} s, "
        f"{result['msgs_per_s']:,.0f} msg/s, {result['mb_per_s']:.2f} MB/s"
    )
    if rtt := result["rtt_us"]:
        line += ", rtt µs " + " ".join(f"{k} {v:.1f}" for k, v in rtt.items())
    return f"{line} [{result['placement']}]"


# --------------------------------------------------------------------------- child side


def _child_main(args: argparse.Namespace) -> None:
    """Entry point of a sender or receiver process: set up, run the loop, report one line."""
    setup = json.loads(args.setup)
    loop = _LOOPS[_family(args.mechanism)][args.role]
    try:
        _die_with_parent(args.parent_pid)
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        result = loop(args.mechanism, args.pattern == "ping-pong", args.size, args.count, setup)
        result["placement"] = {
            "affinity": sorted(os.sched_getaffinity(0)),
            "last_cpu": _last_cpu(),
        }
        _say(result)
    except posix_ipc.SignalError:  # SIGTERM while waiting on a semaphore or queue: stopped
        sys.exit(128 + signal.SIGTERM)
    finally:
        _remove_resources(setup)


def _die_with_parent(parent_pid: int) -> None:
    """A killed parent must not leave a child blocked on a semaphore forever.

    PR_SET_PDEATHSIG turns the parent's death into SIGTERM, and SIGTERM into SystemExit, so
    that the ``finally`` blocks unlink the kernel objects. The parent may already be gone.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        sys.exit("parent already gone")


def _last_cpu() -> int:
    """The CPU this process last ran on (field 39 of /proc/self/stat)."""
    with open("/proc/self/stat") as stat:
        text = stat.read()
    return int(text[text.rindex(")") + 2 :].split()[36])


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _family(mechanism: str) -> str:
    if mechanism in STREAMS:
        return "stream"
    if mechanism in DGRAMS:
        return "dgram"
    return mechanism


def _percentiles(samples: list[int]) -> dict[str, int]:
    """Nearest-rank percentiles, in the unit of the samples."""
    if not samples:
        return {}
    ordered = sorted(samples)
    n = len(ordered)
    pick = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
    out = {k: ordered[max(math.ceil(p * n), 1) - 1] for k, p in pick.items()}
    out["max"] = ordered[-1]
    return out


def _sender_result(t0_ns: int, t_end_ns: int, rtts: list[int] | None, completed: int) -> dict:
    return {
        "t0_ns": t0_ns,
        "t_end_ns": t_end_ns,
        "completed": completed,
        "rtt_ns": _percentiles(rtts) if rtts is not None else None,
    }


# ---- byte streams: pipe, fifo, unix-stream, tcp


def _frame(size: int) -> bytes:
    """One framed message of exactly ``size`` wire bytes: u32 LE length + body."""
    return LEN.pack(size - LEN.size) + b"\xa5" * (size - LEN.size)


def _stream_ends(mechanism: str, role: str, setup: dict) -> tuple[Callable, Callable, list]:
    """Open this side of a byte stream: (recv_into, send, objects to keep alive).

    For fds, FileIO.readinto/write are one read(2)/write(2) each with no Python-level
    wrapper. A blocking pipe write is whole unless a signal interrupts it, and the only
    signal a child handles (SIGTERM) ends it anyway, so writes are not re-checked.
    """
    if mechanism == "pipe":
        fds = setup["fds"]
        rx_fd, tx_fd = (
            (fds["r2s_r"], fds["s2r_w"]) if role == "sender" else (fds["s2r_r"], fds["r2s_w"])
        )
        rx, tx = io.FileIO(rx_fd, "rb"), io.FileIO(tx_fd, "wb")
        if role == "receiver":
            _say({"ready": True})
        return rx.readinto, tx.write, [rx, tx]
    if mechanism == "fifo":
        if role == "receiver":
            _say({"ready": True})  # before open(): opening a FIFO waits for the other end
            rx = io.FileIO(setup["s2r"], "rb")
            tx = io.FileIO(setup["r2s"], "wb")
        else:
            tx = io.FileIO(setup["s2r"], "wb")
            rx = io.FileIO(setup["r2s"], "rb")
        return rx.readinto, tx.write, [rx, tx]
    family, address = (
        (socket.AF_UNIX, setup["s2r"]) if mechanism == "unix-stream" else (socket.AF_INET, None)
    )
    if role == "receiver":
        conn = _accept_one(family, address)
    else:
        conn = socket.socket(family, socket.SOCK_STREAM)
        conn.connect(address or ("127.0.0.1", setup["port"]))
    if family == socket.AF_INET:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn.recv_into, conn.sendall, [conn]


def _accept_one(family: int, path: str | None) -> socket.socket:
    """Listen, tell the parent where (the TCP port is ephemeral), accept one connection."""
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind(path or ("127.0.0.1", 0))
        listener.listen(1)
        _say({"ready": True, "port": None if path else listener.getsockname()[1]})
        conn, _ = listener.accept()
    return conn


def _read_exact(recv_into: Callable, view: memoryview) -> None:
    got, size = 0, len(view)
    while got < size:
        n = recv_into(view[got:])
        if not n:
            raise EOFError("the other side closed the stream")
        got += n


def _stream_sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    recv_into, send, _keep = _stream_ends(mechanism, "sender", setup)
    frame = _frame(size)
    echo = memoryview(bytearray(size))
    for _ in range(WARMUP):
        send(frame)
        _read_exact(recv_into, echo)
    if not pingpong:
        t0 = time.monotonic_ns()
        for _ in range(count):
            send(frame)  # one write(2)/send(2) per message
        return _sender_result(t0, time.monotonic_ns(), None, count)
    clock = time.perf_counter_ns
    rtts: list[int] = []
    t0 = time.monotonic_ns()
    for _ in range(count):
        start = clock()
        send(frame)
        got = recv_into(echo)
        while got < size:  # a large echo may come back in pieces
            n = recv_into(echo[got:])
            if not n:
                raise EOFError("receiver closed the stream")
            got += n
        rtts.append(clock() - start)
    return _sender_result(t0, time.monotonic_ns(), rtts, count)


def _stream_receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    recv_into, send, _keep = _stream_ends(mechanism, "receiver", setup)
    total = WARMUP + count
    echo_upto = total if pingpong else WARMUP
    capacity = max(1 << 20, 4 * size)
    buf = bytearray(capacity)
    view = memoryview(buf)
    unpack = LEN.unpack_from
    start = end = seen = 0
    while seen < total:
        if capacity - end < size:  # keep room for a whole frame after the unparsed bytes
            view[: end - start] = view[start:end]
            end -= start
            start = 0
        n = recv_into(view[end:])  # bulk: as many frames as the kernel has
        if not n:
            raise EOFError(f"sender closed the stream after {seen - WARMUP} messages")
        end += n
        while end - start >= 4:
            stop = start + 4 + unpack(buf, start)[0]
            if stop > end:
                break
            if seen < echo_upto:
                send(view[start:stop])
            seen += 1
            start = stop
        if start == end:
            start = end = 0
    return {"received": seen - WARMUP, "t_last_ns": time.monotonic_ns()}


# ---- HTTP/1.1 over one keep-alive TCP connection


def _http_head(port: int, spaces: int = 1) -> bytes:
    """The request head, with ``%d`` left for Content-Length."""
    return b"POST /messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length:%s%%d\r\n\r\n" % (
        port,
        b" " * spaces,
    )


def _http_request(port: int, size: int) -> bytes:
    """A ``POST /messages`` request of exactly ``size`` bytes, head included.

    Content-Length's digit count grows with the body, so a few totals cannot be reached with
    one space after the colon; optional whitespace (RFC 9110 OWS) makes up the missing byte.
    """
    for spaces in (1, 2):
        head = _http_head(port, spaces)
        for digits in range(1, 11):
            body = size - len(head % 0) + 1 - digits
            if body >= 0 and len(str(body)) == digits:
                return head % body + b"x" * body
    raise FloorError(f"no HTTP request is exactly {size} bytes long")


def _content_length(buf: bytearray, start: int, head_end: int) -> int:
    """The Content-Length of the head in buf[start:head_end] (0 when absent)."""
    head = buf[start:head_end].lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    value_end = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : value_end if value_end >= 0 else len(head)])


def _http_sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    conn = socket.create_connection(("127.0.0.1", setup["port"]))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = _http_request(setup["port"], size)
    buf = bytearray(size + 4096)
    view = memoryview(buf)
    send, recv_into, find = conn.sendall, conn.recv_into, buf.find
    expected = b"200" if pingpong else b"204"

    def exchange() -> None:
        """Send one request and read its whole response (HTTP/1.1: no pipelining)."""
        send(request)
        end = 0
        while True:
            n = recv_into(view[end:])
            if not n:
                raise EOFError("server closed the connection")
            end += n
            head_end = find(HEAD_END, 0, end)
            if head_end >= 0 and end >= head_end + 4 + _content_length(buf, 0, head_end):
                break
        if buf[9:12] != expected:
            raise FloorError(f"unexpected response {bytes(buf[:head_end])!r}")

    for _ in range(WARMUP):
        exchange()
    if not pingpong:  # still one request at a time: each waits for its 204
        t0 = time.monotonic_ns()
        for _ in range(count):
            exchange()
        return _sender_result(t0, time.monotonic_ns(), None, count)
    clock = time.perf_counter_ns
    rtts: list[int] = []
    t0 = time.monotonic_ns()
    for _ in range(count):
        start = clock()
        exchange()
        rtts.append(clock() - start)
    return _sender_result(t0, time.monotonic_ns(), rtts, count)


def _http_receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    conn = _accept_one(socket.AF_INET, None)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    total = WARMUP + count
    capacity = max(1 << 20, 4 * size)
    buf = bytearray(capacity)
    view = memoryview(buf)
    find, recv_into, sendall, sendmsg = buf.find, conn.recv_into, conn.sendall, conn.sendmsg
    start = end = seen = 0
    while seen < total:
        if capacity - end < size:
            view[: end - start] = view[start:end]
            end -= start
            start = 0
        n = recv_into(view[end:])
        if not n:
            raise EOFError(f"client closed the connection after {seen - WARMUP} requests")
        end += n
        while (head_end := find(HEAD_END, start, end)) >= 0:
            if not buf.startswith(b"POST /messages ", start):
                raise FloorError(f"not a POST /messages: {bytes(buf[start:head_end])!r}")
            body = head_end + 4
            stop = body + _content_length(buf, start, head_end)
            if stop > end:
                break
            if pingpong:  # head and echoed body in one sendmsg(2), body not copied
                sendmsg([HTTP_OK_HEAD % (stop - body), view[body:stop]])
            else:
                sendall(HTTP_NO_CONTENT)
            seen += 1
            start = stop
        if start == end:
            start = end = 0
    return {"received": seen - WARMUP, "t_last_ns": time.monotonic_ns()}


# ---- datagrams: unix-dgram, udp


def _dgram_socket(mechanism: str, role: str, setup: dict) -> socket.socket:
    if mechanism == "unix-dgram":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if role == "receiver":
            sock.bind(setup["s2r"])
        else:
            sock.bind(setup["r2s"])  # a bound address, or the echoes have nowhere to go
            sock.connect(setup["s2r"])
        return sock
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if role == "receiver":
        sock.bind(("127.0.0.1", 0))
    else:
        sock.connect(("127.0.0.1", setup["port"]))
    return sock


def _recv_timeout(sock: socket.socket, seconds: float) -> None:
    """SO_RCVTIMEO on a blocking socket: a timeout costs no extra poll(2) per recv.

    (socket.settimeout would poll before every recv; here a late datagram raises
    BlockingIOError.)
    """
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


def _dgram_sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    sock = _dgram_socket(mechanism, "sender", setup)
    lossy = mechanism == "udp"
    if lossy:
        _recv_timeout(sock, UDP_ECHO_TIMEOUT_S)
    out = bytearray(size)
    back = bytearray(size)
    send, recv_into = sock.send, sock.recv_into
    pack_seq, unpack_seq = SEQ.pack_into, SEQ.unpack_from

    def round_trip(kind: int, seq: int) -> bool:
        """One datagram out, its own echo back (stale echoes of earlier losses are skipped)."""
        out[0] = kind
        pack_seq(out, 1, seq)
        send(out)
        while True:
            try:
                recv_into(back)
            except BlockingIOError:
                return False
            if back[0] == kind and unpack_seq(back, 1)[0] == seq:
                return True

    seq = 0
    while seq < WARMUP:
        seq += round_trip(KIND_WARMUP, seq)  # retried until it gets through
    out[0] = KIND_MESSAGE
    if not pingpong:
        t0 = time.monotonic_ns()
        for _ in range(count):
            send(out)  # one datagram per message
        t_end = time.monotonic_ns()
        completed = count
        rtts = None
    else:
        clock = time.perf_counter_ns
        rtts = []
        t0 = time.monotonic_ns()
        for seq in range(count):
            start = clock()
            if round_trip(KIND_MESSAGE, seq):
                rtts.append(clock() - start)
        t_end = time.monotonic_ns()
        completed = len(rtts)
    if lossy:
        _send_end_markers(sock)
    return _sender_result(t0, t_end, rtts, completed)


def _send_end_markers(sock: socket.socket) -> None:
    """UDP may drop the last messages: tell the receiver it is over (it also has a timeout)."""
    for _ in range(UDP_END_MARKERS):
        try:
            sock.send(bytes([KIND_END]))
        except OSError:  # the receiver is already gone (ICMP port unreachable)
            return
        time.sleep(0.005)


def _dgram_receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    sock = _dgram_socket(mechanism, "receiver", setup)
    _say({"ready": True, "port": sock.getsockname()[1] if mechanism == "udp" else None})
    lossy = mechanism == "udp"
    buf = bytearray(size)
    view = memoryview(buf)
    # Warm-up: echo until the first real message. No timeout here: the sender may still be
    # starting up.
    n, peer = sock.recvfrom_into(buf)
    sock.connect(peer)
    send, recv_into, now = sock.send, sock.recv_into, time.monotonic_ns
    while buf[0] == KIND_WARMUP:
        send(view[:n])
        n = recv_into(buf)
    if buf[0] != KIND_MESSAGE:
        return {"received": 0, "t_last_ns": None}
    received, t_last = 1, now()
    if pingpong:
        send(view[:n])
    if lossy:
        _recv_timeout(sock, UDP_SILENCE_S)
    # The receive time is taken per message: on UDP the last message is known only after
    # a marker or a silence.
    while received < count:
        try:
            n = recv_into(buf)
        except BlockingIOError:  # silence: the rest was lost
            break
        kind = buf[0]
        if kind == KIND_MESSAGE:
            received += 1
            t_last = now()
            if pingpong:
                send(view[:n])
        elif kind == KIND_WARMUP:  # a late retry of the warm-up
            send(view[:n])
        else:
            break
    return {"received": received, "t_last_ns": t_last}


# ---- shared memory: rings of slots guarded by three named semaphores each


class _Ring:
    """One direction of shared memory: slots in a POSIX shm segment, a producer/consumer
    ring guarded by empty (free slots), full (written slots) and mutex semaphores."""

    def __init__(self, names: dict[str, str], size: int):
        shm = posix_ipc.SharedMemory(names["shm"])
        self.map = mmap.mmap(shm.fd, size * SHM_SLOTS)
        shm.close_fd()
        whole = memoryview(self.map)
        self.slots = [whole[i * size : (i + 1) * size] for i in range(SHM_SLOTS)]
        self.empty = posix_ipc.Semaphore(names["empty"])
        self.full = posix_ipc.Semaphore(names["full"])
        self.mutex = posix_ipc.Semaphore(names["mutex"])
        self.next = 0  # each side counts its own slots: one producer, one consumer

    def put(self, frame: bytes | memoryview) -> None:
        self.empty.acquire()
        self.mutex.acquire()
        self.slots[self.next][: len(frame)] = frame
        self.mutex.release()
        self.full.release()
        self.next = (self.next + 1) % SHM_SLOTS

    def get(self, out: memoryview) -> int:
        self.full.acquire()
        self.mutex.acquire()
        slot = self.slots[self.next]
        n = LEN.size + LEN.unpack_from(slot)[0]
        out[:n] = slot[:n]
        self.mutex.release()
        self.empty.release()
        self.next = (self.next + 1) % SHM_SLOTS
        return n


def _shm_sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    ring, back = (_Ring(names, size) for names in setup["rings"])
    frame = _frame(size)
    echo = memoryview(bytearray(size))
    for _ in range(WARMUP):
        ring.put(frame)
        back.get(echo)
    # The timed loops are ring.put / back.get written out: a method call per message would
    # be a visible part of the floor.
    slots, i, nslots = ring.slots, ring.next, SHM_SLOTS
    empty_acquire, full_release = ring.empty.acquire, ring.full.release
    lock, unlock = ring.mutex.acquire, ring.mutex.release
    if not pingpong:
        t0 = time.monotonic_ns()
        for _ in range(count):
            empty_acquire()
            lock()
            slots[i][:] = frame
            unlock()
            full_release()
            i = (i + 1) % nslots
        return _sender_result(t0, time.monotonic_ns(), None, count)
    back_slots, j = back.slots, back.next
    full_acquire, empty_release = back.full.acquire, back.empty.release
    back_lock, back_unlock = back.mutex.acquire, back.mutex.release
    unpack = LEN.unpack_from
    clock = time.perf_counter_ns
    rtts: list[int] = []
    t0 = time.monotonic_ns()
    for _ in range(count):
        start = clock()
        empty_acquire()
        lock()
        slots[i][:] = frame
        unlock()
        full_release()
        i = (i + 1) % nslots
        full_acquire()
        back_lock()
        slot = back_slots[j]
        n = 4 + unpack(slot)[0]
        echo[:n] = slot[:n]
        back_unlock()
        empty_release()
        j = (j + 1) % nslots
        rtts.append(clock() - start)
    return _sender_result(t0, time.monotonic_ns(), rtts, count)


def _shm_receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    ring, back = (_Ring(names, size) for names in setup["rings"])
    _say({"ready": True})
    local = memoryview(bytearray(size))
    for _ in range(WARMUP):
        back.put(local[: ring.get(local)])
    slots, i, nslots = ring.slots, ring.next, SHM_SLOTS
    full_acquire, empty_release = ring.full.acquire, ring.empty.release
    lock, unlock = ring.mutex.acquire, ring.mutex.release
    back_slots, j = back.slots, back.next
    empty_acquire, full_release = back.empty.acquire, back.full.release
    back_lock, back_unlock = back.mutex.acquire, back.mutex.release
    unpack = LEN.unpack_from
    for _ in range(count):
        full_acquire()
        lock()
        slot = slots[i]
        n = 4 + unpack(slot)[0]
        local[:n] = slot[:n]  # the message leaves shared memory: the consumer's copy
        unlock()
        empty_release()
        i = (i + 1) % nslots
        if pingpong:
            empty_acquire()
            back_lock()
            back_slots[j][:n] = local[:n]
            back_unlock()
            full_release()
            j = (j + 1) % nslots
    return {"received": count, "t_last_ns": time.monotonic_ns()}


# ---- POSIX message queues


def _mq_sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    out_queue, back_queue = (posix_ipc.MessageQueue(name) for name in setup["queues"])
    send, receive = out_queue.send, back_queue.receive
    message = b"\xa5" * size  # the queue keeps boundaries: no length prefix
    for _ in range(WARMUP):
        send(message)
        receive()
    if not pingpong:
        t0 = time.monotonic_ns()
        for _ in range(count):
            send(message)
        return _sender_result(t0, time.monotonic_ns(), None, count)
    clock = time.perf_counter_ns
    rtts: list[int] = []
    t0 = time.monotonic_ns()
    for _ in range(count):
        start = clock()
        send(message)
        receive()
        rtts.append(clock() - start)
    return _sender_result(t0, time.monotonic_ns(), rtts, count)


def _mq_receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    in_queue, back_queue = (posix_ipc.MessageQueue(name) for name in setup["queues"])
    _say({"ready": True})
    receive, send = in_queue.receive, back_queue.send
    for _ in range(WARMUP):
        send(receive()[0])
    if pingpong:
        for _ in range(count):
            send(receive()[0])
    else:
        for _ in range(count):
            receive()
    return {"received": count, "t_last_ns": time.monotonic_ns()}


_LOOPS: dict[str, dict[str, Callable[..., dict]]] = {
    "stream": {"sender": _stream_sender, "receiver": _stream_receiver},
    "dgram": {"sender": _dgram_sender, "receiver": _dgram_receiver},
    "http": {"sender": _http_sender, "receiver": _http_receiver},
    "shm": {"sender": _shm_sender, "receiver": _shm_receiver},
    "mq": {"sender": _mq_sender, "receiver": _mq_receiver},
}


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mechanism", required=True, choices=MECHANISMS)
    parser.add_argument("--pattern", required=True, choices=PATTERNS)
    parser.add_argument("--size", required=True, type=int, help="wire bytes per message")
    parser.add_argument("--count", required=True, type=int, help="messages to time")
    parser.add_argument("--pin", metavar="S,R", help="pin sender and receiver to these CPUs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    # Used by the parent to start its two children.
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=("sender", "receiver"), help=hidden)
    parser.add_argument("--setup", help=hidden)
    parser.add_argument("--cpu", type=int, help=hidden)
    parser.add_argument("--parent-pid", type=int, help=hidden)
    args = parser.parse_args(argv)
    if args.role:
        _child_main(args)
        return 0
    try:
        result = run_floor(
            args.mechanism, args.pattern, args.size, args.count, args.pin, timeout=args.timeout
        )
    except FloorError as error:
        print(f"floor: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("floor: interrupted; children stopped, kernel objects removed", file=sys.stderr)
        return 130
    print(json.dumps(result) if args.json else _format(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
