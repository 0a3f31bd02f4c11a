"""UDP drops under a paused receiver, and the kernel counts every drop."""

from __future__ import annotations

import asyncio

from ipc_explorer.session import Session, SessionConfig
from ipc_explorer.teach.lessons.base import Check, Lesson, finish

PAUSE_S = 1.0


class UdpDrops(Lesson):
    name = "udp-drops"

    def session_config(self) -> SessionConfig:
        return SessionConfig(mechanism="udp", format="msgpack", size=1000, count=None, rate=None)

    async def check(self) -> list[Check]:
        session = Session(self.session_config())
        await session.start()
        try:
            await asyncio.sleep(0.2)
            session.pause("receiver")
            session.send_control("sender", {"op": "report"})
            await asyncio.sleep(0.1)
            sent_before = session.stats.sender.count("sent")
            await asyncio.sleep(PAUSE_S)
            session.send_control("sender", {"op": "report"})
            await asyncio.sleep(0.1)
            sent_during = session.stats.sender.count("sent") - sent_before
            session.resume("receiver")
            summary = await finish(session)
        finally:
            await session.stop(drain=False)
        lost, drops = summary["lost"], summary["kernel_drops"]
        return [
            Check(
                "the sender does not stop when the receiver does: UDP has no flow control",
                {"sent_while_paused": sent_during, "paused_s": PAUSE_S},
                sent_during > 1000,
            ),
            Check(
                "datagrams that did not fit the receiver's buffer are lost",
                {"sent": summary["sent"], "received": summary["received"], "lost": lost},
                lost > 0,
            ),
            Check(
                "the kernel counted the same drops (/proc/net/udp, drops column)",
                {"lost": lost, "kernel_drops": drops},
                drops is not None and drops == lost,
            ),
        ]
