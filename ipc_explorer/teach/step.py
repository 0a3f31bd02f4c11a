"""Step mode: one message, one stage at a time, on the real sender and receiver.

Both children hold at a barrier before each of their stages (``ChildRuntime.await_step``); the
stepper lets one side do one stage, waits for its report, then reads what the kernel holds
between them (``Transport.kernel_facts``) while both are held again. Between the send and
the receive the kernel holds exactly the message: that is the point of the ``kernel`` stage.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from ipc_explorer.explain import step as words
from ipc_explorer.kernel.facts import Facts
from ipc_explorer.session import ChildReported, EngineEvent, Session

ONE_WAY = ("build", "serialize", "send", "kernel", "receive", "deserialize", "verified")
ROUND_TRIP = (*ONE_WAY, "echo")
#: Which child does a stage (None: nobody moves, the parent reads the kernel).
SIDE_OF = {
    "build": "sender",
    "serialize": "sender",
    "send": "sender",
    "kernel": None,
    "receive": "receiver",
    "deserialize": "receiver",
    "verified": "receiver",
    "echo": "receiver",
}
#: How long a child may take over one stage before the stepper says so.
STAGE_TIMEOUT_S = 5.0
#: How long to wait for a child to reach the barrier when step mode is entered.
HOLD_TIMEOUT_S = 2.0
#: Messages sent straight through, at most, to bring a receiver blocked in its receive call to
#: the barrier when step mode is entered while the flow runs.
WAKE_ATTEMPTS = 3
#: How long a backlog may take to drain when step mode is entered.
DRAIN_TIMEOUT_S = 10.0
#: Kernel (or broker) facts that are not 0 while the channel holds a message.
HOLDING_FACTS = (
    "queued_bytes",
    "next_datagram_bytes",
    "queue_depth",
    "full",
    "consumer_queued_bytes",
)


class StepError(Exception):
    """A child did not do its stage (gone, failed, too slow): the text says which."""


@dataclass
class StageReport:
    """One stage of one message: who did it, what it said, what the kernel holds after it."""

    seq: int
    stage: str
    side: str | None
    narration: str
    panel: str
    reported: dict[str, Any] = field(default_factory=dict)
    kernel: Facts = field(default_factory=Facts)

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "panel": self.panel,
            "stage": self.stage,
            "side": self.side,
            "narration": self.narration,
            "reported": self.reported,
            "kernel": self.kernel.values() or {"exposed": False},
            "sources": self.kernel.sources()
            or {"exposed": f"the kernel exposes no queue of {self.stage!r} here"},
        }


def report_from_json(data: dict[str, Any]) -> StageReport:
    """A StageReport as ``as_json`` wrote it (a recording)."""
    kernel = data["kernel"] if data["kernel"].get("exposed") is not False else {}
    return StageReport(
        seq=data.get("seq", -1),
        stage=data["stage"],
        side=data["side"],
        narration=data["narration"],
        panel=data.get("panel", words.PANELS[data["stage"]]),
        reported=data["reported"],
        kernel=Facts.from_json(kernel, data["sources"]),
    )


class Stepper:
    """Drives a session's children through the stages of one message after another."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.stages = ROUND_TRIP if session.config.pattern == "ping-pong" else ONE_WAY
        self.position = 0
        self.seq: int | None = None
        self.active = False
        self.held: dict[str, str | None] = {"sender": None, "receiver": None}
        self._events: dict[str, asyncio.Queue[ChildReported]] = {
            "sender": asyncio.Queue(),
            "receiver": asyncio.Queue(),
        }
        self._last: dict[str, Any] = {}
        session.add_listener(self._on_event)

    # -- what the children say ---------------------------------------------------------------
    def _on_event(self, event: EngineEvent) -> None:
        if not isinstance(event, ChildReported) or event.side not in self._events:
            return
        if event.kind == "held":
            self.held[event.side] = event.details.get("stage")
        elif event.kind == "stage":
            self.held[event.side] = None
            self._events[event.side].put_nowait(event)

    async def _stage_event(self, side: str, stage: str) -> ChildReported:
        deadline = time.monotonic() + STAGE_TIMEOUT_S
        queue = self._events[side]
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.session.alive(side):
                raise StepError(f"the {side} did not finish {stage!r} within {STAGE_TIMEOUT_S:g} s")
            try:
                event = await asyncio.wait_for(queue.get(), min(left, 0.1))
            except TimeoutError:
                continue
            if event.details.get("stage") == stage:
                return event

    async def _until_held(self, side: str, timeout: float = HOLD_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        while self.held[side] is None:
            if time.monotonic() > deadline or not self.session.alive(side):
                return False
            await asyncio.sleep(0.01)
        return True

    # -- in and out --------------------------------------------------------------------------
    async def enter(self) -> None:
        """Hold both children at the barrier: the sender before its next message, the
        receiver before its next receive, with nothing left in the channel between them."""
        session = self.session
        for side in ("receiver", "sender"):
            session.resume(side)
        if session.config.step:  # started held: each holds before its first stage
            for side in ("sender", "receiver"):
                if not await self._until_held(side):
                    raise StepError(f"the {side} did not reach the step barrier")
        else:
            # The receiver runs on meanwhile: whatever the channel still holds (a backlog, what
            # a paused receiver left) drains, and a sender blocked in a full channel's send
            # finishes it and holds.
            session.send_control("sender", {"op": "step_mode", "on": True})
            if not await self._until_held("sender", DRAIN_TIMEOUT_S):
                raise StepError("the sender did not reach the step barrier")
            await self._until_drained()
            session.send_control("receiver", {"op": "step_mode", "on": True})
            if not await self._until_held("receiver", 0.3):
                # Idle in its receive call: one message straight through wakes it, and it
                # holds before the next receive.
                for _ in range(WAKE_ATTEMPTS):
                    session.send_control("sender", {"op": "step", "free": True})
                    if await self._until_held("receiver", 1.0):
                        break
                else:
                    raise StepError("the receiver did not reach the step barrier")
                await self._until_held("sender")
        for queue in self._events.values():
            while not queue.empty():
                queue.get_nowait()
        self.position = 0
        self.seq = None
        self.active = True

    async def _until_drained(self) -> None:
        """Until the receiver has taken everything sent and the kernel holds nothing (as far
        as it tells); a lossy channel's losses do not hold this up."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        session = self.session
        while time.monotonic() < deadline:
            for side in ("sender", "receiver"):
                session.send_control(side, {"op": "report"})
            await asyncio.sleep(0.05)
            facts = self.kernel_facts().values()
            empty = not any(facts.get(name) for name in HOLDING_FACTS)
            caught_up = session.lossy or session.stats.receiver.count(
                "unique"
            ) >= session.stats.sender.count("sent")
            if empty and caught_up:
                return
        raise StepError("the channel did not drain before step mode")

    async def leave(self) -> None:
        """Let both go: a message half way finishes without holding, the flow goes on."""
        self.active = False
        for side in ("sender", "receiver"):
            self.session.send_control(side, {"op": "step_mode", "on": False})

    def close(self) -> None:
        self.session.remove_listener(self._on_event)

    # -- one stage ---------------------------------------------------------------------------
    @property
    def next_stage(self) -> str:
        return self.stages[self.position]

    async def advance(self) -> StageReport:
        """Do the next stage and report it with the kernel's facts read after it."""
        stage = self.next_stage
        side = SIDE_OF[stage]
        reported: dict[str, Any] = {}
        if side is not None:
            self.session.send_control(side, {"op": "step"})
            event = await self._stage_event(side, stage)
            reported = dict(event.details)
            reported.pop("stage", None)
            if stage == "echo":
                echo = await self._stage_event("sender", "echo received")
                reported["rtt_ns"] = echo.details.get("rtt_ns")
        if stage == "build":
            self.seq = reported.get("seq")
            self._last = {}
        self._last.update(reported)  # later stages of the message say earlier figures too
        kernel = self.kernel_facts()
        report = StageReport(
            seq=self.seq if self.seq is not None else -1,
            stage=stage,
            side=side,
            narration=self.narrate(stage, reported, kernel),
            panel=words.PANELS[stage],
            reported=reported,
            kernel=kernel,
        )
        self.position = (self.position + 1) % len(self.stages)
        return report

    async def one_message(self) -> list[StageReport]:
        """Every stage of the next message, in order."""
        reports = [await self.advance()]
        while self.position:
            reports.append(await self.advance())
        return reports

    def kernel_facts(self) -> Facts:
        session = self.session
        assert session.plan is not None
        return session.transport_cls.kernel_facts(session.plan, session.channel_ends())

    # -- what to say ---------------------------------------------------------------------------
    def narrate(self, stage: str, reported: dict[str, Any], kernel: Facts) -> str:
        cfg = self.session.config
        send_call, recv_call, held_in = words.CALLS.get(
            cfg.mechanism, ("send", "receive", "the channel")
        )
        if cfg.options.split_writes and cfg.mechanism in ("tcp", "unix-stream", "http"):
            send_call = words.SPLIT_SEND
        figures: dict[str, Any] = {**self._last, **reported, **kernel.values()}
        figures.update(
            format=cfg.format,
            send_call=send_call,
            recv_call=recv_call,
            held_in=held_in,
            seq=self.seq,
            what=_what(reported),
            kernel_line=_kernel_line(kernel),
            kernel_after=_kernel_line(kernel) or "the kernel shows nothing queued",
            check=_check(reported),
            order=(
                "in order"
                if reported.get("in_order", True)
                else f"out of order (expected {reported.get('expected_seq')})"
            ),
            integrity=(
                "intact (checksum and decode)" if reported.get("intact", True) else "CORRUPT"
            ),
        )
        line = words.STAGES[stage]
        other = reported.get("seq")
        mismatch = other is not None and self.seq is not None and other != self.seq
        if side_of_receiver(stage) and mismatch:
            line += words.OTHER_MESSAGE.format(other=other, seq=self.seq)
        if stage == "send":
            line = words.SEND_LINES.get(cfg.mechanism, line)
        elif stage == "kernel":
            line = words.KERNEL_STAGE_LINES.get(cfg.mechanism, line)
        elif stage == "receive":
            line = words.RECEIVE_LINES.get(cfg.mechanism, line)
        try:
            return line.format(**figures)
        except (KeyError, IndexError):
            return f"{stage} done"


def side_of_receiver(stage: str) -> bool:
    return SIDE_OF.get(stage) == "receiver"


def _what(reported: dict[str, Any]) -> str:
    if reported.get("value_type") == "map":
        keys = ", ".join(reported.get("keys", []))
        kind = "an injected map" if reported.get("injected") else "a map"
        return f"{kind} of {len(reported.get('keys', []))} fields ({keys})"
    return f"a {reported.get('value_type', 'value')}"


def _check(reported: dict[str, Any]) -> str:
    if not reported.get("crc_ok", True):
        return "the CRC-32 does not match: the bytes changed on the way"
    if reported.get("error"):
        return f"it does not decode: {reported['error']}"
    return "its CRC-32 matched the sender's"


def _kernel_line(kernel: Facts) -> str:
    figures = kernel.values()
    # a pipe's capacity bounds what it holds; a socket's buffers are not a byte count of data
    capacity = figures.get("capacity_bytes")
    figures["capacity"] = f" (of {capacity:,} the pipe holds)" if capacity else ""
    for name, line in words.KERNEL_LINES.items():
        if name in figures:
            if not figures[name]:
                line = words.KERNEL_EMPTY[name]
            try:
                return line.format(**figures)
            except KeyError:
                return f"{name} = {figures[name]}"
    return ""
