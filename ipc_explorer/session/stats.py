"""What the engine knows about a session, merged from both children's telemetry.

Memory is bounded whatever the message count: histograms have a fixed number of buckets, the
recent messages and the throughput window are fixed-size deques.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ipc_explorer.telemetry.histogram import Histogram
from ipc_explorer.telemetry.protocol import EXTRA_STAGES, STAGES

RECENT_MESSAGES = 256
#: A receiver's counts that add up across the processes that held the role one after another.
CUMULATIVE_COUNTS = ("received", "unique", "duplicated", "reordered", "corrupt", "payload_bytes")
THROUGHPUT_WINDOW_NS = 1_000_000_000


@dataclass
class SideState:
    """The latest report of one child."""

    side: str
    pid: int | None = None
    state: str = "not started"
    op: str = ""
    op_since: int = 0
    t: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    sync: list[dict[str, Any]] = field(default_factory=list)
    live: dict[str, Any] = field(default_factory=dict)
    describe: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None

    #: Counts of the processes this side had before (a receiver killed and replaced), added
    #: to the current one's so that the session's figures cover all of them.
    before: dict[str, int] = field(default_factory=dict)

    def count(self, name: str) -> int:
        return int(self.counts.get(name, 0)) + self.before.get(name, 0)

    @property
    def stalled_ns(self) -> int:
        """How long a running side has made no progress (a blocked writer, a paused peer)."""
        last = self.count("t_last")
        if self.state != "running" or not last:
            return 0
        return max(self.t - last, 0)


class SessionStats:
    """Merged counts, histograms and recent messages of one session."""

    def __init__(self) -> None:
        self.sender = SideState("sender")
        self.receiver = SideState("receiver")
        self.hists: dict[str, Histogram] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_MESSAGES)
        self._rate_points: deque[tuple[int, int, int]] = deque(maxlen=64)
        self.records = 0
        #: Samples received so far (the deque keeps the last ones): front ends take new ones.
        self.sample_count = 0
        #: Hears every record folded in and every receiver replaced ({"k": "replace"}), in
        #: order: what a recording needs to fold them again.
        self.tap: Callable[[dict[str, Any]], None] | None = None

    def replace_receiver(self) -> SideState:
        """A new receiver takes over: its counts add to what the one before had counted."""
        old = self.receiver
        if self.tap is not None:
            self.tap({"k": "replace"})
        self.receiver = SideState(
            "receiver", before={name: old.count(name) for name in CUMULATIVE_COUNTS}
        )
        return old

    def side(self, name: str) -> SideState:
        return self.sender if name == "sender" else self.receiver

    def hist(self, name: str) -> Histogram:
        h = self.hists.get(name)
        if h is None:
            h = self.hists[name] = Histogram()
        return h

    def apply(self, record: dict[str, Any]) -> None:
        """Fold one telemetry record in."""
        if self.tap is not None:
            self.tap(record)
        self.records += 1
        side = self.side(record["side"])
        side.pid = record.get("pid", side.pid)
        side.state = record.get("state", side.state)
        side.op = record.get("op", side.op)
        side.op_since = record.get("op_since", side.op_since)
        side.t = record.get("t", side.t)
        side.counts = record.get("counts", side.counts)
        if "sync" in record:
            side.sync = record["sync"]
        if "live" in record:
            side.live = record["live"]
        if "describe" in record:
            side.describe = record["describe"]
        for name, delta in record.get("hist", {}).items():
            if delta:
                self.hist(name).merge(delta)
        for sample in record.get("samples", ()):
            self.recent.append(sample)
            self.sample_count += 1
        if side is self.receiver and "received" in side.counts:
            self._rate_points.append((side.t, side.count("received"), side.count("payload_bytes")))

    # -- a recording that starts mid-session begins with the state so far ------------------
    def state(self) -> dict[str, Any]:
        """Everything folded in so far, as plain values."""
        return {
            "sides": {s.side: dict(s.__dict__) for s in (self.sender, self.receiver)},
            "hists": {name: dict(h.counts) for name, h in self.hists.items()},
            "recent": list(self.recent),
            "sample_count": self.sample_count,
            "rate_points": [list(p) for p in self._rate_points],
            "records": self.records,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Start again from ``state`` (what ``state()`` gave)."""
        self.sender = SideState(**state["sides"]["sender"])
        self.receiver = SideState(**state["sides"]["receiver"])
        self.hists = {}
        for name, counts in state["hists"].items():
            self.hist(name).merge(counts)
        self.recent = deque(state["recent"], maxlen=RECENT_MESSAGES)
        self.sample_count = state["sample_count"]
        self._rate_points = deque((tuple(p) for p in state["rate_points"]), maxlen=64)
        self.records = state["records"]

    def new_samples(self, seen: int) -> list[dict[str, Any]]:
        """Samples that arrived after the first ``seen`` (at most what the deque still has)."""
        fresh = min(self.sample_count - seen, len(self.recent))
        return list(self.recent)[len(self.recent) - fresh :] if fresh > 0 else []

    # -- derived figures ------------------------------------------------------------------
    def rate_now(self) -> tuple[float, float]:
        """(msgs/s, MB/s) at the receiver over about the last second."""
        points = self._rate_points
        if len(points) < 2:
            return 0.0, 0.0
        t_end, n_end, b_end = points[-1]
        start = points[0]
        for point in points:
            if t_end - point[0] <= THROUGHPUT_WINDOW_NS:
                start = point
                break
        dt = (t_end - start[0]) / 1e9
        if dt <= 0:
            return 0.0, 0.0
        return (n_end - start[1]) / dt, (b_end - start[2]) / dt / 1e6

    def percentiles_us(self, name: str) -> dict[str, float]:
        h = self.hists.get(name) or Histogram()
        return {
            "p50": round(h.percentile(50) / 1e3, 3),
            "p90": round(h.percentile(90) / 1e3, 3),
            "p99": round(h.percentile(99) / 1e3, 3),
            "max": round(h.max / 1e3, 3) if h.total else 0.0,
        }

    def stage_medians_us(self, pingpong: bool) -> dict[str, float]:
        def p50(name: str) -> float:
            h = self.hists.get(name)
            return h.percentile(50) / 1e3 if h and h.total else 0.0

        transmit = p50("transmit") + (p50("transmit_back") if pingpong else 0.0)
        values = {
            "serialize": p50("serialize"),
            "transmit": transmit,
            "deserialize": p50("deserialize"),
            "sync_wait": p50("sync_wait"),
        }
        assert tuple(values) == STAGES
        for name in EXTRA_STAGES:  # a broker's confirm and ack, where the mechanism has them
            if name in self.hists and self.hists[name].total:
                values[name] = p50(name)
        return {k: round(v, 3) for k, v in values.items()}
