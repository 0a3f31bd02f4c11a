"""The contention lab in the parent: make a race, a lock and a deadlock happen on real shared
memory between real processes, and say what happened.

The parent creates the board (a POSIX shared-memory segment) and the locks, starts the
workers (``python -m ipc_explorer.children --role contender``), opens the start gate when every
worker is ready, samples the board at 20 Hz (worker states for the timeline, the wait-for
graph, lock values from the kernel), folds the workers' reports (their own wait and hold
times), and removes every object on every path. It knows nothing of any front end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ipc_explorer.session.config import UsageError
from ipc_explorer.telemetry.histogram import Histogram
from ipc_explorer.lab.board import (
    COUNTER,
    DONE,
    GO,
    MAX_WORKERS,
    RING_MAX,
    STARTING,
    WAITING,
    Board,
)
from ipc_explorer.lab.locks import LOCK_KINDS, Lock, create_lock, destroy_lock, new_lock_id

SCENARIOS = ("counter", "torn", "buffer", "deadlock")
FIXES = ("none", "order", "timeout")
DEFAULT_ITERATIONS = {"counter": 20_000, "torn": 20_000, "buffer": 20_000, "deadlock": 50}
#: counter: K incrementers; torn: 1 writer + readers; buffer: 1 producer + consumers; deadlock:
#: the ring's length.
DEFAULT_WORKERS = {"counter": 4, "torn": 3, "buffer": 2, "deadlock": 2}
SAMPLE_INTERVAL_S = 0.05
TIMELINE_SAMPLES = 120  # 6 s at 20 Hz
#: A wait-for cycle is believed when it has been there this long (a sample is not atomic, and
#: a timed wait may leave a cycle by itself).
CYCLE_CONFIRM_S = 0.3
START_TIMEOUT_S = 10.0

EXPLANATIONS = {
    "counter": (
        "Shared counter. Each worker process adds 1 to one 8-byte counter in shared memory, "
        "M times: read it, add one, write it back. Without a lock two processes can read the "
        "same value, both write value+1, and one increment is lost: a lost update. A POSIX "
        "named semaphore (sem) or a System V semaphore (sysv) used as a mutex makes the "
        "read-add-write one step for everyone else, at a price: every increment now waits for "
        "the lock and, when it is taken, sleeps in the kernel. Python has no atomic "
        "fetch-and-add on shared memory, so there is no honest lock-free mode here."
    ),
    "torn": (
        "Torn record. One writer keeps updating a record of four 8-byte fields that must agree "
        "(a = 3*seq, b = 7*seq, check = seq^a^b); readers copy it field by field. Without a "
        "lock a reader can copy half of an old record and half of a new one: a torn read, "
        "counted and shown. A mutex (sem, sysv) makes writer and readers take turns; a seqlock "
        "lets readers read without a lock and retry when the sequence number says a write "
        "overlapped their read (odd = writing)."
    ),
    "buffer": (
        "Bounded buffer. A producer puts numbered items into a ring of N slots; consumers take "
        "them out. Three semaphores guard it: 'empty' counts free slots (the producer waits on "
        "it when the ring is full), 'full' counts filled slots (consumers wait on it when it is "
        "empty) and 'mutex' protects the head and tail indices. Pause or slow the consumers and "
        "watch 'empty' fall to 0 and the producer block. Take the semaphores away (lock none) "
        "and the producer overwrites items nobody has read, while consumers read some twice. "
        "The condvar variant guards the ring with one mutex and two condition variables "
        "(not_full, not_empty): wait releases the mutex and sleeps until notified. Python has "
        "no process-shared pthread condition variable, so these are built from semaphores, as "
        "multiprocessing's Condition is: a waiter count, a 'sleep' and a 'woken' semaphore."
    ),
    "deadlock": (
        "Deadlock. N workers sit in a ring; each takes its own lock, works a little, then takes "
        "its neighbour's. When every worker holds its first lock and waits for the next, they "
        "wait for each other forever: a cycle in the wait-for graph (A waits for a lock B holds, "
        "B for one A holds). The lab builds that graph from what the workers write on the board "
        "and stops the run when a cycle persists. The fixes: take locks in one global order "
        "(fix order), or give up after a timeout, release, back off and retry (fix timeout)."
    ),
}

SOURCES = {
    "value": "kernel: sem_getvalue (sem) / semctl GETVAL (sysv), read by the parent",
    "kernel waiters": "kernel: semctl GETNCNT (sysv only; POSIX semaphores do not tell)",
    "last pid": "kernel: semctl GETPID (sysv only)",
    "holder, waiting": "the workers' own slots on the shared board, sampled at 20 Hz",
    "wait, hold": "the workers' own timings around each acquire and release (perf_counter)",
    "counter, record, ring": "read from the shared memory by the parent",
}


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
            raise UsageError(f"unknown scenario {self.scenario!r}; one of {', '.join(SCENARIOS)}")
        extra = {"torn": ("seqlock",), "buffer": ("condvar",)}.get(self.scenario, ())
        locks = LOCK_KINDS + extra
        if self.lock not in locks:
            raise UsageError(
                f"--lock {self.lock} is not for {self.scenario}; one of {', '.join(locks)}"
            )
        if self.scenario == "deadlock" and self.lock == "none":
            raise UsageError("the deadlock scenario needs locks: --lock sem or --lock sysv")
        if self.fix not in FIXES:
            raise UsageError(f"unknown fix {self.fix!r}; one of {', '.join(FIXES)}")
        if self.fix != "none" and self.scenario != "deadlock":
            raise UsageError("--fix is for the deadlock scenario")
        if not 2 <= (self.workers or 0) <= MAX_WORKERS:
            raise UsageError(f"--workers must be 2..{MAX_WORKERS}, not {self.workers}")
        if not 1 <= (self.iterations or 0) <= 100_000_000:
            raise UsageError(f"--iterations must be 1..100000000, not {self.iterations}")
        if not 0 <= (self.cs_us or 0) <= 1_000_000:
            raise UsageError(f"--critical-us must be 0..1000000, not {self.cs_us}")
        if not 2 <= self.slots <= RING_MAX:
            raise UsageError(f"--slots must be 2..{RING_MAX}, not {self.slots}")
        if self.consumer_delay_us < 0:
            raise UsageError("--consumer-delay-us must be >= 0")


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


class ContendRun:
    """One run of one scenario. ``start``, then ``wait`` (or ``stop``); state is readable
    at any time for a live view."""

    def __init__(self, config: ContendConfig):
        config.validate()
        self.config = config
        self.tag = secrets.token_hex(4)
        self.board_name = f"/ipcx-{self.tag}-board"
        self.board: Board | None = None
        self.lock_order: list[str] = self._lock_labels()
        self.lock_ids: dict[str, Any] = {}
        self.locks: dict[str, Lock] = {}
        self.stats: dict[str, LockStats] = {}
        self.workers: list[WorkerView] = []
        self._procs: list[asyncio.subprocess.Process] = []
        self._tasks: list[asyncio.Task] = []
        self.started_at = 0.0
        self.ended_at = 0.0
        self.state = "idle"  # idle, starting, running, finished, deadlocked, failed, stopped
        self.error = ""
        self.cycle: list[dict[str, Any]] = []
        self.cycle_detected_after_s: float | None = None
        self._cycle_since: float | None = None
        self._cycle_key: tuple | None = None
        self._destroyed = False
        self._acq_mark: tuple[float, dict[str, int]] = (0.0, {})

    # -- set-up -------------------------------------------------------------------------------
    def _lock_labels(self) -> list[str]:
        cfg = self.config
        if cfg.scenario == "deadlock":
            return [f"L{i}" for i in range(cfg.workers or 0)]
        if cfg.lock in ("none", "seqlock"):
            return []
        if cfg.lock == "condvar":  # a mutex and two condition variables built from semaphores
            return [
                "mutex",
                "not_full.sleep",
                "not_full.woken",
                "not_empty.sleep",
                "not_empty.woken",
            ]
        return {"counter": ["counter"], "torn": ["record"], "buffer": ["empty", "full", "mutex"]}[
            cfg.scenario
        ]

    def _roles(self) -> list[str]:
        cfg = self.config
        k = cfg.workers or 0
        if cfg.scenario == "counter":
            return ["counter"] * k
        if cfg.scenario == "torn":
            return ["writer"] + ["reader"] * (k - 1)
        if cfg.scenario == "buffer":
            return ["producer"] + ["consumer"] * (k - 1)
        return ["ring"] * k

    def _initial(self, label: str) -> int:
        if label.endswith((".sleep", ".woken")):
            return 0
        return {"empty": self.config.slots, "full": 0}.get(label, 1)

    async def start(self) -> None:
        cfg = self.config
        self.state = "starting"
        try:
            self.board = Board(self.board_name, create=True)
            for label in self.lock_order:
                kind = lock_kind(cfg.lock)
                lock = create_lock(kind, new_lock_id(kind, self.tag, label), self._initial(label))
                self.locks[label] = lock
                self.lock_ids[label] = lock.ident
                self.stats[label] = LockStats(label, kind)

            for index, role in enumerate(self._roles()):
                await self._spawn(index, role)
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        self.board.set_u32(GO, 1)
        self.started_at = time.monotonic()
        self.state = "running"
        self._tasks.append(asyncio.create_task(self._sample_loop()))

    async def _spawn(self, index: int, role: str) -> None:
        cfg = self.config
        worker_config = {
            "index": index,
            "role": role,
            "iterations": cfg.iterations,
            "cs_us": cfg.cs_us,
            "board": self.board_name,
            "lock": cfg.lock,
            "lock_kind": lock_kind(cfg.lock),
            "locks": self.lock_ids,
            "lock_order": self.lock_order,
            "fix": cfg.fix,
            "slots": cfg.slots,
            "consumers": (cfg.workers or 0) - 1,
            "consumer_delay_us": cfg.consumer_delay_us,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ipc_explorer.children",
            "--role",
            "contender",
            "--parent-pid",
            str(os.getpid()),
            "--config",
            json.dumps(worker_config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in the terminal is the parent's to handle
        )
        view = WorkerView(index, role, pid=proc.pid)
        self.workers.append(view)
        self._procs.append(proc)
        self._tasks.append(asyncio.create_task(self._read_reports(view, proc)))

    async def _wait_ready(self) -> None:
        assert self.board is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            ready = [self.board.slot(w.index)[0] for w in self.workers]
            if all(ready):
                return
            if any(p.returncode is not None for p in self._procs):
                raise RuntimeError(self.error or "a worker exited before the start")
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start within 10 s")
            await asyncio.sleep(0.01)

    # -- what the workers say ----------------------------------------------------------------
    async def _read_reports(self, view: WorkerView, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                report = json.loads(line)
            except ValueError:
                continue
            if "error" in report:
                self.error = f"worker {view.index} ({view.role}): {report['error']}"
                continue
            view.acq = report.get("acq", view.acq)
            for label, delta in report.get("wait", {}).items():
                if label in self.stats:
                    self.stats[label].wait.merge((int(k), v) for k, v in delta.items())
            for label, delta in report.get("hold", {}).items():
                if label in self.stats:
                    self.stats[label].hold.merge((int(k), v) for k, v in delta.items())
            if report.get("final"):
                view.final = report
        view.exit_code = await proc.wait()

    async def _sample_loop(self) -> None:
        try:
            while self.state == "running":
                self.sample()
                if all(w.exit_code is not None for w in self.workers):
                    self.sample()
                    self._finish()
                    return
                if self.config.scenario == "deadlock" and self._check_cycle():
                    return
                if time.monotonic() - self.started_at > self.config.timeout_s:
                    self.error = f"the run did not end within {self.config.timeout_s:g} s"
                    self.state = "failed"
                    await self._kill_workers()
                    return
                await asyncio.sleep(SAMPLE_INTERVAL_S)
        finally:
            self.ended_at = self.ended_at or time.monotonic()

    def sample(self) -> None:
        """Read the board and the locks once: worker states, holders, waiters, values."""
        board = self.board
        if board is None or self._destroyed:
            return
        for stats in self.stats.values():
            stats.holders, stats.waiting = [], []
        for w in self.workers:
            pid, state, waiting_for, holds, done, events = board.slot(w.index)
            w.state, w.done, w.events = state, done, events
            if w.exit_code is not None and state != DONE:
                w.state = DONE
            w.timeline.append(-1 if w.paused else w.state)
            for i, label in enumerate(self.lock_order):
                if holds >> i & 1:
                    self.stats[label].holders.append(pid)
                if state == WAITING and waiting_for == i:
                    self.stats[label].waiting.append(pid)
        now = time.monotonic()
        then, marks = self._acq_mark
        for label, stats in self.stats.items():
            lock = self.locks.get(label)
            try:
                stats.value = lock.value() if lock else None
                stats.kernel_waiters = lock.kernel_waiters() if lock else None
                stats.kernel_last_pid = lock.kernel_last_pid() if lock else None
            except Exception:  # removed under us at the end of a run
                pass
            if stats.value is not None:
                stats.history.append(stats.value)
            stats.acquisitions = sum(w.acq.get(label, 0) for w in self.workers)
        if now - then >= 0.5:
            current = {label: s.acquisitions for label, s in self.stats.items()}
            if then:
                for label, s in self.stats.items():
                    s.acq_per_s = (current[label] - marks.get(label, 0)) / (now - then)
            self._acq_mark = (now, current)

    # -- deadlock ----------------------------------------------------------------------------
    def wait_for_graph(self) -> dict[int, tuple[int, str]]:
        """Edges worker -> (worker holding the lock it waits for, that lock)."""
        holder_of: dict[str, int] = {}
        for w in self.workers:
            for label in self.lock_order:
                if w.pid in self.stats[label].holders:
                    holder_of[label] = w.index
        edges = {}
        for w in self.workers:
            for label in self.lock_order:
                if w.pid in self.stats[label].waiting and label in holder_of:
                    if holder_of[label] != w.index:
                        edges[w.index] = (holder_of[label], label)
        return edges

    @staticmethod
    def find_cycle(edges: dict[int, tuple[int, str]]) -> list[tuple[int, str]]:
        for start in edges:
            path: list[int] = []
            node = start
            while node in edges and node not in path:
                path.append(node)
                node = edges[node][0]
            if node in path:
                loop = path[path.index(node) :]
                return [(n, edges[n][1]) for n in loop]
        return []

    def _check_cycle(self) -> bool:
        edges = self.wait_for_graph()
        cycle = self.find_cycle(edges)
        # The same processes in a cycle, none of them getting anywhere (no round done, no
        # back-off) all along: a cycle that forms again after each back-off is not a deadlock.
        by_index = {w.index: w for w in self.workers}
        key = (
            tuple(sorted((n, by_index[n].done, by_index[n].events) for n, _ in cycle))
            if cycle
            else None
        )
        now = time.monotonic()
        if key != self._cycle_key:
            self._cycle_key, self._cycle_since = key, now
            return False
        if key is None or self._cycle_since is None or now - self._cycle_since < CYCLE_CONFIRM_S:
            return False
        pid_of = {w.index: w.pid for w in self.workers}
        self.cycle = [
            {
                "worker": n,
                "pid": pid_of[n],
                "waits_for_lock": label,
                "held_by_worker": edges[n][0],
                "held_by_pid": pid_of[edges[n][0]],
            }
            for n, label in cycle
        ]
        self.cycle_detected_after_s = round(now - self.started_at, 3)
        self.state = "deadlocked"
        self.ended_at = now
        self._tasks.append(asyncio.create_task(self._kill_workers()))
        return True

    # -- the end -----------------------------------------------------------------------------
    def _finish(self) -> None:
        self.ended_at = time.monotonic()
        codes = [w.exit_code for w in self.workers]
        if any(codes) or self.error:
            self.state = "failed"
            self.error = self.error or f"a worker exited with {codes}"
        else:
            self.state = "finished"

    async def wait(self) -> dict[str, Any]:
        """Until the run ends (finished, deadlocked, failed); then everything is removed."""
        try:
            while self.state in ("starting", "running"):
                await asyncio.sleep(0.02)
            await self._kill_workers()
            for task in self._tasks:
                if not task.done():
                    await asyncio.wait([task], timeout=2)
            return self.result()
        finally:  # cancelled too (a front end that goes away): nothing may be left behind
            if any(p.returncode is None for p in self._procs):
                self.kill_now()
            self.destroy()

    def pause_consumers(self, paused: bool) -> None:
        """SIGSTOP / SIGCONT the consumers (or readers): a real pause, the kernel's own."""
        for w, proc in zip(self.workers, self._procs, strict=True):
            if w.role in ("consumer", "reader") and proc.returncode is None:
                os.kill(proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)
                w.paused = paused

    async def _kill_workers(self) -> None:
        for proc in self._procs:
            if proc.returncode is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot die of SIGTERM
                    proc.terminate()
                except ProcessLookupError:
                    pass
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), 2)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def stop(self) -> None:
        if self.state in ("starting", "running"):
            self.state = "stopped"
            self.ended_at = time.monotonic()
        await self._kill_workers()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        self.destroy()

    def kill_now(self) -> None:
        """From a signal handler or atexit: no awaiting, just make sure nothing is left."""
        for proc in self._procs:
            if proc.returncode is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.destroy()

    def destroy(self) -> None:
        """Remove the board and every lock by name (idempotent)."""
        if self._destroyed:
            return
        self._destroyed = True
        for lock in self.locks.values():
            lock.close()
        for ident in self.lock_ids.values():
            destroy_lock(lock_kind(self.config.lock), ident)
        if self.board is not None:
            self.board.close()
        Board.destroy(self.board_name)

    # -- what it found -----------------------------------------------------------------------
    def counter_value(self) -> int:
        if self.board is None or self._destroyed:
            return self._last_counter
        self._last_counter = self.board.u64(COUNTER)
        return self._last_counter

    _last_counter = 0

    def outcome(self) -> dict[str, Any]:
        """Expected against actual, and what went wrong, as far as the run has got."""
        cfg = self.config
        k, m = cfg.workers or 0, cfg.iterations or 0
        out: dict[str, Any] = {"lost_updates": 0, "torn_reads": 0, "deadlock_detected": False}
        if cfg.scenario == "counter":
            actual = self.counter_value()
            expected = k * m if self.state == "finished" else sum(w.done for w in self.workers)
            out.update(expected=expected, actual=actual, lost_updates=max(0, expected - actual))
        elif cfg.scenario == "torn":
            readers = [w for w in self.workers if w.role == "reader"]
            reads = sum(w.final.get("reads", w.done) for w in readers)
            torn = sum(w.final.get("torn", w.events) for w in readers)
            example = next((w.final["example"] for w in readers if "example" in w.final), None)
            retries = sum(w.final.get("retries", 0) for w in readers)
            out.update(expected=reads, actual=reads - torn, torn_reads=torn, reads=reads)
            out.update(writes=self.workers[0].done if self.workers else 0, retries=retries)
            if example:
                out["torn_example"] = example
        elif cfg.scenario == "buffer":
            consumers = [w for w in self.workers if w.role == "consumer"]
            received = sum(w.final.get("received", w.done) for w in consumers)
            distinct = duplicates = 0
            if consumers and all("seen" in w.final for w in consumers):
                union = 0
                for w in consumers:
                    seen = int.from_bytes(base64.b64decode(w.final["seen"]), "little")
                    duplicates += w.final.get("duplicates", 0) + (union & seen).bit_count()
                    union |= seen
                distinct = union.bit_count()
            if self.state != "finished":  # the consumers' item lists come at their end
                distinct = received
            out.update(expected=m, actual=distinct, received=received, duplicated=duplicates)
            out["overwritten"] = m - distinct if self.state == "finished" else 0
            out["produced"] = self.workers[0].done if self.workers else 0
        else:
            rounds = sum(w.done for w in self.workers)
            backoffs = sum(w.events for w in self.workers)
            out.update(expected=k * m, actual=rounds, backoffs=backoffs)
            out["deadlock_detected"] = bool(self.cycle)
            if self.cycle:
                out["cycle"] = self.cycle
                out["detected_after_s"] = self.cycle_detected_after_s
        return out

    def elapsed_s(self) -> float:
        if not self.started_at:
            return 0.0
        return (self.ended_at or time.monotonic()) - self.started_at

    def result(self) -> dict[str, Any]:
        cfg = self.config
        result: dict[str, Any] = {
            "scenario": cfg.scenario,
            "lock": cfg.lock,
            "fix": cfg.fix,
            "workers": cfg.workers,
            "iterations": cfg.iterations,
            "critical_us": cfg.cs_us,
            "state": self.state,
            **self.outcome(),
            "elapsed_s": round(self.elapsed_s(), 3),
            "locks": {label: s.summary() for label, s in self.stats.items()},
            "pids": [w.pid for w in self.workers],
            "sources": SOURCES,
        }
        if self.error:
            result["error"] = self.error
        return result


def lock_kind(lock: str) -> str:
    """The kernel object behind a lock mode: a condition variable is made of POSIX semaphores."""
    return "sem" if lock == "condvar" else lock


__all__ = [
    "DEFAULT_ITERATIONS",
    "DEFAULT_WORKERS",
    "EXPLANATIONS",
    "FIXES",
    "SCENARIOS",
    "SOURCES",
    "ContendConfig",
    "ContendRun",
    "LockStats",
    "WorkerView",
]
