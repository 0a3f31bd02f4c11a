"""What a lab run is asked to do: scenario, lock, fix, workers, iterations; validated first."""

from __future__ import annotations

from dataclasses import dataclass

from ipc_explorer.lab.board import MAX_WORKERS, RING_MAX
from ipc_explorer.lab.locks import LOCK_KINDS

SCENARIOS = ("counter", "torn", "buffer", "deadlock")
FIXES = ("none", "order", "timeout")
DEFAULT_ITERATIONS = {"counter": 20_000, "torn": 20_000, "buffer": 20_000, "deadlock": 50}
#: counter: K incrementers; torn: 1 writer + readers; buffer: 1 producer + consumers; deadlock:
#: the ring's length.
DEFAULT_WORKERS = {"counter": 4, "torn": 3, "buffer": 2, "deadlock": 2}


class LabUsageError(ValueError):
    """A lab configuration a user can fix: the text says how."""


@dataclass
class ContendConfig:
    scenario: str = "counter"
    workers: int | None = None
    iterations: int | None = None
    lock: str = "none"
    fix: str = "none"
    #: The critical section's own work, µs (deadlock: how long the first lock is held).
    cs_us: int | None = None
    consumer_delay_us: int = 0
    slots: int = 8
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.workers is None:
            self.workers = DEFAULT_WORKERS.get(self.scenario, 4)
        if self.iterations is None:
            self.iterations = DEFAULT_ITERATIONS.get(self.scenario, 20_000)
        if self.cs_us is None:
            self.cs_us = 2000 if self.scenario == "deadlock" else 0

    def validate(self) -> None:
        if self.scenario not in SCENARIOS:
            raise LabUsageError(
                f"unknown scenario {self.scenario!r}; one of {', '.join(SCENARIOS)}"
            )
        extra = {"torn": ("seqlock",), "buffer": ("condvar",)}.get(self.scenario, ())
        locks = LOCK_KINDS + extra
        if self.lock not in locks:
            raise LabUsageError(
                f"--lock {self.lock} is not for {self.scenario}; one of {', '.join(locks)}"
            )
        if self.scenario == "deadlock" and self.lock == "none":
            raise LabUsageError("the deadlock scenario needs locks: --lock sem or --lock sysv")
        if self.fix not in FIXES:
            raise LabUsageError(f"unknown fix {self.fix!r}; one of {', '.join(FIXES)}")
        if self.fix != "none" and self.scenario != "deadlock":
            raise LabUsageError("--fix is for the deadlock scenario")
        if not 2 <= (self.workers or 0) <= MAX_WORKERS:
            raise LabUsageError(f"--workers must be 2..{MAX_WORKERS}, not {self.workers}")
        if not 1 <= (self.iterations or 0) <= 100_000_000:
            raise LabUsageError(f"--iterations must be 1..100000000, not {self.iterations}")
        if not 0 <= (self.cs_us or 0) <= 1_000_000:
            raise LabUsageError(f"--critical-us must be 0..1000000, not {self.cs_us}")
        if not 2 <= self.slots <= RING_MAX:
            raise LabUsageError(f"--slots must be 2..{RING_MAX}, not {self.slots}")
        if self.consumer_delay_us < 0:
            raise LabUsageError("--consumer-delay-us must be >= 0")

    @property
    def lock_kind(self) -> str:
        """The kernel object behind the lock mode: a condition variable is made of POSIX
        semaphores."""
        return "sem" if self.lock == "condvar" else self.lock

    def lock_labels(self) -> list[str]:
        """The locks this run creates, in the order the workers number them."""
        if self.scenario == "deadlock":
            return [f"L{i}" for i in range(self.workers or 0)]
        if self.lock in ("none", "seqlock"):
            return []
        if self.lock == "condvar":  # a mutex and two condition variables built from semaphores
            return [
                "mutex",
                "not_full.sleep",
                "not_full.woken",
                "not_empty.sleep",
                "not_empty.woken",
            ]
        return {"counter": ["counter"], "torn": ["record"], "buffer": ["empty", "full", "mutex"]}[
            self.scenario
        ]

    def roles(self) -> list[str]:
        """One role per worker, in worker order."""
        k = self.workers or 0
        if self.scenario == "counter":
            return ["counter"] * k
        if self.scenario == "torn":
            return ["writer"] + ["reader"] * (k - 1)
        if self.scenario == "buffer":
            return ["producer"] + ["consumer"] * (k - 1)
        return ["ring"] * k

    def initial_value(self, label: str) -> int:
        """A lock's starting value: 1 for a mutex, the ring's size for 'empty', 0 to wait on."""
        if label.endswith((".sleep", ".woken")):
            return 0
        return {"empty": self.slots, "full": 0}.get(label, 1)
