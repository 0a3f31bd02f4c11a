"""Orchestration in the parent: channel set-up, child processes, telemetry, statistics."""

from ipc_explorer.session.config import PATTERNS, SessionConfig, UsageError
from ipc_explorer.session.events import (
    ChildExited,
    ChildReported,
    EngineEvent,
    SessionEnded,
    StateChanged,
)
from ipc_explorer.session.session import (
    Session,
    SessionError,
    largest_message,
    largest_size,
    run_once,
)
from ipc_explorer.session.stats import SessionStats, SideState

__all__ = [
    "PATTERNS",
    "ChildExited",
    "ChildReported",
    "EngineEvent",
    "Session",
    "SessionConfig",
    "SessionEnded",
    "SessionError",
    "SessionStats",
    "SideState",
    "StateChanged",
    "UsageError",
    "largest_message",
    "largest_size",
    "run_once",
]
