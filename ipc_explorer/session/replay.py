"""Reading a recording back (safe to open from a stranger) and replaying it with no processes.

A recording is a series of gzip members, each a batch of MessagePack records (recording.py).
A member's records are taken only once its CRC checks out, so a file cut short (a SIGKILL
mid-write) or damaged replays what came before the damage, and the error says at which byte
of the file it lies. Sizes are bounded (file, member, record), MessagePack extension types
are refused, and every record's shape is checked before anything folds it in.
"""

from __future__ import annotations

import copy
import types
import typing
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack

from ipc_explorer.session.config import SessionConfig, UsageError
from ipc_explorer.session.recording import FORMAT, KINDS, VERSION, RecordingError
from ipc_explorer.session.session import Session
from ipc_explorer.session.stats import SideState
from ipc_explorer.transports import TransportOptions

MAX_FILE = 1 << 30
#: A member holds one flush (about 0.1 s of records): far below this.
MAX_MEMBER = 128 << 20
MAX_RECORD = 64 << 20
READ_CHUNK = 1 << 20
#: Replay keeps a copy of the folded state this often, so that a step back is quick.
CHECKPOINT_EVERY = 256
SIDES = ("sender", "receiver")


@dataclass
class Recording:
    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]]
    #: Why reading stopped before the end of the file (truncated, corrupt), else None.
    problem: str | None = None
    skipped: int = 0  # records of kinds this version does not know

    @property
    def duration_ns(self) -> int:
        return self.records[-1]["t"] if self.records else 0

    @property
    def notes(self) -> list[str]:
        return [r["text"] for r in self.records if r["k"] == "note"]


def _no_extensions(code: int, data: bytes) -> Any:
    raise ValueError(f"MessagePack extension type {code} (a recording has none)")


def read_recording(path: str | Path) -> Recording:
    """The header and every record before the end of the file or the first damage. Raises
    RecordingError only when nothing is usable (no such file, not a recording, no header)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        raise RecordingError(f"cannot open the recording {path}: {exc.strerror}") from None
    if size > MAX_FILE:
        handle.close()
        raise RecordingError(f"{path} is {size:,} bytes: more than a recording can be")
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    skipped = 0
    problem: str | None = None
    with handle:
        for start, member in _members(handle, path):
            if isinstance(member, str):
                problem = member
                break
            unpacker = msgpack.Unpacker(
                raw=False,
                strict_map_key=False,
                max_buffer_size=MAX_RECORD,
                ext_hook=_no_extensions,
            )
            unpacker.feed(member)
            try:
                for record in unpacker:
                    if header is None:
                        header = _check_header(record, path)
                        continue
                    why = _shape_problem(record)
                    if why is not None:
                        raise ValueError(f"record {len(records) + 1}: {why}")
                    if record["k"] in KINDS:
                        records.append(record)
                    else:
                        skipped += 1
                if unpacker.tell() != len(member):
                    raise ValueError("the block ends inside a record")
            except (ValueError, msgpack.UnpackException) as exc:
                if header is None:
                    raise RecordingError(f"{path} is not an ipc-explorer recording") from None
                problem = f"damaged data in the block at byte {start:,} of the file: {exc}"
                break
    if header is None:
        raise RecordingError(
            f"{path} is not an ipc-explorer recording"
            + (f" ({problem})" if problem else " (it is empty)")
        )
    return Recording(path, header, records, problem, skipped)


def _members(handle: Any, path: Path):  # noqa: ANN202 - a generator of (offset, bytes | str)
    """Each complete gzip member's bytes with its offset in the file; a string says why the
    rest of the file cannot be read."""
    offset = 0  # of the current member's first byte in the file
    consumed = 0  # bytes of the file fed to the decompressor so far
    decompressor = zlib.decompressobj(31)
    out: list[bytes] = []
    out_size = 0
    pending = b""
    while True:
        if not pending:
            pending = handle.read(READ_CHUNK)
            if not pending:
                break
        try:
            data = decompressor.decompress(pending, MAX_MEMBER + 1 - out_size)
        except zlib.error as exc:
            yield offset, f"damaged data in the block at byte {offset:,} of the file ({exc})"
            return
        out.append(data)
        out_size += len(data)
        if out_size > MAX_MEMBER:
            yield offset, f"the block at byte {offset:,} unpacks to more than {MAX_MEMBER:,} bytes"
            return
        if decompressor.eof:
            used = len(pending) - len(decompressor.unused_data)
            consumed += used
            yield offset, b"".join(out)
            offset = consumed
            pending = decompressor.unused_data
            decompressor = zlib.decompressobj(31)
            out, out_size = [], 0
        elif decompressor.unconsumed_tail:
            consumed += len(pending) - len(decompressor.unconsumed_tail)
            pending = decompressor.unconsumed_tail
        else:
            consumed += len(pending)
            pending = b""
    if out_size or consumed > offset:
        yield (
            offset,
            (
                f"the file ends inside the block at byte {offset:,} (cut short while it was "
                "written): what came before it is replayed"
            ),
        )


def _check_header(record: Any, path: Path) -> dict[str, Any]:
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RecordingError(f"{path} is not an ipc-explorer recording")
    version = record.get("version")
    if not isinstance(version, int) or version < 1:
        raise RecordingError(f"{path}: the recording's version is not a number")
    if version > VERSION:
        raise RecordingError(
            f"{path} was made by a newer ipc-explorer (recording version {version}; this one "
            f"reads up to {VERSION})"
        )
    if record.get("kind") != "session" or not isinstance(record.get("config"), dict):
        raise RecordingError(f"{path}: the recording's header has no session settings")
    return record


def _shape_problem(record: Any) -> str | None:
    """Why a record cannot be folded in, or None: types and sizes of what replay reads."""
    if not isinstance(record, dict):
        return "not a map"
    t, kind = record.get("t"), record.get("k")
    if not isinstance(t, int) or not 0 <= t < 1 << 62 or not isinstance(kind, str):
        return "no time stamp or kind"
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
            }
        )

    def restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in copy.deepcopy(snapshot).items():
            setattr(self, name, value)


@dataclass
class Anomaly:
    index: int  # the record after which it shows
    t: int
    kind: str  # loss, corrupt, duplicate, reorder, block, error, exit
    text: str


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
        elif kind == "replace":
            last.pop("dup", None), last.pop("reorder", None), last.pop("corrupt", None)
        elif kind == "event":
            event = record["event"]
            if event.get("type") == "ChildReported" and event.get("kind") in ("error", "corrupt"):
                found.append(Anomaly(index, t, "error", str(event.get("message", ""))))
            elif event.get("type") == "ChildExited" and not event.get("expected", True):
                found.append(Anomaly(index, t, "exit", str(event.get("message", ""))))
    return found


@dataclass
class Replay:
    """A recording and a position in it: ``seek`` folds the records up to a position (from
    the nearest checkpoint), so that scrubbing either way costs a bounded amount of work."""

    recording: Recording
    session: ReplayedSession = field(init=False)
    position: int = 0  # records folded in
    anomalies: list[Anomaly] = field(init=False)
    _checkpoints: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.session = ReplayedSession(self.recording)
        self.anomalies = find_anomalies(self.recording.records)
        self._checkpoints[0] = self.session.snapshot()

    @property
    def length(self) -> int:
        return len(self.recording.records)

    @property
    def t(self) -> int:
        """Nanoseconds into the recording at the current position."""
        return self.recording.records[self.position - 1]["t"] if self.position else 0

    def seek(self, position: int) -> None:
        position = max(0, min(self.length, position))
        if position < self.position:
            base = max(i for i in self._checkpoints if i <= position)
            self.session.restore(self._checkpoints[base])
            self.position = base
        records = self.recording.records
        while self.position < position:
            self.session.fold(records[self.position])
            self.position += 1
            if self.position % CHECKPOINT_EVERY == 0 and self.position not in self._checkpoints:
                self._checkpoints[self.position] = self.session.snapshot()

    def position_at(self, t: int) -> int:
        """The number of records stamped at or before ``t``."""
        records = self.recording.records
        low, high = 0, len(records)
        while low < high:
            mid = (low + high) // 2
            if records[mid]["t"] <= t:
                low = mid + 1
            else:
                high = mid
        return low

    def next_anomaly(self, direction: int = 1) -> Anomaly | None:
        if direction > 0:
            return next((a for a in self.anomalies if a.index > self.position), None)
        return next((a for a in reversed(self.anomalies) if a.index < self.position), None)

    def summary(self) -> dict[str, Any]:
        return self.session.summary()
