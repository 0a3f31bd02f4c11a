"""A full pipe blocks its writer: the reader pauses, the 64 KiB buffer fills, write(2) sleeps."""

from __future__ import annotations

from ipc_explorer.kernel.syscalls import WRITES
from ipc_explorer.session import SessionConfig
from ipc_explorer.teach.lessons.base import Check, Lesson, fill_then_drain
from ipc_explorer.transports import TransportOptions

#: A struct message of 256 bytes on the wire: 16 fill each 4 KiB page of the pipe exactly, so
#: that a full pipe holds exactly its capacity (other sizes leave a little of each page).
SIZE = 198


class FullPipe(Lesson):
    name = "full-pipe"

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            mechanism="pipe",
            format="struct",
            size=SIZE,
            count=None,
            rate=None,
            options=TransportOptions(pipe_size=65536),
        )

    async def check(self) -> list[Check]:
        run = await fill_then_drain(self.session_config())
        writer, reader, summary = run.writer, run.reader, run.summary
        facts = writer.facts.values()
        syscall = facts.get("syscall", "")
        queued, capacity = facts.get("queued_bytes"), facts.get("capacity_bytes")
        return [
            Check(
                "the writer is blocked in write(2) on the pipe",
                {
                    "blocked_in": "write" if syscall in WRITES else syscall,
                    "syscall": syscall,
                    "process_state": facts.get("process_state"),
                    "wchan": facts.get("wchan"),
                    "sentence": writer.sentence,
                },
                syscall in ("write", "writev") and writer.state == "blocked",
            ),
            Check(
                "the pipe is full: the bytes queued in the kernel equal its capacity",
                {"queued_bytes": queued, "capacity_bytes": capacity},
                queued is not None and queued == capacity,
            ),
            Check(
                "the reader is not reading (paused), so nothing makes room",
                {"syscall": reader.facts.get("syscall"), "sentence": reader.sentence},
                str(reader.facts.get("syscall", "")).startswith("futex"),
            ),
            Check(
                "once the reader goes on, every message arrives: a pipe blocks, it never drops",
                {k: summary[k] for k in ("sent", "received", "lost", "corrupt")},
                summary["sent"] > 0 and summary["lost"] == 0 and summary["corrupt"] == 0,
            ),
        ]
