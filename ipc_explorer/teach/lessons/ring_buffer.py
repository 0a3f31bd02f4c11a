"""A semaphore-guarded ring buffer fills and drains: 'empty' and 'full' count the slots."""

from __future__ import annotations

from ipc_explorer.session import SessionConfig
from ipc_explorer.teach.lessons.base import Check, Lesson, fill_then_drain
from ipc_explorer.transports import TransportOptions

SLOTS = 8


class RingBuffer(Lesson):
    name = "ring-buffer"

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            mechanism="shm",
            format="msgpack",
            count=None,
            rate=None,
            options=TransportOptions(slots=SLOTS),
        )

    async def check(self) -> list[Check]:
        run = await fill_then_drain(self.session_config())
        full_ring, writer, summary = run.kernel, run.writer, run.summary
        return [
            Check(
                f"with the receiver paused the ring fills: full = {SLOTS}, empty = 0",
                {k: full_ring.get(k) for k in ("empty", "full", "mutex")},
                full_ring.get("full") == SLOTS and full_ring.get("empty") == 0,
            ),
            Check(
                "the sender sleeps in sem_wait on 'empty'",
                {
                    "syscall": writer.facts.get("syscall"),
                    "semaphore": writer.facts.get("semaphore"),
                    "value": writer.facts.get("semaphore_value"),
                },
                str(writer.facts.get("semaphore", "")).endswith("-empty")
                and writer.facts.get("semaphore_value") == 0,
            ),
            Check(
                "when the receiver goes on the ring drains and every message arrives",
                {k: summary[k] for k in ("sent", "received", "lost", "corrupt")},
                summary["lost"] == 0 and summary["received"] == summary["sent"] > SLOTS,
            ),
        ]
