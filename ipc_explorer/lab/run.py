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
from collections.abc import Callable
from typing import Any

from ipc_explorer.explain.lab import SOURCES
from ipc_explorer.lab.board import COUNTER, DONE, GO, STEP_MODE, STEP_OPERATIONS, WAITING, Board
from ipc_explorer.lab.config import ContendConfig
from ipc_explorer.lab.deadlock import CycleWatch, WaitFor, wait_for_graph
from ipc_explorer.lab.locks import Lock, create_lock, destroy_lock, new_lock_id
from ipc_explorer.lab.stats import LockStats, WorkerView

SAMPLE_INTERVAL_S = 0.05
START_TIMEOUT_S = 10.0

#: Hears what changes a run's state, as it happens: (record kind, plain values). The kinds:
#: ``lock`` and ``worker`` (made), ``report`` (a worker's line), ``exit``, ``sample`` (the board
#: and the locks as read) and ``event`` (deadlock, error, step, step_mode, pause). Folding them in
#: order (``fold_report``, ``apply_sample``) gives the same state again: a recording's replay.
Tap = Callable[[str, dict[str, Any]], None]


class ContendRun:
    """One run of one scenario. ``start``, then ``wait`` (or ``stop``); state is readable
    at any time for a live view."""

    def __init__(self, config: ContendConfig):
        config.validate()
        self.config = config
        self.tag = secrets.token_hex(4)
        self.board_name = f"/ipcx-{self.tag}-board"
        self.board: Board | None = None
        self.lock_order: list[str] = config.lock_labels()
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
        self._cycle_watch = CycleWatch()
        self._destroyed = False
        self._acq_mark: tuple[float, dict[str, int]] | None = None
        #: The shared counter's value when last read (the board is gone after the run).
        self.last_counter = 0
        self.tap: Tap | None = None
        #: Step mode: every worker holds before each lock operation until allowed one.
        self.stepping = False
        self._last_stepped = -1
        self._held_s = 0.0
        self._held_since: float | None = None

    # -- set-up -------------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        self.state = "starting"
        try:
            self.board = Board(self.board_name, create=True)
            self.board.set_u32(STEP_MODE, 1 if self.stepping else 0)  # held from the first op
            for label in self.lock_order:
                kind = cfg.lock_kind
                ident = new_lock_id(kind, self.tag, label)
                lock = create_lock(kind, ident, cfg.initial_value(label))
                self.locks[label] = lock
                self.lock_ids[label] = lock.ident
                self.stats[label] = LockStats(label, kind)
                self._tell("lock", label=label, lock_kind=kind)

            for index, role in enumerate(cfg.roles()):
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
            "lock_kind": cfg.lock_kind,
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
        self._tell("worker", index=index, role=role, pid=proc.pid)
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
            if not isinstance(report, dict):
                continue
            self._tell("report", worker=view.index, report=report)
            self.fold_report(view, report)
            if "error" in report:
                self._tell("event", what="error", text=self.error)
        view.exit_code = await proc.wait()
        self._tell("exit", worker=view.index, code=view.exit_code)

    def fold_report(self, view: WorkerView, report: dict[str, Any]) -> None:
        """One line of a worker's: its acquisitions, wait and hold times, its findings."""
        if "error" in report:
            self.error = f"worker {view.index} ({view.role}): {report['error']}"
            return
        view.acq = report.get("acq", view.acq)
        for label, delta in report.get("wait", {}).items():
            if label in self.stats:
                self.stats[label].wait.merge((int(k), v) for k, v in delta.items())
        for label, delta in report.get("hold", {}).items():
            if label in self.stats:
                self.stats[label].hold.merge((int(k), v) for k, v in delta.items())
        if report.get("final"):
            view.final = report

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
                held = self._held_s + (
                    time.monotonic() - self._held_since if self._held_since is not None else 0
                )  # a class may watch a step for minutes: that is not the run's time
                if time.monotonic() - self.started_at - held > self.config.timeout_s:
                    self.error = f"the run did not end within {self.config.timeout_s:g} s"
                    self.state = "failed"
                    self._tell("event", what="error", text=self.error)
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
        locks: dict[str, list[int | None]] = {}
        for label, stats in self.stats.items():
            lock = self.locks.get(label)
            values = [stats.value, stats.kernel_waiters, stats.kernel_last_pid]
            try:
                values = [
                    lock.value() if lock else None,
                    lock.kernel_waiters() if lock else None,
                    lock.kernel_last_pid() if lock else None,
                ]
            except Exception:  # removed under us at the end of a run
                pass
            locks[label] = values
        read = {
            "slots": [list(board.slot(w.index)) for w in self.workers],
            "locks": locks,
            "counter": board.u64(COUNTER),
        }
        self.apply_sample(read, time.monotonic())
        self._tell("sample", **read, elapsed=self.elapsed_s())

    def apply_sample(self, read: dict[str, Any], now: float) -> None:
        """Fold one reading of the board (``sample``'s, or a recording's) into the state."""
        self.last_counter = read["counter"]
        for stats in self.stats.values():
            stats.holders, stats.waiting = [], []
        for w, slot in zip(self.workers, read["slots"], strict=False):
            pid, state, waiting_for, holds, done, events = slot
            w.state, w.done, w.events = state, done, events
            if w.exit_code is not None and state != DONE:
                w.state = DONE
            w.timeline.append(-1 if w.paused else w.state)
            for i, label in enumerate(self.lock_order):
                if holds >> i & 1:
                    self.stats[label].holders.append(pid)
                if state == WAITING and waiting_for == i:
                    self.stats[label].waiting.append(pid)
        for label, stats in self.stats.items():
            if label in read["locks"]:
                stats.value, stats.kernel_waiters, stats.kernel_last_pid = read["locks"][label]
            if stats.value is not None:
                stats.history.append(stats.value)
            stats.acquisitions = sum(w.acq.get(label, 0) for w in self.workers)
        mark = self._acq_mark
        if mark is None or now - mark[0] >= 0.5:
            current = {label: s.acquisitions for label, s in self.stats.items()}
            if mark is not None:
                then, marks = mark
                for label, s in self.stats.items():
                    s.acq_per_s = (current[label] - marks.get(label, 0)) / (now - then)
            self._acq_mark = (now, current)

    def _tell(self, record_kind: str, /, **values: Any) -> None:
        if self.tap is not None:
            self.tap(record_kind, values)

    # -- deadlock ----------------------------------------------------------------------------
    def wait_for_graph(self) -> WaitFor:
        """Edges worker -> (worker holding the lock it waits for, that lock), as last sampled."""
        return wait_for_graph(self.workers, self.lock_order, self.stats)

    def _check_cycle(self) -> bool:
        now = time.monotonic()
        cycle = self._cycle_watch.confirmed(self.wait_for_graph(), self.workers, now)
        if not cycle:
            return False
        self.cycle = cycle
        self.cycle_detected_after_s = round(now - self.started_at, 3)
        self.state = "deadlocked"
        self.ended_at = now
        self._tell("event", what="deadlock", text=describe_cycle(cycle), cycle=cycle)
        self._tasks.append(asyncio.create_task(self._kill_workers()))
        return True

    # -- the end -----------------------------------------------------------------------------
    def _finish(self) -> None:
        self.ended_at = time.monotonic()
        codes = [w.exit_code for w in self.workers]
        if any(codes) or self.error:
            self.state = "failed"
            if not self.error:
                self.error = f"a worker exited with {codes}"
                self._tell("event", what="error", text=self.error)
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

    # -- step mode -------------------------------------------------------------------------
    def set_step_mode(self, on: bool) -> None:
        """Hold every worker before its next lock operation (or let them all go). Time spent
        held does not count against the run's timeout."""
        now = time.monotonic()
        if on and not self.stepping:
            self._held_since = now
        elif not on and self.stepping and self._held_since is not None:
            self._held_s += now - self._held_since
            self._held_since = None
        if on != self.stepping:
            self._tell("event", what="step_mode", text="held" if on else "let go", on=on)
        self.stepping = on
        if self.board is not None and not self._destroyed:
            self.board.set_u32(STEP_MODE, 1 if on else 0)

    def held_workers(self) -> list[dict[str, Any]]:
        """The workers waiting at the barrier, with the lock operation each would do next."""
        if self.board is None or self._destroyed:
            return []
        held = []
        for w in self.workers:
            allowed, taken, at_barrier, operation, lock = self.board.step_slot(w.index)
            # at the barrier, not allowed already (it leaves a moment later), not SIGSTOPped
            if at_barrier and allowed <= taken and not w.paused and w.exit_code is None:
                if 0 <= lock < len(self.lock_order):
                    label = self.lock_order[lock]
                else:
                    label = "the counter" if self.config.scenario == "counter" else "?"
                held.append(
                    {
                        "worker": w.index,
                        "pid": w.pid,
                        "operation": STEP_OPERATIONS[operation],
                        "lock": label,
                    }
                )
        return held

    def step(self) -> dict[str, Any] | None:
        """Allow one lock operation to the next held worker (round robin from the last one);
        None when no worker is at the barrier: all wait on a lock, or have finished."""
        held = self.held_workers()
        if not held or self.board is None:
            return None
        after = [h for h in held if h["worker"] > self._last_stepped]
        chosen = (after or held)[0]
        offset = self.board.step_slot_offset(chosen["worker"])
        self.board.set_u64(offset, self.board.u64(offset) + 1)
        self._last_stepped = chosen["worker"]
        self._tell("event", what="step", text=describe_step(chosen), **chosen)
        return chosen

    def pause_consumers(self, paused: bool) -> None:
        """SIGSTOP / SIGCONT the consumers (or readers): a real pause, the kernel's own."""
        for w, proc in zip(self.workers, self._procs, strict=True):
            if w.role in ("consumer", "reader") and proc.returncode is None:
                os.kill(proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)
                w.paused = paused
        what = "consumers" if self.config.scenario == "buffer" else "readers"
        text = f"{what} {'stopped (SIGSTOP)' if paused else 'resumed (SIGCONT)'}"
        self._tell("event", what="pause", text=text, paused=paused)

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
            destroy_lock(self.config.lock_kind, ident)
        if self.board is not None:
            self.board.close()
        Board.destroy(self.board_name)

    # -- what it found -----------------------------------------------------------------------
    def counter_value(self) -> int:
        if self.board is None or self._destroyed:
            return self.last_counter
        self.last_counter = self.board.u64(COUNTER)
        return self.last_counter

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


def describe_step(chosen: dict[str, Any]) -> str:
    """One step of step mode in words: who did which lock operation."""
    who = f"worker {chosen['worker']} (pid {chosen['pid']})"
    return f"{who}: {chosen['operation']} {chosen['lock']}"


def describe_cycle(cycle: list[dict[str, Any]]) -> str:
    """A deadlock's cycle in words, edge by edge."""
    return ", ".join(
        f"worker {e['worker']} waits for {e['waits_for_lock']} held by worker {e['held_by_worker']}"
        for e in cycle
    )
