"""Shared memory: a ring buffer of slots in POSIX shm, guarded by three named semaphores.

The classic bounded buffer: ``empty`` counts free slots (the producer waits on it when the ring
is full), ``full`` counts filled slots (the consumer waits on it), ``mutex`` guards the ring's
indices. The payload is copied once into the mapping and once out: no kernel buffer in between.

posix_ipc.SharedMemory + mmap is used rather than multiprocessing.shared_memory, whose resource
tracker (3.11) may unlink a segment when a process that merely attached to it exits.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import Any

import posix_ipc

from ipc_explorer.codecs.base import Span
from ipc_explorer.kernel.facts import Facts
from ipc_explorer.sync import InstrumentedSemaphore
from ipc_explorer.transports import register
from ipc_explorer.transports.base import (
    ENVELOPE,
    ChannelEnd,
    ChannelPlan,
    Frame,
    Limits,
    Role,
    Transport,
    TransportError,
    TransportOptions,
    envelope_spans,
    monotonic_ns,
)

RING_HEADER = struct.Struct("<IIIIQQ")  # magic, slots, slot size, reserved, write idx, read idx
RING_HEADER_SIZE = 64
RING_MAGIC = 0x49504358  # "IPCX"
SLOT_HEADER = struct.Struct("<IIQ")  # length of envelope + payload, reserved, sender sync ns
SLOT_OVERHEAD = SLOT_HEADER.size + ENVELOPE.size
_WRITE_IDX = 16
_READ_IDX = 24
_IDX = struct.Struct("<Q")


def ring_names(tag: str, direction: str) -> dict[str, str]:
    base = f"/ipcx-{tag}-{direction}"
    return {
        "shm": base,
        "empty": f"{base}-empty",
        "full": f"{base}-full",
        "mutex": f"{base}-mutex",
    }


class Ring:
    """One direction: a mapped segment and its three semaphores, opened by name."""

    def __init__(self, names: dict[str, str], slots: int, slot_size: int, direction: str):
        self.names = names
        self.slots = slots
        self.slot_size = slot_size
        memory = posix_ipc.SharedMemory(names["shm"])
        self.map = mmap.mmap(memory.fd, memory.size)
        memory.close_fd()
        self.empty = InstrumentedSemaphore(
            posix_ipc.Semaphore(names["empty"]), f"{direction} empty"
        )
        self.full = InstrumentedSemaphore(posix_ipc.Semaphore(names["full"]), f"{direction} full")
        self.mutex = InstrumentedSemaphore(
            posix_ipc.Semaphore(names["mutex"]), f"{direction} mutex", is_mutex=True
        )
        self.write_index = _IDX.unpack_from(self.map, _WRITE_IDX)[0]
        self.read_index = _IDX.unpack_from(self.map, _READ_IDX)[0]

    def put(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        t_send = monotonic_ns()
        waited = self.empty.acquire()
        waited += self.mutex.acquire()
        try:
            offset = RING_HEADER_SIZE + (self.write_index % self.slots) * self.slot_size
            SLOT_HEADER.pack_into(self.map, offset, len(payload) + ENVELOPE.size, 0, waited)
            ENVELOPE.pack_into(self.map, offset + SLOT_HEADER.size, seq, t_send, ser_ns, crc)
            start = offset + SLOT_OVERHEAD
            self.map[start : start + len(payload)] = payload
            self.write_index += 1
            _IDX.pack_into(self.map, _WRITE_IDX, self.write_index)
        finally:
            self.mutex.release()
        self.full.release()
        return waited

    def take(self) -> Frame:
        self.full.acquire()  # waiting for a message to exist: idle time, not contention
        waited = self.mutex.acquire()
        try:
            offset = RING_HEADER_SIZE + (self.read_index % self.slots) * self.slot_size
            length, _, sender_wait = SLOT_HEADER.unpack_from(self.map, offset)
            seq, t_send, ser_ns, crc = ENVELOPE.unpack_from(self.map, offset + SLOT_HEADER.size)
            start = offset + SLOT_OVERHEAD
            payload = self.map[start : start + length - ENVELOPE.size]
            self.read_index += 1
            _IDX.pack_into(self.map, _READ_IDX, self.read_index)
        finally:
            self.mutex.release()
        self.empty.release()
        return Frame(seq, t_send, ser_ns, crc, payload, sender_wait + waited)

    def occupancy(self) -> int:
        write, read = (_IDX.unpack_from(self.map, i)[0] for i in (_WRITE_IDX, _READ_IDX))
        return write - read

    def semaphores(self) -> list[InstrumentedSemaphore]:
        return [self.empty, self.full, self.mutex]

    def close(self) -> None:
        self.map.close()
        for sem in self.semaphores():
            sem.sem.close()


def _create_ring(names: dict[str, str], slots: int, slot_size: int) -> None:
    size = RING_HEADER_SIZE + slots * slot_size
    memory = posix_ipc.SharedMemory(names["shm"], posix_ipc.O_CREX, mode=0o600, size=size)
    with mmap.mmap(memory.fd, memory.size) as view:
        RING_HEADER.pack_into(view, 0, RING_MAGIC, slots, slot_size, 0, 0, 0)
    memory.close_fd()
    for key, initial in (("empty", slots), ("full", 0), ("mutex", 1)):
        posix_ipc.Semaphore(names[key], posix_ipc.O_CREX, mode=0o600, initial_value=initial).close()


def _unlink_ring(names: dict[str, str]) -> None:
    try:
        posix_ipc.unlink_shared_memory(names["shm"])
    except posix_ipc.ExistentialError:
        pass
    for key in ("empty", "full", "mutex"):
        try:
            posix_ipc.unlink_semaphore(names[key])
        except posix_ipc.ExistentialError:
            pass


@register
class ShmTransport(Transport):
    name = "shm"
    title = "shared memory + semaphores"
    boundaries = "message"

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        if options.slots < 1 or options.slot_size < SLOT_OVERHEAD:
            raise TransportError(f"a ring needs at least 1 slot of at least {SLOT_OVERHEAD} bytes")
        names: dict[str, Any] = {"forward": ring_names(tag, "fwd")}
        if duplex:
            names["back"] = ring_names(tag, "back")
        plan = ChannelPlan(
            mechanism=cls.name,
            duplex=duplex,
            workdir=str(workdir),
            options=options,
            limits=Limits(
                max_wire=options.slot_size,
                overhead=SLOT_OVERHEAD,
                limit_text=f"this ring's slot size is {options.slot_size} bytes",
                buffer_bytes=options.slots * options.slot_size,
            ),
            names=names,
        )
        try:
            for ring in ("forward", "back"):
                if ring in names:
                    _create_ring(names[ring], options.slots, options.slot_size)
        except (posix_ipc.Error, OSError, ValueError) as exc:
            cls.destroy(plan)
            raise TransportError(f"cannot create the shared-memory ring: {exc}") from None
        return plan

    @classmethod
    def destroy(cls, plan: ChannelPlan) -> None:
        for ring in ("forward", "back"):
            if ring in plan.names:
                _unlink_ring(plan.names[ring])
        super().destroy(plan)

    def __init__(self, plan: ChannelPlan, role: Role):
        super().__init__(plan, role)
        self._out: Ring | None = None
        self._in: Ring | None = None

    def open(self) -> None:
        opts = self.plan.options
        forward = Ring(self.plan.names["forward"], opts.slots, opts.slot_size, "forward")
        back = (
            Ring(self.plan.names["back"], opts.slots, opts.slot_size, "back")
            if self.plan.duplex
            else None
        )
        if self.role == "sender":
            self._out, self._in = forward, back
        else:
            self._out, self._in = back, forward

    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        assert self._out is not None
        self.limits.check(len(payload))
        self.last_sync_ns = self._out.put(seq, ser_ns, crc, payload)
        return len(payload) + SLOT_OVERHEAD

    def recv(self) -> Frame:
        assert self._in is not None
        return self._in.take()

    def close(self) -> None:
        for ring in (self._out, self._in):
            if ring is not None:
                ring.close()

    def wire_image(self, frame: Frame, forward: bool = True) -> tuple[bytes, list[Span]]:
        head = SLOT_HEADER.pack(len(frame.payload) + ENVELOPE.size, 0, frame.sync_ns)
        envelope = ENVELOPE.pack(frame.seq, frame.t_send, frame.ser_ns, frame.crc)
        spans = [
            Span(
                0, 4, "slot.length", "framing", f"length u32 {len(frame.payload) + ENVELOPE.size}"
            ),
            Span(4, 8, "slot.reserved", "framing", "reserved u32"),
            Span(8, 16, "slot.sync_ns", "framing", f"sender sync wait ns u64 {frame.sync_ns}"),
            *envelope_spans(SLOT_HEADER.size, frame),
        ]
        return head + envelope + frame.payload, spans

    def sync_objects(self) -> list[InstrumentedSemaphore]:
        return [
            sem for ring in (self._out, self._in) if ring is not None for sem in ring.semaphores()
        ]

    def live_state(self) -> dict[str, Any]:
        ring = self._in if self.role == "receiver" else self._out
        if ring is None:
            return {}
        return {"ring_occupancy": ring.occupancy(), "ring_slots": ring.slots}

    @classmethod
    def kernel_facts(cls, plan: ChannelPlan, ends: dict[str, ChannelEnd]) -> Facts:
        """Each ring's semaphore values from sem_getvalue, opened by name by the parent (the
        kernel keeps no queue here: the slots are plain memory, the semaphores count them)."""
        facts = Facts()
        for ring, prefix in (("forward", ""), ("back", "back_")):
            names = plan.names.get(ring)
            if not names:
                continue
            for key in ("empty", "full", "mutex"):
                source = f"sem_getvalue on {names[key]}, opened by the parent"
                try:
                    sem = posix_ipc.Semaphore(names[key])
                except posix_ipc.ExistentialError:
                    continue
                try:
                    facts.add(f"{prefix}{key}", sem.value, source)
                finally:
                    sem.close()
        return facts

    def kernel_object(self) -> str:
        fwd = self.plan.names["forward"]
        opts = self.plan.options
        return f"{fwd['shm']} ({opts.slots} x {opts.slot_size} B) + sem -empty -full -mutex"

    def framing_text(self) -> str:
        return (
            "slots of a ring: each message fills one slot, a 16-byte slot header (length, "
            f"sender's semaphore wait) and a {ENVELOPE.size}-byte envelope before the payload"
        )
