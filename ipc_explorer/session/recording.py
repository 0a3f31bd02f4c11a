"""Recording a session as it happens (the file format: telemetry/recording.py): the telemetry
folded into its stats, its events, and its facts when they change; first the state so far
when the recording starts mid-session."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ipc_explorer.session.config import SessionConfig
from ipc_explorer.session.events import EngineEvent
from ipc_explorer.telemetry.recording import (
    DEFAULT_LIMIT_MIB,
    FLUSH_INTERVAL_S,
    RecordingError,
    RecordingWriter,
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


class SessionRecorder:
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
        self.session = session
        self._why = why
        header = {
            **about,
            "kind": "session",
            "started_unix": time.time(),
            "host": socket.gethostname(),
            "cpus": os.cpu_count(),
            "config": config_to_dict(session.config),
        }
        self.writer = RecordingWriter(path, header, limit_mib)
        self._facts: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        #: Why writing stopped (a full disk): the session goes on, the line says so.
        self.failed: str | None = None
        if session.stats.records:  # started mid-session: what was folded in so far, first
            self._guarded(self.writer.add, "state", stats=session.stats.state())
        session.stats.tap = self._on_telemetry
        session.add_listener(self._on_event)

    @property
    def path(self) -> Path:
        return self.writer.path

    def start(self) -> None:
        """Flush on a timer of the running loop (records arrive in batches already)."""
        self._task = asyncio.get_running_loop().create_task(self._flush_often())

    async def _flush_often(self) -> None:
        next_why = 0.0
        while self.failed is None:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self._note_facts()
            if self._why is not None and time.monotonic() >= next_why:
                next_why = time.monotonic() + WHY_EVERY_S
                await self._note_why(self._why)
            self._guarded(self.writer.flush)

    async def _note_why(self, why: Callable[[], list[dict[str, Any]]]) -> None:
        """In a thread: reading a socket table in /proc takes ~10 ms on a busy host, which
        the loop (the app's keys, the children's telemetry) should not wait for."""
        try:
            diagnoses = await asyncio.to_thread(why)
        except (OSError, ValueError, RuntimeError):  # a child gone mid-read: next second
            return
        if diagnoses:
            self._guarded(self.writer.add, "why", diagnoses=diagnoses)

    def _guarded(self, write: Any, *args: Any, **kwargs: Any) -> None:
        """A write that fails (disk full) ends the recording, never the session."""
        if self.failed is not None:
            return
        try:
            write(*args, **kwargs)
        except RecordingError as exc:
            self.failed = str(exc)

    def _on_telemetry(self, record: dict[str, Any]) -> None:
        if record.get("k") == "replace":
            self._guarded(self.writer.add, "replace")
            return
        self._note_facts()
        self._guarded(self.writer.add, "telemetry", rec=record)

    def _on_event(self, event: EngineEvent) -> None:
        self._note_facts()
        self._guarded(self.writer.add, "event", event=event_to_dict(event))

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
            self._guarded(self.writer.add, "facts", **changed)

    def add_step(self, stage: dict[str, Any], message: int) -> None:
        """One stage of step mode: its narration, and what the kernel held after it."""
        self._guarded(self.writer.add, "step", stage=stage, message=message)

    def said(self) -> str:
        """One line for the user: where it went, how big, and whether the cap cut it."""
        writer = self.writer
        size = (
            f"{writer.written / 1024:,.0f} KiB"
            if writer.written < 1 << 20
            else (f"{writer.written / (1 << 20):,.1f} MiB")
        )
        if self.failed is not None:
            return f"the recording stopped: {self.failed}"
        line = f"recorded {writer.records:,} records to {writer.path} ({size})"
        if writer.stopped_by_limit:
            line += f": recording stopped at {writer.limit_mib:g} MiB"
        return line

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self._task is not None:
            self._task.cancel()
        self.session.stats.tap = None
        self.session.remove_listener(self._on_event)
        self._note_facts()
        self._guarded(self.writer.close, {"summary": summary} if summary is not None else None)
