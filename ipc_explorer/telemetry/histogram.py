"""A log-linear histogram of durations in nanoseconds: bounded memory, about 3% resolution.

Values below 64 ns are exact; above, each power of two is split into 32 buckets, like HDR
histograms. Children record into one per stage and ship only the buckets that changed, so a
million messages cost the parent a few hundred dictionary updates, not a million.
"""

from __future__ import annotations

from collections.abc import Iterable

from ipc_explorer.telemetry.percentiles import nearest_rank

SUB_BITS = 5
_SUB = 1 << SUB_BITS
_EXACT = 1 << (SUB_BITS + 1)


def bucket_of(value: int) -> int:
    if value < _EXACT:
        return value if value > 0 else 0
    shift = value.bit_length() - SUB_BITS - 1
    return (shift << SUB_BITS) + (value >> shift)


def bucket_low(index: int) -> int:
    if index < _EXACT:
        return index
    shift = (index >> SUB_BITS) - 1
    mantissa = index - (shift << SUB_BITS)
    return mantissa << shift


def bucket_mid(index: int) -> float:
    """A representative value of the bucket (its midpoint)."""
    if index < _EXACT:
        return float(index)
    low = bucket_low(index)
    return low + (bucket_low(index + 1) - low) / 2


class Histogram:
    """Counts of durations by bucket; ``pending`` holds what changed since the last drain."""

    __slots__ = ("counts", "pending", "total", "sum", "max", "min")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.pending: dict[int, int] = {}
        self.total = 0
        self.sum = 0
        self.max = 0
        self.min = 0

    def add(self, value: int) -> None:
        """Record one value in the pending buffer (the hot path: keep it tiny)."""
        if value < _EXACT:
            b = value if value > 0 else 0
        else:
            shift = value.bit_length() - 6
            b = (shift << SUB_BITS) + (value >> shift)
        pending = self.pending
        pending[b] = pending.get(b, 0) + 1
        if value > self.max:
            self.max = value

    def add_many(self, values: list[int]) -> None:
        """Record a batch of values: the loop appends raw values, the flush buckets them."""
        pending = self.pending
        get = pending.get
        top = self.max
        for value in values:
            if value < _EXACT:
                b = value if value > 0 else 0
            else:
                shift = value.bit_length() - 6
                b = (shift << SUB_BITS) + (value >> shift)
            pending[b] = get(b, 0) + 1
            if value > top:
                top = value
        self.max = top

    def drain(self) -> dict[int, int]:
        """Move pending counts into the totals and return them (for shipping to the parent)."""
        pending = self.pending
        if pending:
            self.merge(pending)
            self.pending = {}
        return pending

    def merge(self, delta: dict[int, int] | Iterable[tuple[int, int]]) -> None:
        items = delta.items() if isinstance(delta, dict) else delta
        counts = self.counts
        for b, n in items:
            b = int(b)
            counts[b] = counts.get(b, 0) + n
            self.total += n
            self.sum += int(bucket_mid(b) * n)
            if self.min == 0 or bucket_low(b) < self.min:
                self.min = max(bucket_low(b), 1)
            if bucket_low(b) > self.max:
                self.max = bucket_low(b)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) from the merged counts, by nearest rank (the bucket of
        the value at that rank); 0 when empty."""
        if not self.total:
            return 0.0
        rank = nearest_rank(q, self.total)
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return bucket_mid(b)
        return bucket_mid(max(self.counts))

    def buckets(self) -> list[tuple[float, int]]:
        """(representative value, count) pairs in order, for a histogram plot."""
        return [(bucket_mid(b), self.counts[b]) for b in sorted(self.counts)]
