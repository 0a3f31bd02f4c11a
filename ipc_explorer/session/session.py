"""One session: a channel, a sender and a receiver process, and what they report.

The engine creates the channel's kernel objects, starts both children as separate programs
(``python -m ipc_explorer.children``) from the event loop's thread (PR_SET_PDEATHSIG is tied to the
thread that forks), feeds them control lines on stdin and folds their telemetry into
``SessionStats``. It knows nothing of any front end: events go to a listener callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ipc_explorer.codecs import CodecError, get_codec
from ipc_explorer.session.config import SessionConfig, UsageError
from ipc_explorer.session.events import (
    ChildExited,
    ChildReported,
    EngineEvent,
    Progress,
    SessionEnded,
    StateChanged,
    said_by,
)
from ipc_explorer.session.limits import largest_message, largest_size
from ipc_explorer.session.remote import RemoteLink, load_token
from ipc_explorer.session.spawn import read_available, start_child
from ipc_explorer.session.stats import SessionStats
from ipc_explorer.session.summary import summarize
from ipc_explorer.telemetry.protocol import TelemetryDecoder
from ipc_explorer.transports import (
    ChannelEnd,
    ChannelPlan,
    MessageTooLarge,
    Transport,
    TransportError,
    TransportOptions,
    get_transport,
)
from ipc_explorer.transports.base import redact

SIDES = ("receiver", "sender")
INF = float("inf")
READY_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 2.0
#: A reliable receiver that makes no progress this long while messages are owed has stalled.
STALL_TIMEOUT_S = 10.0
#: On a lossy mechanism, silence this long after the sender finished means the rest is lost.
LOSSY_QUIET_S = 0.3
#: --kill-receiver-at kills this long after the count is reached: mid-flow, not at the
#: moment the receiver reported (and acknowledged) its messages.
KILL_DELAY_S = 0.05
#: A queue that says it is empty, this long without progress: the rest will not come.
EMPTY_QUIET_S = 1.5


#: Fields of a child's event that ChildReported carries by name; the rest are its details.
_EVENT_FIELDS = ("kind", "message", "reason", "t")


class SessionError(Exception):
    """A session could not start or failed: the text is for the user."""


class Session:
    """Run one configuration; ``await start()``, then ``run_to_completion()`` or ``stop()``."""

    #: The machine the parent runs on, as the summary names it (a replay names the recorder's).
    host = socket.gethostname()
    cpus = os.cpu_count()

    def __init__(
        self, config: SessionConfig, listener: Callable[[EngineEvent], None] | None = None
    ):
        self.config = config
        self.stats = SessionStats()
        self._listeners: list[Callable[[EngineEvent], None]] = [listener] if listener else []
        self.codec = get_codec(config.format)
        self.transport_cls: type[Transport] = get_transport(config.mechanism)
        self.plan: ChannelPlan | None = None
        self.workdir: Path | None = None
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._telemetry_fds: dict[str, int] = {}
        self._decoders = {side: TelemetryDecoder() for side in SIDES}
        self.stderr_tail: dict[str, deque[str]] = {side: deque(maxlen=20) for side in SIDES}
        self.exit_codes: dict[str, int] = {}
        self.problems: list[str] = []
        self._expected_exit: set[str] = set()
        self._stopped = False
        self.started_at_ns = 0
        #: Receiver processes started so far (more than one when one took over from another).
        self.receivers = 0
        #: The other host's agent, when the receiver runs there (``config.remote``), and how far
        #: its clock is ahead of ours (added to our timestamps to read them on its clock).
        self.remote: Any = None
        self.clock_offset_ns = 0

    # -- events -------------------------------------------------------------------------
    def _emit(self, event: EngineEvent) -> None:
        for listener in self._listeners:
            listener(event)

    def add_listener(self, listener: Callable[[EngineEvent], None]) -> None:
        """Another front end or tool that wants the events too (step mode, a recording)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[EngineEvent], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- start --------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the channel, start both children, wait until both are ready, then go."""
        cfg = self.config
        cfg.validate()
        options = replace(cfg.options, content_type=self.codec.content_type)
        if cfg.remote is None:
            options = await self.transport_cls.provision(options, self._progress)
        tag = secrets.token_hex(4)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ipcx-{tag}-"))  # 0700, private
        try:
            try:
                if cfg.remote is not None:
                    self.plan = await self._open_remote(options)
                else:
                    self.plan = self.transport_cls.create(options, self.workdir, tag, cfg.duplex)
            except OSError as exc:
                raise TransportError(
                    f"cannot set up {cfg.mechanism}: {exc.strerror or exc}"
                ) from None
            try:
                self.plan.limits.check(largest_message(cfg))
            except CodecError as exc:
                raise UsageError(
                    f"{cfg.format} cannot carry the generated message: {exc}"
                ) from None
            for side in SIDES:
                await self._spawn(side)
            self.plan.close_fds()
            await self._until(
                lambda: (
                    all(self.stats.side(s).state == "ready" for s in SIDES) or self._any_failed()
                ),
                READY_TIMEOUT_S,
                "the children did not get ready",
            )
            if self._any_failed():
                raise SessionError(self._failure_text())
        except BaseException:
            await self._teardown()
            raise
        self.started_at_ns = time.monotonic_ns()
        for side in SIDES:
            self.send_control(side, {"op": "start"})

    async def _open_remote(self, options: TransportOptions) -> ChannelPlan:
        """The receiving end opened by the other host's agent; the plan, for our sender."""
        cfg = self.config
        assert cfg.remote is not None and self.workdir is not None
        link = await RemoteLink.connect(cfg.remote, load_token(cfg.remote_token_file))
        self.remote = link
        self.clock_offset_ns = link.clock["offset_ns"]
        request = {
            "mechanism": cfg.mechanism,
            "duplex": cfg.duplex,
            "options": {k: v for k, v in options.to_json().items() if k != "host"},
        }
        secrets_ = {}
        if options.broker:  # amqp: the broker both hosts reach; its credentials apart
            secrets_ = {"IPCX_AMQP_URL": options.broker}
            request["options"]["broker"] = redact(options.broker)
            request["secrets"] = secrets_
        plan = ChannelPlan.from_json(await link.open_channel(request))
        plan.fds = {"sender": {}, "receiver": {}}  # theirs are on the other host
        plan.workdir = str(self.workdir)
        plan.options.secrets = secrets_
        return plan

    def _progress(self, text: str) -> None:
        """A slow set-up step (a broker starting) said as it goes."""
        self._emit(Progress("session", text))

    def child_config(self, side: str, expect_from: int = 0) -> dict[str, Any]:
        """What a child is told: the plan, the workload, and how to run."""
        assert self.plan is not None
        cfg = self.config
        return {
            "plan": self.plan.to_json(),
            "format": cfg.format,
            "pattern": cfg.pattern,
            "size": cfg.size,
            "count": cfg.count,
            "rate": cfg.rate,
            "cpus": cfg.cpus,
            "corrupt_every": cfg.corrupt_every,
            "nice": cfg.nice,
            "step": cfg.step,
            "expect_from": expect_from,
            "clock_offset_ns": self.clock_offset_ns if side == "receiver" else 0,
        }

    async def _spawn(self, side: str, expect_from: int = 0) -> None:
        assert self.plan is not None
        if side == "receiver" and self.remote is not None:  # on the other host, by its agent
            proc: Any = await self.remote.start_receiver(
                self.child_config(side, expect_from), lambda data: self._apply(side, data)
            )
        else:
            proc, read_fd = await start_child(side, self.child_config(side, expect_from), self.plan)
            os.set_blocking(read_fd, False)
            self._telemetry_fds[side] = read_fd
            asyncio.get_running_loop().add_reader(read_fd, self._on_telemetry, side)
        self._procs[side] = proc
        self.stats.side(side).pid = proc.pid
        if side == "receiver":
            self.receivers += 1
        self._tasks.append(asyncio.create_task(self._read_stderr(side, proc)))
        self._tasks.append(asyncio.create_task(self._watch(side, proc)))

    # -- telemetry and exits --------------------------------------------------------------
    def _on_telemetry(self, side: str) -> None:
        fd = self._telemetry_fds.get(side)
        if fd is None:
            return
        data = read_available(fd)
        if data is None:
            return
        if not data:
            self._close_telemetry(side)
            return
        self._apply(side, data)

    def _apply(self, side: str, data: bytes) -> None:
        try:
            records = self._decoders[side].feed(data)
        except ValueError as exc:
            self.problems.append(f"{side}: {exc}")
            return
        for record in records:
            before = self.stats.side(side).state
            self.stats.apply(record)
            after = self.stats.side(side).state
            if after != before:
                self._emit(StateChanged(side, after))
            for ev in record.get("events", ()):
                if ev["kind"] == "error":
                    self.problems.append(f"{side}: {ev['message']}")
                details = {k: v for k, v in ev.items() if k not in _EVENT_FIELDS}
                self._emit(
                    ChildReported(side, ev["kind"], ev["message"], ev.get("reason", ""), details)
                )

    def _close_telemetry(self, side: str, drain: bool = False) -> None:
        fd = self._telemetry_fds.pop(side, None)
        if fd is None:
            return
        try:
            asyncio.get_running_loop().remove_reader(fd)
        except RuntimeError:
            pass
        if drain:
            while True:
                try:
                    data = os.read(fd, 1 << 20)
                except OSError:
                    break
                if not data:
                    break
                self._apply(side, data)
        os.close(fd)

    async def _read_stderr(self, side: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            self.stderr_tail[side].append(line.decode(errors="replace").rstrip())

    async def _watch(self, side: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        self.exit_codes[side] = code
        self.stats.side(side).exit_code = code
        expected = side in self._expected_exit or (
            side == "sender" and code == 0 and self.stats.sender.state == "done"
        )
        if lost := getattr(proc, "lost_reason", None):  # a receiver whose host went away
            message = lost
        elif code < 0:
            message = f"the {side} was killed by {signal.Signals(-code).name}"
        elif code == 0:
            message = f"the {side} exited"
        else:
            message = f"the {side} failed (exit code {code})"
            tail = [line for line in self.stderr_tail[side] if line.strip()]
            if tail and self.stats.side(side).state != "error":
                message += f": {tail[-1]}"
        if not expected:
            self.problems.append(message)
            if self.stats.side(side).state not in ("error",):
                self.stats.side(side).state = "killed" if code < 0 else "exited"
        self._emit(ChildExited(side, code, expected, message))

    def _sender_ended(self) -> bool:
        return self.stats.sender.state in ("done", "error", "stopped") or not self.alive("sender")

    def _all_in(self) -> bool:
        """The sender has ended and everything it sent has arrived."""
        sent = self.stats.sender.count("sent")
        return self._sender_ended() and self.stats.receiver.count("unique") >= sent

    def _any_failed(self) -> bool:
        return any(
            side in self.exit_codes
            and side not in self._expected_exit
            and not (side == "sender" and self.stats.sender.state == "done")
            for side in SIDES
        ) or any(self.stats.side(s).state == "error" for s in SIDES)

    def _failure_text(self) -> str:
        return "; ".join(dict.fromkeys(self.problems)) or "a child process failed"

    async def _until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise SessionError(f"{what} within {timeout:g} s")
            await asyncio.sleep(0.005)

    # -- control ------------------------------------------------------------------------
    def send_control(self, side: str, message: dict[str, Any]) -> None:
        proc = self._procs.get(side)
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return
        try:
            proc.stdin.write((json.dumps(message) + "\n").encode())
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            pass

    def pause(self, side: str = "receiver") -> None:
        self.send_control(side, {"op": "pause"})

    def resume(self, side: str = "receiver") -> None:
        self.send_control(side, {"op": "resume"})

    def set_rate(self, rate: float | None) -> None:
        self.send_control("sender", {"op": "rate", "value": rate})

    def inject(self, payload: Any) -> int:
        """Have the real sender send ``payload``; raises CodecError/MessageTooLarge up front."""
        assert self.plan is not None
        data = self.codec.encode(payload)
        self.plan.limits.check(len(data))
        self.send_control("sender", {"op": "inject", "payload": payload})
        return len(data)

    def kill(self, side: str) -> None:
        """SIGKILL one side, as a crash would; the other side's reaction is the point."""
        proc = self._procs.get(side)
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def channel_ends(self) -> dict[str, ChannelEnd]:
        """Each child's pid and channel descriptors, for reading the kernel's view of them."""
        ends = {}
        for side in SIDES:
            state = self.stats.side(side)
            if state.pid is not None:
                ends[side] = ChannelEnd(state.pid, dict(state.describe.get("fds", {})))
        return ends

    def alive(self, side: str) -> bool:
        proc = self._procs.get(side)
        return proc is not None and proc.returncode is None

    # -- the end ------------------------------------------------------------------------
    @property
    def lossy(self) -> bool:
        return not self.transport_cls.reliable

    async def replace_receiver(self) -> None:
        """Kill the receiver (SIGKILL, as a crash would) and start another on the same channel.

        Only where messages wait by name for whoever reads next (a broker's queue, a POSIX
        queue): the new receiver gets what was delivered to the old one and not acknowledged
        (redelivered), and counts on from where the old one had got to.
        """
        if self.config.remote is not None:
            raise UsageError(
                "the receiver runs on another host: a new one can take over only on this one"
            )
        if not self.transport_cls.reconnectable:
            raise UsageError(
                f"a new receiver cannot take over a {self.config.mechanism} channel: only "
                "amqp (and mq) keep the messages for whoever reads next"
            )
        proc = self._procs.get("receiver")
        if proc is not None and proc.returncode is None:
            self._expected_exit.add("receiver")
            self.kill("receiver")
            await proc.wait()
        self._close_telemetry("receiver", drain=True)
        old = self.stats.replace_receiver()
        self.exit_codes.pop("receiver", None)
        self._expected_exit.discard("receiver")
        self._emit(Progress("receiver", f"receiver {old.pid} killed; a new one takes over"))
        await self._spawn("receiver", expect_from=old.count("highest") + 1)
        await self._until(
            lambda: self.stats.receiver.state == "ready" or self._any_failed(),
            READY_TIMEOUT_S,
            "the new receiver did not get ready",
        )
        self.send_control("receiver", {"op": "start"})

    async def run_to_completion(self) -> dict[str, Any]:
        """Wait for the sender to send ``count`` messages and the receiver to catch up (with
        ``kill_receiver_at``, a new receiver taking over from a killed one on the way)."""
        try:
            kill_at = self.config.kill_receiver_at
            if kill_at is not None:
                rcv = self.stats.receiver
                await self._until(
                    lambda: rcv.count("unique") >= kill_at or self._all_in() or self._any_failed(),
                    INF,
                    "",
                )
                if rcv.count("unique") < kill_at and not self._any_failed():
                    self.problems.append(f"the receiver never had {kill_at} messages: not killed")
                elif not self._any_failed():
                    # The count arrives with a telemetry record, right when the receiver has just
                    # acknowledged what it counted: a moment later it holds deliveries again.
                    await asyncio.sleep(KILL_DELAY_S)
                    await self.replace_receiver()
            await self._until(lambda: self._sender_ended() or self._any_failed(), INF, "")
            await self._drain()
        finally:
            await self.stop()
        return self.summary()

    async def _drain(self) -> None:
        """Wait until the receiver has everything the sender sent, or clearly never will."""
        sent = self.stats.sender.count("sent")
        quiet_limit = LOSSY_QUIET_S if self.lossy else STALL_TIMEOUT_S
        last_seen = -1
        last_change = time.monotonic()
        while self.alive("receiver") and not self._any_failed():
            seen = self.stats.receiver.count("unique")
            if seen >= sent:
                return
            if seen != last_seen:
                last_seen, last_change = seen, time.monotonic()
            elif self._channel_empty() and time.monotonic() - last_change > EMPTY_QUIET_S:
                return  # the queue holds nothing more for it: what is missing is lost
            elif time.monotonic() - last_change > quiet_limit:
                if not self.lossy:
                    self.problems.append(
                        f"the receiver stalled at {seen} of {sent} messages for {quiet_limit:g} s"
                    )
                return
            self.send_control("receiver", {"op": "report"})
            await asyncio.sleep(0.01)

    def _channel_empty(self) -> bool:
        """Whether the channel says it holds nothing more for the receiver (a queue that
        reports its depth, and a broker its unacknowledged deliveries)."""
        live = self.stats.receiver.live
        return "queue_depth" in live and not live["queue_depth"] and not live.get("unacked")

    async def stop(self, drain: bool = True) -> None:
        """Stop both children, then remove every kernel object and file.

        With ``drain`` (a headless run) the sender stops first and the receiver gets what is in
        flight, so the counts add up; without (a user quitting or switching) both stop at once.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            if drain:
                for side in SIDES:  # a paused (or held: step mode) side would hold all up
                    self.resume(side)
                    self.send_control(side, {"op": "step_mode", "on": False})
                if self.alive("sender"):
                    self._expected_exit.add("sender")
                    self.send_control("sender", {"op": "stop"})
                    await self._wait_exit("sender")
                    if self.alive("receiver"):
                        await self._drain()
            for side in SIDES:
                self._expected_exit.add(side)
                proc = self._procs.get(side)
                if proc is None or proc.returncode is not None:
                    continue
                if drain:
                    self.send_control(side, {"op": "stop"})
                    if proc.stdin is not None:
                        proc.stdin.close()
                else:
                    with contextlib.suppress(ProcessLookupError):
                        proc.terminate()  # the child's handler leaves a blocking call cleanly
            for side in SIDES:
                await self._wait_exit(side)
        finally:
            await self._teardown()
        self._emit(SessionEnded("session", not self.problems, self._failure_text()))

    async def _wait_exit(self, side: str) -> None:
        proc = self._procs.get(side)
        if proc is None:
            return
        try:
            await asyncio.wait_for(proc.wait(), EXIT_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # it may have just exited
                proc.kill()
            await proc.wait()

    async def _teardown(self) -> None:
        """Kill what is left, read the last telemetry, remove every kernel object and file."""
        for side, proc in self._procs.items():
            if proc.returncode is None:
                self._expected_exit.add(side)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for proc in self._procs.values():
            try:
                await asyncio.wait_for(proc.wait(), EXIT_TIMEOUT_S)
            except TimeoutError:
                pass
        for side in list(self._telemetry_fds):
            self._close_telemetry(side, drain=True)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=EXIT_TIMEOUT_S)
        if self.remote is not None:  # the agent removes its end and stops its receiver
            await self.remote.close()
        self.cleanup_kernel_objects()

    def cleanup_kernel_objects(self) -> None:
        """Synchronous and idempotent: also called from signal handlers and atexit."""
        if self.plan is not None:
            self.plan.close_fds()
            self.transport_cls.destroy(self.plan)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill_now(self) -> None:
        """Last resort from a signal handler: SIGKILL children and remove kernel objects."""
        for proc in self._procs.values():
            if proc.returncode is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
        self.cleanup_kernel_objects()

    # -- results ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What the run did, as ``run --json`` prints it (see session/summary.py)."""
        return summarize(self)


async def run_once(
    config: SessionConfig, progress: Callable[[str], None] | None = None
) -> tuple[Session, dict[str, Any]]:
    """Start a session, run it to the end and clean up, whatever happens on the way;
    ``progress`` hears the slow set-up steps (a broker starting)."""
    session = Session(config, said_by(progress) if progress else None)
    try:
        await session.start()
        return session, await session.run_to_completion()
    finally:
        await session.stop()


__all__ = [
    "said_by",
    "MessageTooLarge",
    "Session",
    "SessionError",
    "UsageError",
    "largest_message",
    "largest_size",
    "run_once",
]
