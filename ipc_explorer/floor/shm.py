"""Shared memory: per direction, a ring of slots in a POSIX shm segment, guarded by three
named semaphores (empty, full, mutex) as producer/consumer."""

from __future__ import annotations

import mmap
import time

import posix_ipc

from ipc_explorer.floor.protocol import LEN, WARMUP, frame, say, sender_result

MECHANISMS = ("shm",)

#: Slots per shared-memory ring (each slot holds one framed message).
SHM_SLOTS = 16
#: The three semaphores of a ring and their initial values.
SEMAPHORES = {"empty": SHM_SLOTS, "full": 0, "mutex": 1}


def wire_sizes(mechanism: str) -> tuple[int, int]:
    """A slot holds one framed message: its length prefix at least."""
    return LEN.size, 1 << 30


class Ring:
    """One direction of shared memory: slots in a POSIX shm segment, a producer/consumer
    ring guarded by empty (free slots), full (written slots) and mutex semaphores."""

    def __init__(self, names: dict[str, str], size: int):
        shm = posix_ipc.SharedMemory(names["shm"])
        self.map = mmap.mmap(shm.fd, size * SHM_SLOTS)
        shm.close_fd()
        whole = memoryview(self.map)
        self.slots = [whole[i * size : (i + 1) * size] for i in range(SHM_SLOTS)]
        self.empty = posix_ipc.Semaphore(names["empty"])
        self.full = posix_ipc.Semaphore(names["full"])
        self.mutex = posix_ipc.Semaphore(names["mutex"])
        self.next = 0  # each side counts its own slots: one producer, one consumer

    def put(self, message: bytes | memoryview) -> None:
        self.empty.acquire()
        self.mutex.acquire()
        self.slots[self.next][: len(message)] = message
        self.mutex.release()
        self.full.release()
        self.next = (self.next + 1) % SHM_SLOTS

    def get(self, out: memoryview) -> int:
        self.full.acquire()
        self.mutex.acquire()
        slot = self.slots[self.next]
        n = LEN.size + LEN.unpack_from(slot)[0]
        out[:n] = slot[:n]
        self.mutex.release()
        self.empty.release()
        self.next = (self.next + 1) % SHM_SLOTS
        return n


def sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    ring, back = (Ring(names, size) for names in setup["rings"])
    message = frame(size)
    echo = memoryview(bytearray(size))
    for _ in range(WARMUP):
        ring.put(message)
        back.get(echo)
    # The timed loops are ring.put / back.get written out: a method call per message would
    # be a visible part of the floor.
    slots, i, nslots = ring.slots, ring.next, SHM_SLOTS
    empty_acquire, full_release = ring.empty.acquire, ring.full.release
    lock, unlock = ring.mutex.acquire, ring.mutex.release
    if not pingpong:
        t0 = time.monotonic_ns()
        for _ in range(count):
            empty_acquire()
            lock()
            slots[i][:] = message
            unlock()
            full_release()
            i = (i + 1) % nslots
        return sender_result(t0, time.monotonic_ns(), None, count)
    back_slots, j = back.slots, back.next
    full_acquire, empty_release = back.full.acquire, back.empty.release
    back_lock, back_unlock = back.mutex.acquire, back.mutex.release
    unpack = LEN.unpack_from
    clock = time.perf_counter_ns
    rtts: list[int] = []
    t0 = time.monotonic_ns()
    for _ in range(count):
        start = clock()
        empty_acquire()
        lock()
        slots[i][:] = message
        unlock()
        full_release()
        i = (i + 1) % nslots
        full_acquire()
        back_lock()
        slot = back_slots[j]
        n = 4 + unpack(slot)[0]
        echo[:n] = slot[:n]
        back_unlock()
        empty_release()
        j = (j + 1) % nslots
        rtts.append(clock() - start)
    return sender_result(t0, time.monotonic_ns(), rtts, count)


def receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    ring, back = (Ring(names, size) for names in setup["rings"])
    say({"ready": True})
    local = memoryview(bytearray(size))
    for _ in range(WARMUP):
        back.put(local[: ring.get(local)])
    slots, i, nslots = ring.slots, ring.next, SHM_SLOTS
    full_acquire, empty_release = ring.full.acquire, ring.empty.release
    lock, unlock = ring.mutex.acquire, ring.mutex.release
    back_slots, j = back.slots, back.next
    empty_acquire, full_release = back.empty.acquire, back.full.release
    back_lock, back_unlock = back.mutex.acquire, back.mutex.release
    unpack = LEN.unpack_from
    for _ in range(count):
        full_acquire()
        lock()
        slot = slots[i]
        n = 4 + unpack(slot)[0]
        local[:n] = slot[:n]  # the message leaves shared memory: the consumer's copy
        unlock()
        empty_release()
        i = (i + 1) % nslots
        if pingpong:
            empty_acquire()
            back_lock()
            back_slots[j][:n] = local[:n]
            back_unlock()
            full_release()
            j = (j + 1) % nslots
    return {"received": count, "t_last_ns": time.monotonic_ns()}
