"""The recording file: gzip members of MessagePack records, written whole and read back safely.

A recording is gzip (``gzip -dc`` reads it) holding a stream of MessagePack maps: a header
(``format``, ``version``, ``kind`` and what that kind needs), then records stamped with
nanoseconds since the recording started (``t``) and a kind (``k``). Records are buffered and
written about ten times a second as one gzip member each, with its own CRC, so a crash or
SIGKILL leaves a file whose complete members replay. The reader takes a member's records only
once its CRC checks out, bounds every size (file, member, record), refuses MessagePack
extension types, and says at which byte of the file damage or a cut lies: the records before
it stay usable. Nothing but plain MessagePack types is ever read or written (no pickle, no
code). What a record of each kind must hold is checked by the face that recorded it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

FORMAT = "ipc-explorer recording"
VERSION = 1
#: What a recording holds: a message session, or the contention lab.
RECORDING_KINDS = ("session", "lab")
#: The default cap on a recording's size on disk: the flow of a long session at full rate
#: samples its messages, but their bytes still add up.
DEFAULT_LIMIT_MIB = 64
FLUSH_INTERVAL_S = 0.1
#: How much buffered before a flush is forced, whatever the interval.
FLUSH_BYTES = 1 << 20
MAX_FILE = 1 << 30
#: A member holds one flush (about 0.1 s of records): far below this.
MAX_MEMBER = 128 << 20
MAX_RECORD = 64 << 20
READ_CHUNK = 1 << 20


class RecordingError(Exception):
    """A recording that cannot be written or read; the text says where and why."""


class RecordingWriter:
    """Appends records to one file; ``close`` ends it with the gzip trailer."""

    def __init__(self, path: str | Path, header: dict[str, Any], limit_mib: float) -> None:
        self.path = Path(path)
        self.limit_mib = limit_mib
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
            mib = self.limit_mib
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


@dataclass
class Recording:
    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]]
    #: Why reading stopped before the end of the file (truncated, corrupt), else None.
    problem: str | None = None
    skipped: int = 0  # records of kinds this version does not know
    #: (index of its first record, byte offset in the file) of each block: where a record is.
    blocks: list[tuple[int, int]] = field(default_factory=list)

    def keep(self, kinds: tuple[str, ...], check: Callable[[dict[str, Any]], str | None]) -> None:
        """Keep the records of ``kinds`` (skipping others: a newer writer's); at the first one
        that ``check`` finds wrong, stop, saying which record and where it lies."""
        kept: list[dict[str, Any]] = []
        for index, record in enumerate(self.records):
            if record["k"] not in kinds:
                self.skipped += 1
                continue
            why = check(record)
            if why is not None:
                offset = max((o for i, o in self.blocks if i <= index), default=0)
                self.problem = (
                    f"record {index + 1}, in the block at byte {offset:,} of the file, is damaged "
                    f"({why}): what came before it is replayed"
                )
                break
            kept.append(record)
        self.records = kept

    @property
    def duration_ns(self) -> int:
        return self.records[-1]["t"] if self.records else 0

    @property
    def notes(self) -> list[str]:
        return [r["text"] for r in self.records if r["k"] == "note"]


def _no_extensions(code: int, data: bytes) -> Any:
    raise ValueError(f"MessagePack extension type {code} (a recording has none)")


def read_recording(path: str | Path, kind: str) -> Recording:
    """The header and every record before the end of the file or the first damage, each a
    map with a time stamp and a kind (what a kind holds is the caller's to check, ``keep``).
    Raises RecordingError only when nothing is usable: no such file, not a recording, a
    recording of another kind than ``kind``."""
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
    blocks: list[tuple[int, int]] = []
    problem: str | None = None
    with handle:
        for start, member in _members(handle):
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
            blocks.append((len(records), start))
            try:
                for record in unpacker:
                    if header is None:
                        header = _check_header(record, path, kind)
                        continue
                    t = record.get("t") if isinstance(record, dict) else None
                    if not isinstance(t, int) or not 0 <= t < 1 << 62:
                        raise ValueError(f"record {len(records) + 1} has no time stamp")
                    if not isinstance(record.get("k"), str):
                        raise ValueError(f"record {len(records) + 1} has no kind")
                    records.append(record)
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
    return Recording(path, header, records, problem, blocks=blocks)


def _members(handle: BinaryIO) -> Iterator[tuple[int, bytes | str]]:
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


def read_header(path: str | Path) -> dict[str, Any]:
    """Only the header: which kind of recording this is."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise RecordingError(f"cannot open the recording {path}: {exc.strerror}") from None
    with handle:
        for _, member in _members(handle):
            if isinstance(member, str):
                break
            unpacker = msgpack.Unpacker(
                raw=False, strict_map_key=False, max_buffer_size=MAX_RECORD, ext_hook=_no_extensions
            )
            unpacker.feed(member)
            try:
                return _check_header(next(unpacker), path, None)
            except (ValueError, StopIteration, msgpack.UnpackException):
                break
    raise RecordingError(f"{path} is not an ipc-explorer recording")


def _check_header(record: Any, path: Path, kind: str | None) -> dict[str, Any]:
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
    if record.get("kind") not in RECORDING_KINDS or not isinstance(record.get("config"), dict):
        raise RecordingError(f"{path}: the recording's header says neither what nor how")
    if kind is not None and record["kind"] != kind:
        raise RecordingError(f"{path} is a recording of the {record['kind']}, not of a {kind}")
    return record


@dataclass
class Anomaly:
    """A moment of a recording worth jumping to."""

    index: int  # the record after which it shows
    t: int
    kind: str  # loss, corrupt, duplicate, reorder, block, error, exit; deadlock, torn (lab)
    text: str


#: A replay keeps a copy of the folded state this often, so that a step back is quick.
CHECKPOINT_EVERY = 256


class RecordingCursor:
    """A recording and a position in it: ``seek`` folds the records up to a position, from the
    nearest checkpoint, so that scrubbing either way costs a bounded amount of work. A face
    says how a record folds into its state and how that state is copied (``fold``,
    ``snapshot``, ``restore``)."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.position = 0  # records folded in
        self.anomalies: list[Anomaly] = []
        self._checkpoints: dict[int, Any] = {}

    def fold(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def snapshot(self) -> Any:
        raise NotImplementedError

    def restore(self, snapshot: Any) -> None:
        raise NotImplementedError

    @property
    def length(self) -> int:
        return len(self.recording.records)

    @property
    def t(self) -> int:
        """Nanoseconds into the recording at the current position."""
        return self.recording.records[self.position - 1]["t"] if self.position else 0

    def seek(self, position: int) -> None:
        position = max(0, min(self.length, position))
        if not self._checkpoints:
            self._checkpoints[0] = self.snapshot()
        if position < self.position:
            base = max(i for i in self._checkpoints if i <= position)
            self.restore(self._checkpoints[base])
            self.position = base
        records = self.recording.records
        while self.position < position:
            self.fold(records[self.position])
            self.position += 1
            if self.position % CHECKPOINT_EVERY == 0 and self.position not in self._checkpoints:
                self._checkpoints[self.position] = self.snapshot()

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

    @property
    def end(self) -> dict[str, Any]:
        """What the recorder wrote last (the run's own summary), if it closed cleanly."""
        last = self.recording.records[-1] if self.recording.records else {}
        return last if last.get("k") == "end" else {}


class Recorder:
    """What every face's recorder shares: the writer with its header (kind, host, CPUs and
    ``about``), a flush on the running loop's timer, writes that end the recording (never
    the run) when they fail, and the line that says where it went."""

    def __init__(
        self, path: str | Path, header: dict[str, Any], limit_mib: float, **about: Any
    ) -> None:
        header = {
            **about,
            **header,
            "started_unix": time.time(),
            "host": socket.gethostname(),
            "cpus": os.cpu_count(),
        }
        self.writer = RecordingWriter(path, header, limit_mib)
        self._task: asyncio.Task[None] | None = None
        #: Why writing stopped (a full disk): the run goes on, the line says so.
        self.failed: str | None = None

    @property
    def path(self) -> Path:
        return self.writer.path

    def start(self) -> None:
        """Flush on a timer of the running loop (records come in batches already)."""
        self._task = asyncio.get_running_loop().create_task(self._flush_often())

    async def before_flush(self) -> None:
        """What a face writes on the timer, before each flush (facts that changed)."""

    async def _flush_often(self) -> None:
        while self.failed is None:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self.before_flush()
            self.guarded(self.writer.flush)

    def stop_timer(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def guarded(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A write that fails (disk full) ends the recording, never the run."""
        if self.failed is not None:
            return
        try:
            write(*args, **kwargs)
        except RecordingError as exc:
            self.failed = str(exc)
        except (TypeError, ValueError) as exc:  # a value MessagePack cannot hold
            self.failed = f"a record could not be written ({exc})"

    def said(self) -> str:
        """One line for the user: where it went, how big, and whether the cap cut it."""
        writer = self.writer
        if self.failed is not None:
            return f"the recording stopped: {self.failed}"
        size = (
            f"{writer.written / 1024:,.0f} KiB"
            if writer.written < 1 << 20
            else f"{writer.written / (1 << 20):,.1f} MiB"
        )
        line = f"recorded {writer.records:,} records to {writer.path} ({size})"
        if writer.stopped_by_limit:
            line += f": recording stopped at {writer.limit_mib:g} MiB"
        return line
