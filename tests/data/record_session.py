"""Record the telemetry of one real session, for the app's snapshot tests (seeded data).

    python tests/data/record_session.py

Writes tests/data/shm-json-session.msgpack: the records the children sent, in order.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from ipc_explorer.session import Session, SessionConfig  # noqa: E402
from ipc_explorer.session.stats import SessionStats  # noqa: E402

CONFIG = SessionConfig(
    mechanism="shm", format="json", pattern="stream", count=3000, size=48, rate=2000
)


async def record() -> list[dict]:
    records: list[dict] = []
    original = SessionStats.apply

    def keep(self: SessionStats, record: dict) -> None:
        records.append(record)
        original(self, record)

    SessionStats.apply = keep  # type: ignore[method-assign]
    try:
        session = Session(CONFIG)
        await session.start()
        await session.run_to_completion()
    finally:
        SessionStats.apply = original  # type: ignore[method-assign]
    return records


if __name__ == "__main__":
    records = asyncio.run(record())
    (HERE / "shm-json-session.msgpack").write_bytes(msgpack.packb(records, use_bin_type=True))
    print(f"{len(records)} records")
