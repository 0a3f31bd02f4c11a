"""Recording a session as it happens (the file format: telemetry/recording.py): the telemetry
folded into its stats, its events, and its facts when they change; first the state so far
when the recording starts mid-session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ipc_explorer.session.config import SessionConfig
from ipc_explorer.session.events import EngineEvent
from ipc_explorer.telemetry.recording import (
    DEFAULT_LIMIT_MIB,
    Recorder,
)
from ipc_explorer.transports.base import redact

#: Record kinds of a session's recording (others, from a newer writer, are skipped).
KINDS = ("state", "telemetry", "replace", "event", "facts", "step", "why", "note", "end")
#: How often a recorder that can ask the kernel why each child waits (``why``) writes it down.
WHY_EVERY_S = 1.0


def config_to_dict(config: SessionConfig) -> dict[str, Any]:
    """The settings as plain values, a broker's password left out."""
    out = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "options"}
    options = config.options.to_json()
    if options.get("broker"):
        options["broker"] = redact(options["broker"])
    out["options"] = options
    return out


def event_to_dict(event: EngineEvent) -> dict[str, Any]:
    return {"type": type(event).__name__, **asdict(event)}


class SessionRecorder(Recorder):
    """Records one Session: the telemetry folded into its stats, its events, and its facts
    (problems, receivers, exit codes, the other host's clock) whenever they change."""

    def __init__(
        self,
        session: Any,
        path: str | Path,
        limit_mib: float = DEFAULT_LIMIT_MIB,
        why: Callable[[], list[dict[str, Any]]] | None = None,
        **about: Any,
    ) -> None:
        """``why``: each child's why-blocked diagnosis as JSON, from the kernel (a front end
        passes teach's); written once a second. ``about``: more of the header
        (``command="step"``, ``count``: a step run)."""
        header = {"kind": "session", "config": config_to_dict(session.config)}
        super().__init__(path, header, limit_mib, **about)
        self.session = session
        self._why = why
        self._next_why = 0.0
        self._facts: dict[str, Any] = {}
        if session.stats.records:  # started mid-session: what was folded in so far, first
            self.guarded(self.writer.add, "state", stats=session.stats.state())
        session.stats.tap = self._on_telemetry
        session.add_listener(self._on_event)

    async def before_flush(self) -> None:
        self._note_facts()
        if self._why is not None and time.monotonic() >= self._next_why:
            self._next_why = time.monotonic() + WHY_EVERY_S
            await self._note_why(self._why)

    async def _note_why(self, why: Callable[[], list[dict[str, Any]]]) -> None:
        """In a thread: reading a socket table in /proc takes ~10 ms on a busy host, which
        the loop (the app's keys, the children's telemetry) should not wait for."""
        try:
            diagnoses = await asyncio.to_thread(why)
        except (OSError, ValueError, RuntimeError):  # a child gone mid-read: next second
            return
        if diagnoses:
            self.guarded(self.writer.add, "why", diagnoses=diagnoses)

    def _on_telemetry(self, record: dict[str, Any]) -> None:
        if record.get("k") == "replace":
            self.guarded(self.writer.add, "replace")
            return
        self._note_facts()
        self.guarded(self.writer.add, "telemetry", rec=record)

    def _on_event(self, event: EngineEvent) -> None:
        self._note_facts()
        self.guarded(self.writer.add, "event", event=event_to_dict(event))

    def _note_facts(self) -> None:
        """What the summary needs besides telemetry, written when it changes."""
        session = self.session
        link = session.remote
        facts = {
            "problems": list(session.problems),
            "receivers": session.receivers,
            "exit_codes": dict(session.exit_codes),
            "clock_offset_ns": session.clock_offset_ns,
            "remote": None
            if link is None
            else {"host": link.host, "address": link.address, "clock": dict(link.clock)},
        }
        changed = {k: v for k, v in facts.items() if self._facts.get(k) != v}
        if changed:
            self._facts.update(changed)
            self.guarded(self.writer.add, "facts", **changed)

    def add_step(self, stage: dict[str, Any], message: int) -> None:
        """One stage of step mode: its narration, and what the kernel held after it."""
        self.guarded(self.writer.add, "step", stage=stage, message=message)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        self.stop_timer()
        self.session.stats.tap = None
        self.session.remove_listener(self._on_event)
        self._note_facts()
        self.guarded(self.writer.close, {"summary": summary} if summary is not None else None)
