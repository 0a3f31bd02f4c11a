"""Typed events the engine emits to any front end (the TUI, the headless runner)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EngineEvent:
    """Base class: every event names the side it concerns ("sender", "receiver" or "session")."""

    side: str


@dataclass(frozen=True)
class StateChanged(EngineEvent):
    state: str


@dataclass(frozen=True)
class ChildReported(EngineEvent):
    """Something a child said: an error, a rejected injection, a corrupt message, EOF."""

    kind: str
    message: str
    reason: str = ""
    #: What else the child said with it (a step stage's own figures: seq, wire_bytes...).
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildExited(EngineEvent):
    code: int
    expected: bool
    message: str


@dataclass(frozen=True)
class SessionEnded(EngineEvent):
    ok: bool
    message: str


@dataclass(frozen=True)
class Progress(EngineEvent):
    """A slow step of the set-up (a broker starting), said while it goes."""

    message: str


def said_by(progress: Callable[[str], None]) -> Callable[[EngineEvent], None]:
    """A listener that passes the session's progress texts to ``progress``."""

    def listener(event: EngineEvent) -> None:
        if isinstance(event, Progress):
            progress(event.message)

    return listener
