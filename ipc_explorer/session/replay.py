"""Replaying a session's recording with no processes: every record checked for the types of
what replay reads (the file itself is checked by telemetry/recording.py), folded into a
Session that never starts, which the panels and the summary read as they read a live one."""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ipc_explorer.session.config import SessionConfig, UsageError
from ipc_explorer.session.recording import KINDS
from ipc_explorer.session.session import Session
from ipc_explorer.session.stats import SideState
from ipc_explorer.telemetry.recording import (
    Anomaly,
    Recording,
    RecordingCursor,
    RecordingError,
    read_recording,
)
from ipc_explorer.transports import TransportOptions

SIDES = ("sender", "receiver")


def read_session_recording(path: str | Path) -> Recording:
    """A session's recording, every record checked for what replay reads from it."""
    recording = read_recording(path, "session")
    recording.keep(KINDS, _shape_problem)
    return recording


def _shape_problem(record: dict[str, Any]) -> str | None:
    """Why a record cannot be folded in, or None: the types of what replay reads."""
    kind = record["k"]
    if kind == "telemetry":
        return _telemetry_problem(record.get("rec"))
    if kind == "state":
        return _state_problem(record.get("stats"))
    if kind == "facts":
        checks = {
            "problems": lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
            "receivers": lambda v: isinstance(v, int),
            "exit_codes": lambda v: (
                isinstance(v, dict) and all(isinstance(c, int) for c in v.values())
            ),
            "clock_offset_ns": lambda v: isinstance(v, int),
            "remote": lambda v: v is None or _remote_ok(v),
        }
        bad = [name for name, ok in checks.items() if name in record and not ok(record[name])]
        return f"facts with a bad {bad[0]}" if bad else None
    if kind == "event":
        event = record.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "an event without a type"
    if kind == "step":
        stage = record.get("stage")
        if not isinstance(record.get("message"), int) or not isinstance(stage, dict):
            return "a step without its stage"
        types_ok = {"seq": int, "stage": str, "narration": str, "reported": dict, "kernel": dict}
        if not all(isinstance(stage.get(k), t) for k, t in types_ok.items()):
            return "a step stage with a bad field"
    if kind == "why":
        diagnoses = record.get("diagnoses")
        fields = {"pid": int, "role": str, "mechanism": str, "state": str, "sentence": str}
        fields |= {"facts": dict, "sources": dict}
        if not isinstance(diagnoses, list) or not all(
            isinstance(d, dict) and all(isinstance(d.get(k), t) for k, t in fields.items())
            for d in diagnoses
        ):
            return "a why-blocked snapshot with a bad diagnosis"
    if kind == "note" and not isinstance(record.get("text"), str):
        return "a note without text"
    if kind == "end" and not isinstance(record.get("summary"), dict | None):
        return "an end without a summary"
    return None


def _remote_ok(value: Any) -> bool:
    clock = value.get("clock") if isinstance(value, dict) else None
    return (
        isinstance(value.get("host"), str)
        and isinstance(value.get("address"), str)
        and isinstance(clock, dict)
        and all(isinstance(clock.get(k), int | float) for k in ("offset_ns", "error_ns"))
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _telemetry_problem(rec: Any) -> str | None:
    if not isinstance(rec, dict) or rec.get("side") not in SIDES:
        return "telemetry without a side"
    for name in ("pid", "t", "op_since"):
        if name in rec and not isinstance(rec[name], int | None):
            return f"telemetry with a bad {name}"
    for name in ("state", "op"):
        if name in rec and not isinstance(rec[name], str):
            return f"telemetry with a bad {name}"
    counts = rec.get("counts", {})
    if not isinstance(counts, dict) or not all(_number(v) for v in counts.values()):
        return "telemetry with bad counts"
    for name in ("live", "describe"):
        if not isinstance(rec.get(name, {}), dict):
            return f"telemetry with a bad {name}"
    if not isinstance(rec.get("sync", []), list):
        return "telemetry with a bad sync"
    hists = rec.get("hist", {})
    if not isinstance(hists, dict):
        return "telemetry with bad histograms"
    for delta in hists.values():
        items = delta.items() if isinstance(delta, dict) else delta
        try:
            if not all(isinstance(b, int) and isinstance(n, int) for b, n in items):
                return "telemetry with bad histogram buckets"
        except (TypeError, ValueError):
            return "telemetry with bad histogram buckets"
    samples = rec.get("samples", [])
    if not isinstance(samples, list) or not all(_sample_ok(s) for s in samples):
        return "telemetry with a bad message sample"
    return None


def _state_problem(state: Any) -> str | None:
    """The stats of a recording that began mid-session: two sides shaped like telemetry,
    histograms of whole buckets, samples, and the throughput window's points."""
    if not isinstance(state, dict):
        return "a state that is not a map"
    sides = state.get("sides")
    if not isinstance(sides, dict) or set(sides) != set(SIDES):
        return "a state without both sides"
    allowed = set(SideState.__dataclass_fields__)
    for name, side in sides.items():
        if not isinstance(side, dict) or side.get("side") != name or set(side) - allowed:
            return "a state with a bad side"
        if why := _telemetry_problem(side):
            return f"a state whose {name} has {why}"
        before = side.get("before", {})
        if not isinstance(before, dict) or not all(_number(v) for v in before.values()):
            return "a state with bad earlier counts"
        if not isinstance(side.get("exit_code"), int | None):
            return "a state with a bad exit code"
    hists = state.get("hists")
    if _telemetry_problem({"side": "sender", "hist": hists}) or not isinstance(hists, dict):
        return "a state with bad histograms"
    points = state.get("rate_points")
    if not isinstance(points, list) or not all(
        isinstance(p, list) and len(p) == 3 and all(isinstance(v, int) for v in p) for p in points
    ):
        return "a state with bad throughput points"
    recent = state.get("recent")
    if not isinstance(recent, list) or not all(_sample_ok(x) for x in recent):
        return "a state with a bad message sample"
    if not all(isinstance(state.get(k), int) for k in ("sample_count", "records")):
        return "a state with bad counters"
    return None


def _sample_ok(sample: Any) -> bool:
    return (
        isinstance(sample, dict)
        and isinstance(sample.get("seq", 0), int)
        and isinstance(sample.get("wire", b""), bytes)
    )


def _fits(value: Any, hint: Any) -> bool:
    """Whether a recorded value has the type a settings field declares."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is not None:  # dict[str, int]: a map of numbers
        return isinstance(value, origin) and (
            origin is not dict or all(isinstance(v, int) for v in value.values())
        )
    if hint is float:
        return _number(value)
    return isinstance(value, hint)


def _checked(cls: type, values: Any, what: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise RecordingError(f"the recording's {what} are not a map")
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in values.items():
        if name not in hints or name in ("options", "secrets"):
            continue
        if not _fits(value, hints[name]):
            raise RecordingError(f"the recording's {what}: {name} is {value!r}")
        out[name] = value
    return out


def config_from_dict(values: dict[str, Any]) -> SessionConfig:
    """The recorded settings, each checked for its type and then as the command line's are."""
    kwargs = _checked(SessionConfig, values, "settings")
    options = _checked(TransportOptions, values.get("options", {}), "channel options")
    config = SessionConfig(**kwargs, options=TransportOptions(**options))
    try:
        config.validate()
    except UsageError as exc:
        raise RecordingError(f"the recording's settings are not valid: {exc}") from None
    return config


class ReplayedSession(Session):
    """A Session that never starts: its stats and facts are folded from recorded records,
    so that every front end (panels, inspector, summary) reads it as it read the live one."""

    def __init__(self, recording: Recording) -> None:
        header = recording.header
        super().__init__(config_from_dict(header["config"]))
        self.host = str(header.get("host", "?"))
        cpus = header.get("cpus")
        self.cpus = cpus if isinstance(cpus, int) else None
        self.events: list[dict[str, Any]] = []
        self.steps: list[dict[str, Any]] = []  # step mode's stages, each with its message
        #: The kernel's latest why-blocked account of each child, as it was recorded.
        self.why: list[dict[str, Any]] = []

    def fold(self, record: dict[str, Any]) -> None:
        kind = record["k"]
        if kind == "telemetry":
            self.stats.apply(record["rec"])
        elif kind == "state":
            self.stats.load_state(record["stats"])
        elif kind == "replace":
            self.stats.replace_receiver()
        elif kind == "facts":
            for name in ("problems", "receivers", "exit_codes", "clock_offset_ns"):
                if name in record:
                    setattr(self, name, copy.copy(record[name]))
            if "remote" in record:
                remote = record["remote"]
                self.remote = None if remote is None else SimpleNamespace(**remote)
        elif kind == "event":
            self.events.append(record["event"])
        elif kind == "step":
            self.steps.append(record)
        elif kind == "why":
            self.why = record["diagnoses"]

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "stats": self.stats,
                "problems": self.problems,
                "receivers": self.receivers,
                "exit_codes": self.exit_codes,
                "clock_offset_ns": self.clock_offset_ns,
                "remote": self.remote,
                "events": self.events,
                "steps": self.steps,
                "why": self.why,
            }
        )

    def restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in copy.deepcopy(snapshot).items():
            setattr(self, name, value)


def find_anomalies(records: list[dict[str, Any]]) -> list[Anomaly]:
    """The moments worth jumping to: counts of loss or damage going up, a writer starting to
    block, a child's error or an unexpected exit."""
    found: list[Anomaly] = []
    last: dict[str, float] = {}
    blocked = False

    def rise(name: str, value: Any, index: int, t: int, kind: str, text: str) -> None:
        if _number(value) and value > last.get(name, 0):
            found.append(Anomaly(index, t, kind, text.format(n=int(value - last.get(name, 0)))))
        if _number(value):
            last[name] = value

    for index, record in enumerate(records, 1):
        t, kind = record["t"], record["k"]
        if kind == "telemetry":
            rec = record["rec"]
            counts = rec.get("counts", {})
            if rec["side"] == "receiver":
                rise("corrupt", counts.get("corrupt"), index, t, "corrupt", "{n} corrupt")
                rise("dup", counts.get("duplicated"), index, t, "duplicate", "{n} duplicated")
                rise("reorder", counts.get("reordered"), index, t, "reorder", "{n} reordered")
                drops = rec.get("live", {}).get("kernel_drops")
                rise("drops", drops, index, t, "loss", "{n} dropped by the kernel")
            else:
                rise("timeouts", counts.get("timeouts"), index, t, "loss", "{n} timed out")
                stalled = rec.get("t", 0) - counts.get("t_last", 0) if counts.get("t_last") else 0
                now_blocked = rec.get("op") == "send" and stalled > 200_000_000
                if now_blocked and not blocked:
                    found.append(Anomaly(index, t, "block", "the sender is blocked in send"))
                blocked = now_blocked
        elif kind == "replace":  # a new receiver counts from zero again
            for name in ("dup", "reorder", "corrupt"):
                last.pop(name, None)
        elif kind == "event":
            event = record["event"]
            if event.get("type") == "ChildReported" and event.get("kind") in ("error", "corrupt"):
                found.append(Anomaly(index, t, "error", str(event.get("message", ""))))
            elif event.get("type") == "ChildExited" and not event.get("expected", True):
                found.append(Anomaly(index, t, "exit", str(event.get("message", ""))))
    return found


class Replay(RecordingCursor):
    """A session's recording and a position in it (see RecordingCursor)."""

    def __init__(self, recording: Recording) -> None:
        super().__init__(recording)
        self.session = ReplayedSession(recording)
        self.anomalies = find_anomalies(recording.records)

    def fold(self, record: dict[str, Any]) -> None:
        self.session.fold(record)

    def snapshot(self) -> dict[str, Any]:
        return self.session.snapshot()

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.session.restore(snapshot)

    def summary(self) -> dict[str, Any]:
        return self.session.summary()
