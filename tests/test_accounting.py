"""The receiver's bookkeeping and the latency histogram: exact where it must be."""

from __future__ import annotations

import random

import pytest

from ipc_explorer.children.receiver import SequenceTracker
from ipc_explorer.telemetry.histogram import Histogram, bucket_low, bucket_of

pytestmark = pytest.mark.timeout(30)


def track(seqs):
    tracker = SequenceTracker()
    for seq in seqs:
        tracker.see(seq)
    return tracker


def test_in_order_stream_has_no_anomalies():
    t = track(range(1000))
    assert (t.unique, t.duplicated, t.reordered, len(t.missing)) == (1000, 0, 0, 0)


def test_gap_duplicate_and_late_arrival_are_told_apart():
    t = track([0, 1, 3, 4, 4, 2, 7])
    assert t.unique == 6  # 0 1 2 3 4 7
    assert t.duplicated == 1  # the second 4
    assert t.reordered == 1  # 2 came late
    assert t.missing == {5, 6}  # lost (so far)


def test_a_wild_sequence_number_does_not_exhaust_memory():
    t = track([0, 2**62])
    assert t.unique == 2 and len(t.missing) == 0 and t.untracked == 2**62 - 1


def test_bucket_bounds_hold_every_value():
    for value in [0, 1, 63, 64, 65, 127, 128, 1000, 123_456_789, 2**40 + 7]:
        b = bucket_of(value)
        assert bucket_low(b) <= value < bucket_low(b + 1)


def test_percentiles_within_resolution_of_the_exact_ones():
    rng = random.Random(7)
    values = [int(rng.lognormvariate(10, 1)) for _ in range(50_000)]
    h = Histogram()
    h.add_many(values[:25_000])
    for v in values[25_000:]:
        h.add(v)
    h.drain()
    values.sort()
    for q in (50, 90, 99):
        exact = values[int(q / 100 * len(values)) - 1]
        assert abs(h.percentile(q) - exact) / exact < 0.04
    assert h.total == 50_000 and h.max == values[-1]


def test_merging_child_deltas_equals_one_histogram():
    a, b, whole = Histogram(), Histogram(), Histogram()
    for i in range(1, 5000):
        (a if i % 2 else b).add(i * 37)
        whole.add(i * 37)
    merged = Histogram()
    merged.merge(a.drain())
    merged.merge(b.drain())
    whole.drain()
    assert merged.counts == whole.counts
