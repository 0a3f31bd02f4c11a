"""Recording the app's session to a file: started by --record or the R key, ended by R, by a
restart of the session (one recording holds one session) or by quitting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ipc_explorer.session import Session
from ipc_explorer.session.recording import SessionRecorder
from ipc_explorer.teach.why import session_diagnoses
from ipc_explorer.telemetry.recording import DEFAULT_LIMIT_MIB, RecordingError


class RecordingSwitch:
    """Owns the app's one recorder; says what it did through ``notify`` (the app's)."""

    def __init__(
        self,
        notify: Callable[..., Any],
        path: str | None = None,
        limit_mib: float = DEFAULT_LIMIT_MIB,
    ) -> None:
        self._notify = notify
        #: Where the next session is recorded from its start (--record), once.
        self.pending_path = path
        self.limit_mib = limit_mib
        self.recorder: SessionRecorder | None = None

    @property
    def active(self) -> bool:
        return self.recorder is not None

    def session_created(self, session: Session) -> None:
        """Before the session starts: record it from its first record if --record asked."""
        if self.pending_path:
            path, self.pending_path = self.pending_path, None
            self.start(session, path)

    def toggle(self, session: Session | None) -> None:
        if self.recorder is not None:
            self.stop()
        elif session is None:
            self._notify("no session running: press r to restart", severity="warning")
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.start(session, f"ipcx-{session.config.mechanism}-{stamp}.ipcx")

    def start(self, session: Session, path: str) -> None:
        try:
            why = lambda: [d.as_json() for d in session_diagnoses(session)]  # noqa: E731
            self.recorder = SessionRecorder(session, path, self.limit_mib, why=why)
        except RecordingError as exc:
            self._notify(str(exc), title="not recording", severity="error", timeout=10)
            return
        self.recorder.start()
        self._notify(f"recording to {path}: R stops, `ipc-explorer replay` plays it")

    def step(self, stage: dict[str, Any]) -> None:
        """A stage of step mode, grouped in the recording by its message's sequence number."""
        if self.recorder is not None:
            self.recorder.add_step(stage, message=stage["seq"])

    def stop(self) -> None:
        """Close the file with the session's summary so far, and say where it is."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close(recorder.session.summary())
            self._notify(recorder.said(), title="recording saved", timeout=10)
