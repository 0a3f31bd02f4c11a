"""What the parent knows of each lock and each worker during a lab run.

Lock values (and, for System V, waiter count and last pid) are the kernel's; holders and
waiters come from the workers' slots on the board; wait and hold times are the workers' own.
Histories are bounded deques sampled at 20 Hz, for the live timeline.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ipc_explorer.lab.board import STARTING
from ipc_explorer.telemetry.histogram import Histogram

#: Samples kept for the timeline: 6 s at 20 Hz.
TIMELINE_SAMPLES = 120


@dataclass
class LockStats:
    label: str
    kind: str
    value: int | None = None
    kernel_waiters: int | None = None
    kernel_last_pid: int | None = None
    holders: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    acquisitions: int = 0
    acq_per_s: float = 0.0
    wait: Histogram = field(default_factory=Histogram)
    hold: Histogram = field(default_factory=Histogram)
    history: deque[int] = field(default_factory=lambda: deque(maxlen=TIMELINE_SAMPLES))

    def summary(self) -> dict[str, Any]:
        def figures(h: Histogram) -> dict[str, float]:
            if not h.total:
                return {"mean_us": 0.0, "p99_us": 0.0, "max_us": 0.0}
            return {
                "mean_us": round(min(h.sum / h.total, h.max) / 1000, 2),
                # a bucket's midpoint can pass the largest value seen: never show p99 > max
                "p99_us": round(min(h.percentile(99), h.max) / 1000, 2),
                "max_us": round(h.max / 1000, 2),
            }

        return {
            "kind": self.kind,
            "acquisitions": self.acquisitions,
            "wait": figures(self.wait),
            "hold": figures(self.hold),
            "value_min": min(self.history) if self.history else None,
            "value_max": max(self.history) if self.history else None,
        }


@dataclass
class WorkerView:
    index: int
    role: str
    pid: int = 0
    state: int = STARTING
    done: int = 0
    events: int = 0
    paused: bool = False
    exit_code: int | None = None
    timeline: deque[int] = field(default_factory=lambda: deque(maxlen=TIMELINE_SAMPLES))
    final: dict[str, Any] = field(default_factory=dict)
    acq: dict[str, int] = field(default_factory=dict)
