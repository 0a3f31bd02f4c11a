"""A contention-lab worker: one process doing one scenario's part on the shared board.

Started by the parent as ``python -m ipc_explorer.children --role contender``. It writes its state
into its own slot of the board at every lock operation (the parent samples those for the
timeline and the wait-for graph), measures its own waits and holds per lock, and every 200 ms
prints one JSON line with what changed (histogram buckets, acquisitions). The last line says
``"final": true`` and carries the scenario's own findings (torn reads, items received...).

If the parent dies (PR_SET_PDEATHSIG, and a thread that watches the parent pid) the worker
removes the board and every lock by name, as the parent would have, then exits.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import struct
import sys
import threading
import time
from typing import Any

from ipc_explorer.children.runtime import die_with_parent
from ipc_explorer.lab.board import (
    COUNTER,
    DONE,
    GO,
    HOLDING,
    I32,
    NOT_EMPTY_WAITERS,
    NOT_FULL_WAITERS,
    PRODUCER_DONE,
    RECORD,
    RING_COUNT,
    RING_HEAD,
    RING_SLOTS,
    RING_TAIL,
    RUNNING,
    SEQLOCK,
    STEP_MODE,
    STEP_OPERATIONS,
    STEP_SLOT_SIZE,
    STEP_SLOTS,
    U32,
    U64,
    WAITING,
    WORKER_SLOT_SIZE,
    WORKER_SLOTS,
    Board,
)
from ipc_explorer.lab.locks import Lock, destroy_lock, open_lock
from ipc_explorer.telemetry.histogram import Histogram

REPORT_EVERY_NS = 200_000_000
#: The item that tells a consumer the producer has finished.
POISON = (1 << 64) - 1
#: The bounded buffer's counting semaphores (posted by one side, taken by the other).
COUNTING = ("empty", "full")

#: How often a worker held in step mode looks for its next allowance.
STEP_POLL_S = 0.002

perf_ns = time.perf_counter_ns


class Stopped(BaseException):
    """SIGTERM (the parent's stop, or its death): leave whatever wait we are in."""


class _Stop:
    requested = False


def stop_pending() -> None:
    """Raise Stopped if a SIGTERM has come. Two cases: posix_ipc runs the Python handler
    inside its wait and then replaces the handler's Stopped with its own SignalError, so the
    flag the handler set is all that is left of it; sysv_ipc leaves the handler pending, and
    it runs on entering this Python function, raising Stopped here. Anything else (a
    SIGSTOP/SIGCONT pause) returns, and the caller waits again."""
    if _Stop.requested:
        raise Stopped()


class Contender:
    def __init__(self, config: dict[str, Any], parent_pid: int):
        self.cfg = config
        self.parent_pid = parent_pid
        self.index: int = config["index"]
        self.role: str = config["role"]
        self.iterations: int = config["iterations"]
        self.cs_ns: int = config.get("cs_us", 0) * 1000
        self.board = Board(config["board"])
        self.buf = self.board.buf
        self.slot = WORKER_SLOTS + self.index * WORKER_SLOT_SIZE
        self.step_slot = STEP_SLOTS + self.index * STEP_SLOT_SIZE
        kind = config.get("lock_kind", config["lock"])
        self.locks: dict[str, Lock] = {
            label: open_lock(kind, ident, mutex=label not in COUNTING)
            for label, ident in config["locks"].items()
        }
        self.bits = {label: 1 << i for i, label in enumerate(config["lock_order"])}
        self.ids = {label: i for i, label in enumerate(config["lock_order"])}
        self.holds = 0
        self.acq = dict.fromkeys(self.locks, 0)
        self.wait = {label: Histogram() for label in self.locks}
        self.hold = {label: Histogram() for label in self.locks}
        self.since: dict[str, int] = {}
        self.events = 0
        self.next_report = perf_ns() + REPORT_EVERY_NS
        self.findings: dict[str, Any] = {}

    # -- the slot ---------------------------------------------------------------------------
    def state(self, state: int, waiting_for: int = -1) -> None:
        I32.pack_into(self.buf, self.slot + 4, state)
        I32.pack_into(self.buf, self.slot + 8, waiting_for)

    def progress(self, done: int) -> None:
        U64.pack_into(self.buf, self.slot + 16, done)
        U64.pack_into(self.buf, self.slot + 24, self.events)
        if perf_ns() >= self.next_report:
            self.report()

    # -- step mode: one lock operation at a time -------------------------------------------
    def hold_for_step(self, operation: str, label: str | None) -> None:
        """In step mode, wait at the barrier before a lock operation until the parent allows
        this worker one more (it writes the allowance on the board; polled, as the lab's
        step mode is for watching, not for speed)."""
        if not U32.unpack_from(self.buf, STEP_MODE)[0]:
            return
        slot = self.step_slot
        taken = U64.unpack_from(self.buf, slot + 8)[0]
        I32.pack_into(self.buf, slot + 24, self.ids[label] if label is not None else -1)
        U32.pack_into(self.buf, slot + 20, STEP_OPERATIONS.index(operation))
        U32.pack_into(self.buf, slot + 16, 1)
        try:
            while U64.unpack_from(self.buf, slot)[0] <= taken:
                if not U32.unpack_from(self.buf, STEP_MODE)[0]:
                    return
                time.sleep(STEP_POLL_S)
            U64.pack_into(self.buf, slot + 8, taken + 1)
        finally:
            U32.pack_into(self.buf, slot + 16, 0)

    # -- locks, timed -----------------------------------------------------------------------
    def acquire(self, label: str, timeout: float | None = None, held: bool = True) -> bool:
        """P(label). ``held`` for a mutex (its hold time is measured until ``release``); a
        counting semaphore (empty, full) is only waited on, and ``post``-ed by the other side."""
        self.hold_for_step("acquire", label)
        self.state(WAITING, self.ids[label])
        lock = self.locks[label]
        t0 = perf_ns()
        while True:
            try:
                ok = lock.acquire(timeout)
                break
            except InterruptedError:
                stop_pending()  # our SIGTERM raises Stopped here; a SIGCONT (pause) waits again
        t1 = perf_ns()
        self.wait[label].add(t1 - t0)
        if not ok:
            self.state(HOLDING if self.holds else RUNNING)
            return False
        self.acq[label] += 1
        if held:
            self.holds |= self.bits[label]
            U32.pack_into(self.buf, self.slot + 12, self.holds)
            self.since[label] = t1
        self.state(HOLDING if self.holds else RUNNING)
        return True

    def release(self, label: str) -> None:
        self.hold_for_step("release", label)
        self.hold[label].add(perf_ns() - self.since.pop(label))
        self.holds &= ~self.bits[label]
        U32.pack_into(self.buf, self.slot + 12, self.holds)
        self.locks[label].release()
        self.state(HOLDING if self.holds else RUNNING)

    def post(self, label: str) -> None:
        """V(label) on a counting semaphore: one more free (or filled) slot."""
        self.hold_for_step("post", label)
        self.locks[label].release()

    def spin(self) -> None:
        """The critical section's own work: busy for ``cs_us`` (it keeps the CPU, as real
        work would; a sleep would hand the CPU to the others and hide the contention)."""
        if self.cs_ns:
            end = perf_ns() + self.cs_ns
            while perf_ns() < end:
                pass

    # -- reports ----------------------------------------------------------------------------
    def report(self, final: bool = False) -> None:
        self.next_report = perf_ns() + REPORT_EVERY_NS
        line: dict[str, Any] = {
            "acq": self.acq,
            "wait": {k: h.drain() for k, h in self.wait.items()},
            "hold": {k: h.drain() for k, h in self.hold.items()},
            "events": self.events,
        }
        if final:
            line["final"] = True
            line.update(self.findings)
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    # -- scenarios --------------------------------------------------------------------------
    def run(self) -> None:
        U32.pack_into(self.buf, self.slot, os.getpid())
        self.state(RUNNING)
        while not U32.unpack_from(self.buf, GO)[0]:  # all start together
            time.sleep(0.0005)
        getattr(self, f"run_{self.role}")()
        self.state(DONE)
        self.report(final=True)

    def run_counter(self) -> None:
        buf, unpack, pack = self.buf, U64.unpack_from, U64.pack_into
        locked = self.cfg["lock"] != "none"
        for i in range(self.iterations):
            if locked:
                self.acquire("counter")
            else:
                self.state(HOLDING)  # in the critical section, unguarded
                self.hold_for_step("read", None)  # step mode: the lost update, step by step
            value = unpack(buf, COUNTER)[0]
            self.spin()
            if not locked:
                self.hold_for_step("write", None)
            pack(buf, COUNTER, value + 1)
            if locked:
                self.release("counter")
            else:
                self.state(RUNNING)
            if not i & 255:
                self.progress(i)
        self.progress(self.iterations)

    def run_writer(self) -> None:
        """Writes records whose fields must agree: b = 7*seq, a = 3*seq, check = seq^a^b."""
        buf, pack, unpack = self.buf, U64.pack_into, U64.unpack_from
        mode = self.cfg["lock"]
        for seq in range(1, self.iterations + 1):
            if mode == "seqlock":
                pack(buf, SEQLOCK, unpack(buf, SEQLOCK)[0] + 1)  # odd: a write is under way
                self.state(HOLDING)
            elif mode != "none":
                self.acquire("record")
            else:
                self.state(HOLDING)
            a, b = 3 * seq, 7 * seq
            pack(buf, RECORD, seq)
            pack(buf, RECORD + 8, a)
            self.spin()
            pack(buf, RECORD + 16, b)
            pack(buf, RECORD + 24, seq ^ a ^ b)
            if mode == "seqlock":
                pack(buf, SEQLOCK, unpack(buf, SEQLOCK)[0] + 1)  # even again: done
                self.state(RUNNING)
            elif mode != "none":
                self.release("record")
            else:
                self.state(RUNNING)
            if not seq & 255:
                self.progress(seq)
        self.progress(self.iterations)
        U32.pack_into(buf, PRODUCER_DONE, 1)

    def run_reader(self) -> None:
        buf, unpack = self.buf, struct.Struct("<4Q").unpack_from
        seq_of = U64.unpack_from
        mode = self.cfg["lock"]
        reads = retries = 0
        example = None
        while not U32.unpack_from(buf, PRODUCER_DONE)[0]:
            if mode == "seqlock":
                before = seq_of(buf, SEQLOCK)[0]
                if before & 1:
                    retries += 1
                    continue
                seq, a, b, check = unpack(buf, RECORD)
                if seq_of(buf, SEQLOCK)[0] != before:
                    retries += 1  # a write overlapped the read: read again
                    continue
            elif mode != "none":
                self.acquire("record")
                seq, a, b, check = self._read_fields()
                self.release("record")
            else:
                seq, a, b, check = self._read_fields()
            reads += 1
            if a != 3 * seq or b != 7 * seq or check != seq ^ a ^ b:
                self.events += 1
                if example is None:
                    example = {"seq": seq, "a": a, "b": b, "check": check}
            if not reads & 255:
                self.progress(reads)
        self.progress(reads)
        self.findings = {"reads": reads, "torn": self.events, "retries": retries}
        if example is not None:
            self.findings["example"] = example

    def _read_fields(self) -> tuple[int, int, int, int]:
        """Field by field, as code that copies a struct member by member does."""
        buf, unpack = self.buf, U64.unpack_from
        seq = unpack(buf, RECORD)[0]
        a = unpack(buf, RECORD + 8)[0]
        self.spin()
        b = unpack(buf, RECORD + 16)[0]
        check = unpack(buf, RECORD + 24)[0]
        return seq, a, b, check

    # -- a condition variable across processes, made of semaphores ------------------------------
    # Python has no process-shared pthread_cond_t. This is the construction multiprocessing's
    # Condition uses: a waiter count (here in shared memory, guarded by the mutex), a "sleep"
    # semaphore the waiter blocks on, and a "woken" one the notifier waits for, so that a
    # notify wakes exactly one waiter that was already waiting.
    def cv_wait(self, cv: str, waiters_at: int) -> None:
        U64.pack_into(self.buf, waiters_at, U64.unpack_from(self.buf, waiters_at)[0] + 1)
        self.release("mutex")
        self.acquire(f"{cv}.sleep", held=False)
        self.post(f"{cv}.woken")
        self.acquire("mutex")

    def cv_notify(self, cv: str, waiters_at: int) -> None:
        waiting = U64.unpack_from(self.buf, waiters_at)[0]
        if waiting:
            self.post(f"{cv}.sleep")
            self.acquire(f"{cv}.woken", held=False)
            U64.pack_into(self.buf, waiters_at, waiting - 1)

    def run_producer(self) -> None:
        if self.cfg["lock"] == "condvar":
            return self.run_producer_cv()
        buf, pack, unpack = self.buf, U64.pack_into, U64.unpack_from
        slots = self.cfg["slots"]
        guarded = self.cfg["lock"] != "none"
        items = list(range(1, self.iterations + 1)) + [POISON] * self.cfg["consumers"]
        for n, item in enumerate(items):
            if guarded:
                self.acquire("empty", held=False)
                self.acquire("mutex")
            else:
                self.state(HOLDING)
            head = unpack(buf, RING_HEAD)[0]
            pack(buf, RING_SLOTS + 8 * (head % slots), item)
            pack(buf, RING_HEAD, head + 1)
            if guarded:
                self.release("mutex")
                self.post("full")
            else:
                self.state(RUNNING)
            if not n & 255:
                self.progress(n)
        self.progress(self.iterations)
        U32.pack_into(buf, PRODUCER_DONE, 1)

    def run_producer_cv(self) -> None:
        buf, pack, unpack = self.buf, U64.pack_into, U64.unpack_from
        slots = self.cfg["slots"]
        items = list(range(1, self.iterations + 1)) + [POISON] * self.cfg["consumers"]
        for n, item in enumerate(items):
            self.acquire("mutex")
            while unpack(buf, RING_COUNT)[0] == slots:
                self.cv_wait("not_full", NOT_FULL_WAITERS)
            head = unpack(buf, RING_HEAD)[0]
            pack(buf, RING_SLOTS + 8 * (head % slots), item)
            pack(buf, RING_HEAD, head + 1)
            pack(buf, RING_COUNT, unpack(buf, RING_COUNT)[0] + 1)
            self.cv_notify("not_empty", NOT_EMPTY_WAITERS)
            self.release("mutex")
            if not n & 255:
                self.progress(n)
        self.progress(self.iterations)
        U32.pack_into(buf, PRODUCER_DONE, 1)

    def take_cv(self) -> int:
        buf, pack, unpack = self.buf, U64.pack_into, U64.unpack_from
        self.acquire("mutex")
        while unpack(buf, RING_COUNT)[0] == 0:
            self.cv_wait("not_empty", NOT_EMPTY_WAITERS)
        tail = unpack(buf, RING_TAIL)[0]
        item = unpack(buf, RING_SLOTS + 8 * (tail % self.cfg["slots"]))[0]
        pack(buf, RING_TAIL, tail + 1)
        pack(buf, RING_COUNT, unpack(buf, RING_COUNT)[0] - 1)
        self.cv_notify("not_full", NOT_FULL_WAITERS)
        self.release("mutex")
        return item

    def run_consumer(self) -> None:
        buf, pack, unpack = self.buf, U64.pack_into, U64.unpack_from
        slots = self.cfg["slots"]
        guarded = self.cfg["lock"] != "none"
        delay = self.cfg.get("consumer_delay_us", 0) / 1e6
        total = self.iterations
        seen = bytearray((total + 8) // 8)
        received = duplicates = bogus = 0
        condvar = self.cfg["lock"] == "condvar"
        while True:
            if condvar:
                item = self.take_cv()
                if item == POISON:
                    break
                received, duplicates, bogus = self._record(item, seen, received, duplicates, bogus)
                if delay:
                    time.sleep(delay)
                if not received & 255:
                    self.progress(received)
                continue
            if guarded:
                self.acquire("full", held=False)
                self.acquire("mutex")
            else:
                tail, head = unpack(buf, RING_TAIL)[0], unpack(buf, RING_HEAD)[0]
                if tail >= head:
                    if U32.unpack_from(buf, PRODUCER_DONE)[0]:
                        break
                    self.state(WAITING)
                    continue  # nothing to take: poll again (no semaphore to sleep on)
                self.state(HOLDING)
            tail = unpack(buf, RING_TAIL)[0]
            item = unpack(buf, RING_SLOTS + 8 * (tail % slots))[0]
            pack(buf, RING_TAIL, tail + 1)
            if guarded:
                self.release("mutex")
                self.post("empty")
            else:
                self.state(RUNNING)
            if item == POISON:
                if guarded:
                    break
                continue
            received, duplicates, bogus = self._record(item, seen, received, duplicates, bogus)
            if delay:
                time.sleep(delay)
            if not received & 255:
                self.progress(received)
        self.progress(received)
        self.findings = {
            "received": received,
            "duplicates": duplicates,
            "bogus": bogus,
            "seen": base64.b64encode(bytes(seen)).decode(),
        }

    def _record(
        self, item: int, seen: bytearray, received: int, duplicates: int, bogus: int
    ) -> tuple[int, int, int]:
        """Count one item taken: a second time is a duplicate, an unknown number is bogus."""
        received += 1
        if 1 <= item <= self.iterations:
            byte, bit = divmod(item - 1, 8)
            if seen[byte] >> bit & 1:
                duplicates += 1
                self.events += 1
            seen[byte] |= 1 << bit
        else:
            bogus += 1
        return received, duplicates, bogus

    def run_ring(self) -> None:
        """Deadlock scenario: take my lock, then my neighbour's (a ring of N processes)."""
        order = self.cfg["lock_order"]
        mine, next_ = order[self.index], order[(self.index + 1) % len(order)]
        fix = self.cfg.get("fix", "none")
        if fix == "order":
            mine, next_ = sorted((mine, next_), key=order.index)
        hold_s = self.cs_ns / 1e9
        done = 0
        while done < self.iterations:
            self.acquire(mine)
            self.report()  # said now: a deadlocked worker never gets to its next report
            time.sleep(hold_s)  # holding the first lock while doing some work
            if fix == "timeout":
                if not self.acquire(next_, timeout=0.02):
                    self.release(mine)
                    self.events += 1  # a back-off, on the board at once: it is not stuck
                    U64.pack_into(self.buf, self.slot + 24, self.events)
                    time.sleep(random.uniform(0, 0.004))
                    continue
            else:
                self.acquire(next_)
            self.release(next_)
            self.release(mine)
            done += 1
            self.progress(done)
        self.findings = {"backoffs": self.events}

    def close(self) -> None:
        for lock in self.locks.values():
            lock.close()
        self.board.close()


def remove_everything(config: dict[str, Any]) -> None:
    """The parent is gone: remove what it would have removed (by name; idempotent)."""
    Board.destroy(config["board"])
    for ident in config["locks"].values():
        destroy_lock(config.get("lock_kind", config["lock"]), ident)


def watch_parent(config: dict[str, Any], parent_pid: int) -> None:
    """The last word on the parent's death, whatever the main thread is doing (a signal can
    land between a lock's wait and its bookkeeping): every 100 ms, is the parent still ours?"""
    while True:
        time.sleep(0.1)
        if os.getppid() != parent_pid:
            remove_everything(config)
            os._exit(0)


def main(config: dict[str, Any], parent_pid: int) -> int:
    def on_term(_signum: int, _frame: Any) -> None:
        # Once: a SIGKILLed parent's threads die one by one and each death sends the parent
        # death signal again; a second Stopped would cut the clean-up in half.
        if not _Stop.requested:
            _Stop.requested = True
            raise Stopped()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=watch_parent, args=(config, parent_pid), daemon=True).start()
    # Only now, with the handler in place: a SIGTERM before it would end the process without
    # removing anything. A parent that died before this line is caught by the check inside.
    try:
        die_with_parent(parent_pid)
    except SystemExit:
        remove_everything(config)
        return 0
    worker = None
    code = 0
    try:
        try:
            worker = Contender(config, parent_pid)
            worker.run()
        except Exception as exc:  # said to the parent, never a silent death
            stop_pending()
            sys.stdout.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
            code = 4
    except Stopped:
        pass
    finally:
        # SIGTERM is the parent's stop (it removes everything right after) or its death: while a
        # dying parent's other threads still run, getppid() still names it, so a stop signal is
        # reason enough. Removing by name twice is harmless.
        if _Stop.requested or os.getppid() != parent_pid:
            remove_everything(config)
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the parent is gone: nobody to tell
        pass
    return code
