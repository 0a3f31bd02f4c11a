"""Recording a session to a file as it happens, to replay it later with no processes.

The file is gzip (``gzip -dc`` reads it) holding a stream of MessagePack maps: a header, then
one record per thing the panels show (a telemetry batch of a child, an engine event, a change
of the session's facts; first the state so far when it starts mid-session), each stamped with
nanoseconds since the recording started. Records are buffered and written ten times a second
as one gzip member each (with its own CRC), so a crash or SIGKILL leaves a file whose complete
members replay. Nothing but plain MessagePack types goes in (no pickle, no code), and a reader
checks every size and type (see replay.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import zlib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import msgpack

from ipc_explorer.session.config import SessionConfig
from ipc_explorer.session.events import EngineEvent
from ipc_explorer.transports.base import redact

FORMAT = "ipc-explorer recording"
VERSION = 1
#: Record kinds a reader of this version knows (others, from a newer writer, are skipped).
KINDS = ("state", "telemetry", "replace", "event", "facts", "note", "end")
#: The default cap on a recording's size on disk: the flow of a long session at full rate
#: samples its messages, but their bytes still add up.
DEFAULT_LIMIT_MIB = 64
FLUSH_INTERVAL_S = 0.1
#: How much buffered before a flush is forced, whatever the interval.
FLUSH_BYTES = 1 << 20


class RecordingError(Exception):
    """A recording that cannot be written or read; the text says where and why."""


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


class RecordingWriter:
    """Appends records to one file; ``close`` ends it with the gzip trailer."""

    def __init__(self, path: str | Path, header: dict[str, Any], limit_mib: float) -> None:
        self.path = Path(path)
        self.limit = int(limit_mib * 1024 * 1024)
        self._t0 = time.monotonic_ns()
        self._packer = msgpack.Packer(use_bin_type=True)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.written = 0  # bytes on disk
        self.records = 0
        self.stopped_by_limit = False
        self.closed = False
        try:
            # Payload bytes may be private: the file is the user's only.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            why = exc.strerror
            raise RecordingError(f"cannot write the recording {self.path}: {why}") from None
        self._put({"format": FORMAT, "version": VERSION, **header})
        self.flush()

    def now(self) -> int:
        return time.monotonic_ns() - self._t0

    def add(self, kind: str, **fields: Any) -> None:
        """One record, stamped now; dropped once the size cap was reached."""
        if self.closed or self.stopped_by_limit:
            return
        self._put({"t": self.now(), "k": kind, **fields})
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()

    def _put(self, record: dict[str, Any]) -> None:
        data = self._packer.pack(record)
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.records += 1

    def flush(self) -> None:
        """Compress what is buffered into a gzip member of its own (with its CRC) and write it
        whole: the file always ends on a complete record, whatever kills the writer next."""
        if self.closed or not self._pending:
            return
        data = _member(b"".join(self._pending))
        self._pending.clear()
        self._pending_bytes = 0
        if self.stopped_by_limit:
            return
        if self.written + len(data) > self.limit and self.records > 1:
            self.stopped_by_limit = True
            mib = self.limit / (1024 * 1024)
            note = {"t": self.now(), "k": "note", "text": f"recording stopped at {mib:g} MiB"}
            self.records += 1
            self._write(_member(self._packer.pack(note)))
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self.closed = True
            os.close(self._fd)
            raise RecordingError(f"writing the recording {self.path}: {exc.strerror}") from None
        self.written += len(data)

    def close(self, end: dict[str, Any] | None = None) -> None:
        """Write the last records (``end``: the run's summary) and the gzip trailer."""
        if self.closed:
            return
        if end is not None and not self.stopped_by_limit:
            self._put({"t": self.now(), "k": "end", **end})
        self.flush()
        self.closed = True
        os.close(self._fd)


def _member(data: bytes) -> bytes:
    """One gzip member: readers take a file of concatenated members as one stream."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
    return compressor.compress(data) + compressor.flush()


class SessionRecorder:
    """Records one Session: the telemetry folded into its stats, its events, and its facts
    (problems, receivers, exit codes, the other host's clock) whenever they change."""

    def __init__(self, session: Any, path: str | Path, limit_mib: float = DEFAULT_LIMIT_MIB):
        self.session = session
        header = {
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
        while self.failed is None:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self._note_facts()
            self._guarded(self.writer.flush)

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
            line += f": recording stopped at {writer.limit / (1 << 20):g} MiB"
        return line

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self._task is not None:
            self._task.cancel()
        self.session.stats.tap = None
        self.session.remove_listener(self._on_event)
        self._note_facts()
        self._guarded(self.writer.close, {"summary": summary} if summary is not None else None)
