"""The contention lab's shared-memory board: what the workers share, and what they say of
themselves so that the parent can draw a timeline and a wait-for graph without asking them.

One POSIX shared-memory segment of 4 KiB:

    0     go flag (u32), producer-done flag (u32)
    64    the shared counter (u64)                       scenario "counter"
    128   the record: seq, a = 3*seq, b = 7*seq, check     scenario "torn"
    192   the seqlock's sequence number (u64)
    256   ring head (u64), ring tail (u64), item count and the two condition variables'
          waiter counts (u64 each; the condition-variable variant)   scenario "buffer"
    320   ring slots (u64 each, up to 64)
    1024  one 32-byte slot per worker (up to 16): pid, state, waiting-for lock, held locks
          (bitmask), iterations done, events (torn reads seen, back-offs...)
    2048  step mode: on (u32); then one 32-byte step slot per worker: lock operations the
          parent allowed (u64) and the worker took (u64), whether it is held at the barrier
          (u32), and the operation it holds before (u32 kind, i32 lock)

Each worker writes only its own slot; the parent reads all of them (a sampled, not atomic,
view: good for a timeline, and a wait-for cycle is believed only when it persists).
"""

from __future__ import annotations

import mmap
import struct

import posix_ipc

BOARD_SIZE = 4096
GO = 0
PRODUCER_DONE = 4
COUNTER = 64
RECORD = 128
SEQLOCK = 192
RING_HEAD = 256
RING_TAIL = 264
RING_COUNT = 272
NOT_FULL_WAITERS = 280
NOT_EMPTY_WAITERS = 288
RING_SLOTS = 320
RING_MAX = 64
WORKER_SLOTS = 1024
WORKER_SLOT_SIZE = 32
MAX_WORKERS = 16

STEP_MODE = 2048
STEP_SLOTS = 2112
STEP_SLOT = struct.Struct("<QQIIi")  # allowed, taken, held, operation, lock
STEP_SLOT_SIZE = 32
#: The operations a worker can be held before, by code: lock operations, and the unguarded
#: read and write of the shared counter (no lock: the lost update, one step at a time).
STEP_OPERATIONS = ("", "acquire", "release", "post", "read", "write")

#: Worker states, as the timeline shows them.
STARTING, RUNNING, WAITING, HOLDING, DONE = range(5)

U32 = struct.Struct("<I")
I32 = struct.Struct("<i")
U64 = struct.Struct("<Q")
SLOT = struct.Struct("<IiiIQQ")  # pid, state, waiting_for, holds, iterations, events


class Board:
    """The mapped segment and typed access to it."""

    def __init__(self, name: str, create: bool = False):
        flags = posix_ipc.O_CREX if create else 0
        shm = posix_ipc.SharedMemory(name, flags, 0o600, BOARD_SIZE if create else 0)
        self.name = name
        self.map = mmap.mmap(shm.fd, BOARD_SIZE)
        shm.close_fd()
        self.buf = memoryview(self.map)

    @staticmethod
    def destroy(name: str) -> None:
        try:
            posix_ipc.unlink_shared_memory(name)
        except posix_ipc.ExistentialError:
            pass

    def close(self) -> None:
        self.buf.release()
        try:
            self.map.close()
        except BufferError:
            pass

    def u32(self, offset: int) -> int:
        return U32.unpack_from(self.buf, offset)[0]

    def set_u32(self, offset: int, value: int) -> None:
        U32.pack_into(self.buf, offset, value)

    def u64(self, offset: int) -> int:
        return U64.unpack_from(self.buf, offset)[0]

    def set_u64(self, offset: int, value: int) -> None:
        U64.pack_into(self.buf, offset, value)

    def slot(self, index: int) -> tuple[int, int, int, int, int, int]:
        return SLOT.unpack_from(self.buf, WORKER_SLOTS + index * WORKER_SLOT_SIZE)

    def step_slot(self, index: int) -> tuple[int, int, int, int, int]:
        """(allowed, taken, held, operation code, lock index) of worker ``index``."""
        return STEP_SLOT.unpack_from(self.buf, self.step_slot_offset(index))

    @staticmethod
    def step_slot_offset(index: int) -> int:
        return STEP_SLOTS + index * STEP_SLOT_SIZE

    def record(self) -> tuple[int, int, int, int]:
        return struct.unpack_from("<4Q", self.buf, RECORD)
