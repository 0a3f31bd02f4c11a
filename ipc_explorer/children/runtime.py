"""What both children share: parent-death handling, the control pipe, telemetry, clean exit.

A child learns that its parent is gone three ways, whichever comes first: PR_SET_PDEATHSIG
(SIGTERM when the parent dies), EOF on its control pipe (stdin), or EPIPE on telemetry. In
every case it stops its loop, removes the channel's kernel objects by name and exits.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from typing import Any

from ipc_explorer.telemetry.histogram import Histogram
from ipc_explorer.telemetry.protocol import FLUSH_INTERVAL_NS, SAMPLE_WIRE_CAP, TelemetryWriter
from ipc_explorer.transports import ChannelPlan, Frame, Transport, get_transport

PR_SET_PDEATHSIG = 1


class StopRequested(BaseException):
    """Raised in the main loop by the stop signal; a BaseException so no handler swallows it."""


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies; exit now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        raise SystemExit(0)


def lower_priority(nice: int) -> None:
    """Run at lower priority than the app. The child is in a session of its own, and with
    autogroup scheduling a nice value only counts inside the session's group, so the group's
    nice value is set as well (/proc/self/autogroup)."""
    os.nice(nice)
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(nice))
    except OSError:
        pass  # no autogroup scheduling here: os.nice is enough


class ChildRuntime:
    """State shared by the loop, the control thread and the status thread of one child."""

    def __init__(self, args: Any):
        self.role: str = args.role
        self.parent_pid: int = args.parent_pid
        self.config: dict[str, Any] = json.loads(args.config)
        self.plan = ChannelPlan.from_json(self.config["plan"])
        self.transport_cls = get_transport(self.plan.mechanism)
        self.telemetry = TelemetryWriter(args.telemetry_fd)
        if self.config.get("nice"):
            lower_priority(self.config["nice"])
        cpu = (self.config.get("cpus") or {}).get(self.role)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        self.channel: Transport | None = None

        self.stopping = False
        self.in_loop = False
        self.finish_requested = False
        self.started = threading.Event()
        #: Set on stop: cuts short the sender's pacing sleep.
        self.wake = threading.Event()
        self._record_lock = threading.RLock()
        self.running = threading.Event()  # cleared while paused
        self.running.set()
        self.rate: float | None = self.config.get("rate")
        #: Step mode: the loop holds before each stage until the parent allows one more.
        self.stepping = bool(self.config.get("step"))
        self.step_permits = threading.Semaphore(0)
        #: Messages the sender may send without stopping at its stages (to wake the receiver).
        self.free_messages = 0
        self.injections: deque[Any] = deque()
        self.events: deque[dict[str, Any]] = deque(maxlen=64)

        self.state = "starting"
        self.op = "setup"  # what the loop is doing now: "send", "recv", "wait(empty)"...
        self.op_since = time.monotonic_ns()
        self.counts: dict[str, int] = {}
        self.hists: dict[str, Histogram] = {}
        #: Raw per-message durations since the last flush; bucketed at the flush, not per message.
        self.raw: dict[str, list[int]] = {}
        self.recent: deque[tuple] = deque(maxlen=8)
        self.pinned: list[dict[str, Any]] = []  # samples that must be shipped (injected)
        self.next_flush = 0
        self.last_flush = 0
        self._sent_describe = False

    # -- signals and control ------------------------------------------------------------
    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        if self.in_loop:
            self.in_loop = False
            raise StopRequested()

    def request_stop(self) -> None:
        """From any thread: make the main thread leave its loop, even from a blocking call."""
        self.stopping = True
        self.started.set()
        self.running.set()
        self.wake.set()
        os.kill(os.getpid(), signal.SIGUSR1)

    def start_control_thread(self) -> None:
        threading.Thread(target=self._read_control, name="control", daemon=True).start()

    def _read_control(self) -> None:
        for line in sys.stdin:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            op = msg.get("op")
            if op == "start":
                self.started.set()
            elif op == "pause":
                self.running.clear()
            elif op == "resume":
                self.running.set()
            elif op == "rate":
                self.rate = msg.get("value")
            elif op == "inject":
                self.injections.append(msg.get("payload"))
            elif op == "report":
                self.write_record(status_only=True)
            elif op == "step_mode":
                self.set_step_mode(bool(msg.get("on")))
            elif op == "step":
                if msg.get("free"):
                    self.free_messages += 1
                self.step_permits.release()
            elif op == "stop":
                if self.role == "sender" and self.started.is_set():
                    self.finish_requested = True  # finish the current message, then exit
                    self.running.set()
                    self.wake.set()
                else:
                    self.request_stop()
        # EOF: the parent closed the control pipe or died.
        self.request_stop()

    def start_status_thread(self) -> None:
        threading.Thread(target=self._status_loop, name="status", daemon=True).start()

    def _status_loop(self) -> None:
        """Report state while the loop is blocked (a full pipe, a paused peer)."""
        while not self.stopping:
            time.sleep(FLUSH_INTERVAL_NS / 1e9)
            if time.monotonic_ns() - self.last_flush > 2 * FLUSH_INTERVAL_NS:
                self.write_record(status_only=True)
            if os.getppid() != self.parent_pid:
                self.request_stop()
                return

    # -- telemetry ------------------------------------------------------------------------
    def hist(self, name: str) -> Histogram:
        h = self.hists.get(name)
        if h is None:
            h = self.hists[name] = Histogram()
        return h

    def values(self, name: str) -> list[int]:
        """The raw list a loop appends one stage's durations to."""
        self.hist(name)
        return self.raw.setdefault(name, [])

    def event(self, kind: str, message: str, **extra: Any) -> None:
        self.events.append({"kind": kind, "message": message, "t": time.monotonic_ns(), **extra})

    def hold_until(self, event: threading.Event) -> None:
        """Block until ``event`` is set, keeping the channel alive meanwhile."""
        while not event.wait(0.5):
            self.keep_channel_alive()

    def keep_channel_alive(self) -> None:
        if self.channel is not None:
            try:
                self.channel.keep_alive()
            except Exception:  # a channel that broke says so at its next real use
                pass

    def wait_while_paused(self, op: str) -> None:
        """Report "paused" and block until resumed (or stopped), then go back to ``op``."""
        self.state = "paused"
        self.op = "paused"
        self.write_record()
        self.hold_until(self.running)
        self.state = "running"
        self.op = op
        self.write_record(status_only=True)

    # -- step mode --------------------------------------------------------------------------
    def set_step_mode(self, on: bool) -> None:
        """From the control thread: hold at every stage from now on, or let go."""
        if on:
            while self.step_permits.acquire(blocking=False):
                pass  # a permit left from an earlier step mode must not advance this one
            self.free_messages = 0
            self.stepping = True
        else:
            self.stepping = False
            self.step_permits.release()  # wake a loop held at the barrier

    def await_step(self, before: str) -> bool:
        """Hold at the barrier before stage ``before`` until the parent allows it; False when
        step mode has ended (or the run is ending): go on without holding."""
        if not self.stepping:
            return False
        op, self.op = self.op, f"held before {before}"
        self.event("held", f"held before {before}", stage=before)
        self.write_record(status_only=True)
        try:
            waited = 0
            while not self.step_permits.acquire(timeout=0.05):
                if self.stopping or self.finish_requested or not self.stepping:
                    return False
                waited += 1
                if waited % 10 == 0:
                    self.keep_channel_alive()
            return self.stepping
        finally:
            self.op = op

    def stage_done(self, stage: str, **facts: Any) -> None:
        """Tell the parent at once that a stage is done, with what this process saw of it
        (labelled as its own report by the parent)."""
        self.event("stage", f"{stage} done", stage=stage, **facts)
        self.write_record(status_only=True)

    def set_state(self, state: str) -> None:
        self.state = state
        self.write_record(status_only=True)

    def sample(self, frame: Frame, forward: bool = True, **timing: Any) -> dict[str, Any]:
        """A message as the front end shows it: envelope, payload and exact wire bytes."""
        assert self.channel is not None
        wire, framing = self.channel.wire_image(frame, forward)
        truncated = len(wire) > SAMPLE_WIRE_CAP
        payload_at = len(wire) - len(frame.payload) - self.channel.trailer_size(frame)
        return {
            "seq": frame.seq,
            "t_send": frame.t_send,
            "ser_ns": frame.ser_ns,
            "crc": frame.crc,
            "size": len(frame.payload),
            "wire_size": len(wire),
            "framing_size": len(wire) - len(frame.payload),
            "payload_at": payload_at,
            "wire": wire[:SAMPLE_WIRE_CAP],
            "truncated": truncated,
            "framing": [[s.start, s.end, s.path, s.label] for s in framing],
            "forward": forward,
            **timing,
        }

    def write_record(self, status_only: bool = False) -> None:
        """Build and write one record. One at a time (loop, control and status threads all
        write), and never cut in half by the stop signal: it is honoured right after."""
        if threading.current_thread() is not threading.main_thread():
            with self._record_lock:  # control/status threads: the loop's state is not theirs
                self._write_record(status_only)
            return
        interruptible, self.in_loop = self.in_loop, False
        try:
            with self._record_lock:
                self._write_record(status_only)
        finally:
            self.in_loop = interruptible
        if interruptible and self.stopping:
            self.in_loop = False
            raise StopRequested()

    def _write_record(self, status_only: bool) -> None:
        now = time.monotonic_ns()
        record: dict[str, Any] = {
            "side": self.role,
            "pid": os.getpid(),
            "t": now,
            "state": self.state,
            "op": self.op,
            "op_since": self.op_since,
            "counts": dict(self.counts),
        }
        if not status_only:
            for name, raw in self.raw.items():
                if raw:
                    self.hists[name].add_many(raw)
                    raw.clear()
            record["hist"] = {name: h.drain() for name, h in self.hists.items()}
            samples = list(self.pinned)
            self.pinned.clear()
            for item in list(self.recent):
                samples.append(self.sample_from_recent(item))
            self.recent.clear()
            record["samples"] = samples
        if self.channel is not None:
            try:
                record["sync"] = [s.report() for s in self.channel.sync_objects()]
                record["live"] = self.channel.live_state()
            except Exception as exc:  # a report must never kill the child
                record["live"] = {"error": str(exc)}
            if not self._sent_describe:
                record["describe"] = self.channel.describe()
                self._sent_describe = True
        events = []
        while self.events:  # popleft is atomic: an event appended meanwhile is kept for later
            events.append(self.events.popleft())
        if events:
            record["events"] = events
        self.telemetry.write(record)
        self.last_flush = now
        self.next_flush = now + FLUSH_INTERVAL_NS

    def sample_from_recent(self, item: tuple) -> dict[str, Any]:
        raise NotImplementedError

    # -- channel lifetime -----------------------------------------------------------------
    def open_channel(self) -> Transport:
        channel = self.transport_cls(self.plan, self.role)  # type: ignore[arg-type]
        self.channel = channel
        t0 = time.monotonic_ns()
        channel.open()
        self.counts["setup_ns"] = time.monotonic_ns() - t0
        return channel

    def cleanup(self) -> None:
        """Close our end and remove every kernel object of the plan (idempotent)."""
        self.in_loop = False
        if self.channel is not None:
            try:
                self.channel.close()
            except Exception:
                pass
        # A channel that outlives its children (a broker's queue) is the parent's to remove,
        # unless the parent is gone: then no one else will.
        if self.transport_cls.children_destroy or os.getppid() != self.parent_pid:
            self.transport_cls.destroy(self.plan)
