"""The message session: a sender and a receiver process on one mechanism, every message timed
and verified.

``config`` (what runs, validated), ``session`` (the channel's kernel objects, the children,
their control and telemetry), ``stats`` (what the children report, merged and bounded),
``events`` (typed events for any front end) and ``bench`` (every mechanism with one workload,
and the floor beside it). Knows nothing of any front end.
"""

from ipc_explorer.session.config import PATTERNS, SessionConfig, UsageError
from ipc_explorer.session.events import (
    ChildExited,
    ChildReported,
    EngineEvent,
    Progress,
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
    "Progress",
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
