"""Nagle's algorithm and delayed ACKs stall a request/reply written in two parts."""

from __future__ import annotations

from dataclasses import replace

from ipc_explorer.session import SessionConfig, run_once
from ipc_explorer.teach.lessons.base import Check, Lesson
from ipc_explorer.transports import TransportOptions

STALL_MS = 30.0


class Nagle(Lesson):
    name = "nagle"

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            mechanism="tcp",
            format="msgpack",
            pattern="ping-pong",
            count=None,
            rate=10,
            options=TransportOptions(nagle=True, split_writes=True),
        )

    async def check(self) -> list[Check]:
        base = replace(self.session_config(), rate=None)
        _, nagle = await run_once(replace(base, count=12))
        nodelay_options = replace(base.options, nagle=False)
        _, nodelay = await run_once(replace(base, count=300, options=nodelay_options))
        slow, fast = nagle["latency_us"]["p50"] / 1000, nodelay["latency_us"]["p50"] / 1000
        return [
            Check(
                f"with Nagle on, a round trip written as header + payload takes over {STALL_MS:g} "
                "ms (the delayed ACK)",
                {"rtt_p50_ms": round(slow, 3), "round_trips": nagle["received"]},
                slow > STALL_MS,
            ),
            Check(
                "with TCP_NODELAY the same round trip takes about a tenth of a millisecond",
                {"rtt_p50_ms": round(fast, 3), "round_trips": nodelay["received"]},
                fast < 5.0,
            ),
            Check(
                "the stall is the algorithm's, not the machine's: tens to hundreds of times slower",
                {"ratio": round(slow / fast, 1) if fast else None},
                bool(fast) and slow / fast > 10,
            ),
        ]
