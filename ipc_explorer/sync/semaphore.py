"""A named POSIX semaphore that counts what happens to it.

The kernel tells a semaphore's value (sem_getvalue) but never who waits on it or for how long,
so each process measures its own waits and holds and reports them; the value shown is the
kernel's, read at the moment of the report.
"""

from __future__ import annotations

import os
import time
from typing import Any

import posix_ipc

monotonic_ns = time.monotonic_ns


class InstrumentedSemaphore:
    """Wraps a posix_ipc.Semaphore; ``is_mutex`` ones also time how long they are held."""

    __slots__ = (
        "sem",
        "name",
        "label",
        "is_mutex",
        "acquisitions",
        "releases",
        "wait_total_ns",
        "wait_max_ns",
        "hold_total_ns",
        "hold_max_ns",
        "waiting_since",
        "holding_since",
        "pid",
    )

    def __init__(self, sem: posix_ipc.Semaphore, label: str, is_mutex: bool = False):
        self.sem = sem
        self.name = sem.name
        self.label = label
        self.is_mutex = is_mutex
        self.pid = os.getpid()
        self.acquisitions = 0
        self.releases = 0
        self.wait_total_ns = 0
        self.wait_max_ns = 0
        self.hold_total_ns = 0
        self.hold_max_ns = 0
        self.waiting_since = 0
        self.holding_since = 0

    def acquire(self, timeout: float | None = None) -> int:
        """Wait for the semaphore; return the ns spent waiting."""
        t0 = monotonic_ns()
        self.waiting_since = t0
        try:
            self.sem.acquire(timeout)
        finally:
            self.waiting_since = 0
        t1 = monotonic_ns()
        waited = t1 - t0
        self.acquisitions += 1
        self.wait_total_ns += waited
        if waited > self.wait_max_ns:
            self.wait_max_ns = waited
        if self.is_mutex:
            self.holding_since = t1
        return waited

    def release(self) -> None:
        if self.is_mutex and self.holding_since:
            held = monotonic_ns() - self.holding_since
            self.holding_since = 0
            self.hold_total_ns += held
            if held > self.hold_max_ns:
                self.hold_max_ns = held
        self.sem.release()
        self.releases += 1

    def value(self) -> int | None:
        try:
            return self.sem.value
        except (posix_ipc.ExistentialError, AttributeError, OSError):
            return None

    def report(self) -> dict[str, Any]:
        """This process's view of the semaphore, plus the kernel's value now."""
        return {
            "name": self.name,
            "label": self.label,
            "mutex": self.is_mutex,
            "pid": self.pid,
            "value": self.value(),
            "acquisitions": self.acquisitions,
            "releases": self.releases,
            "wait_total_ns": self.wait_total_ns,
            "wait_max_ns": self.wait_max_ns,
            "hold_total_ns": self.hold_total_ns,
            "hold_max_ns": self.hold_max_ns,
            "waiting_since": self.waiting_since,
            "holding_since": self.holding_since,
        }
