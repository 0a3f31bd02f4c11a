"""What every lesson is: a scenario the app opens on, its text, and claims it checks on a real
run of its own (headless, ``ipc-explorer lesson NAME --json``)."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from ipc_explorer.explain.lessons import LESSONS as TEXTS
from ipc_explorer.explain.lessons import LessonText
from ipc_explorer.lab.config import ContendConfig
from ipc_explorer.lab.run import ContendRun
from ipc_explorer.session import Session, SessionConfig, SessionError
from ipc_explorer.teach.why import Diagnosis, session_diagnoses


@dataclass
class FilledChannel:
    """What a paused receiver showed: both sides' diagnoses and the kernel's facts while the
    writer was stuck, and the run's summary once the receiver went on and drained it."""

    writer: Diagnosis
    reader: Diagnosis
    kernel: dict[str, Any]
    summary: dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One claim of a lesson, what the run showed, and whether that bears the claim out."""

    claim: str
    observed: dict[str, Any]
    holds: bool

    def as_json(self) -> dict[str, Any]:
        return {"claim": self.claim, "observed": self.observed, "holds": bool(self.holds)}


class Lesson(ABC):
    """One lesson. ``face`` says what the app opens: the message flow, the lab or the
    inspector, on ``session_config`` / ``lab_config``."""

    name: ClassVar[str]
    face: ClassVar[str] = "flow"

    @property
    def text(self) -> LessonText:
        return TEXTS[self.name]

    def session_config(self) -> SessionConfig:
        """The flow the app shows (and the inspector's message comes from)."""
        return SessionConfig(count=None, rate=100)

    def lab_config(self) -> ContendConfig | None:
        return None

    @abstractmethod
    async def check(self) -> list[Check]:
        """Run the scenario for real, headless, and check each claim against what happened."""


async def writer_stalls(session: Session, side: str = "sender", timeout: float = 10.0) -> int:
    """Wait until ``side`` stops making progress (blocked by a full channel); its sent count."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        session.send_control(side, {"op": "report"})
        await asyncio.sleep(0.15)
        sent = session.stats.side(side).count("sent")
        if sent == last:
            return sent
        last = sent
    return last


async def finish(session: Session, run_for: float = 0.5) -> dict[str, Any]:
    """Let the flow go on a little, then stop the sender, let the receiver take what is in
    flight, and return the run's summary (counts that add up)."""
    await asyncio.sleep(run_for)
    await session.stop(drain=True)
    return session.summary()


async def contend(config: ContendConfig) -> dict[str, Any]:
    """One lab run to its end, everything removed after; its result."""
    run = ContendRun(config)
    try:
        await run.start()
        return await run.wait()
    finally:
        await run.stop()


async def fill_then_drain(config: SessionConfig) -> FilledChannel:
    """Pause the receiver until the writer is stuck on a full channel, look (the kernel's view
    of both sides and of the channel), then let the receiver drain it and sum the run up."""
    session = Session(config)
    await session.start()
    try:
        session.pause("receiver")
        await writer_stalls(session)
        diagnoses = session_diagnoses(session)
        if len(diagnoses) != 2:
            raise SessionError("a child ended before the channel filled")
        writer, reader = diagnoses
        assert session.plan is not None
        kernel = session.transport_cls.kernel_facts(session.plan, session.channel_ends()).values()
        session.resume("receiver")
        summary = await finish(session)
    finally:
        await session.stop(drain=False)
    return FilledChannel(writer, reader, kernel, summary)
