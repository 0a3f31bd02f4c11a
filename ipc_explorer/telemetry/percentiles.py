"""Percentiles by nearest rank: the one rule every figure in the product uses.

The p-th percentile of n values is the value at rank ceil(p/100 * n) in ascending order (1 for
p = 0): always a value that was measured, never an interpolation, and the same rule whether the
values are exact (the floor, the UI benchmark, codec timings) or counted in histogram buckets.
The median is the 50th percentile (for an even n, the lower of the two middle values).

Only the standard library is imported: the floor, which must share nothing else with the
instrument, uses this module too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def nearest_rank(q: float, n: int) -> int:
    """The 1-based rank of the q-th percentile (0..100) among ``n`` values (n >= 1)."""
    return min(n, max(1, math.ceil(q / 100 * n - 1e-9)))


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile of values already sorted in ascending order; 0 when empty."""
    if not ordered:
        return 0
    return ordered[nearest_rank(q, len(ordered)) - 1]


def median(values: Iterable[float]) -> float:
    """The median of any values, in any order; 0 when there are none."""
    return percentile(sorted(values), 50)


def summary(values: Iterable[float], quantiles: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    """``{"p50": ..., "p90": ..., "p99": ..., "max": ...}`` of any values; empty when none."""
    ordered = sorted(values)
    if not ordered:
        return {}
    out = {f"p{q}": percentile(ordered, q) for q in quantiles}
    out["max"] = ordered[-1]
    return out
