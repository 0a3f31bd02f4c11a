"""Record what step mode and why-blocked said on one real pipe session, for the snapshot tests
of the step bar and the why screen (their live figures hold pids and fds, which change).

    python tests/data/record_teach.py

Writes tests/data/pipe-teach.json: the stage reports of one message, then the two children's
diagnoses with the receiver paused and the pipe full.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from ipc_explorer.session import Session, SessionConfig  # noqa: E402
from ipc_explorer.teach.lessons.base import writer_stalls  # noqa: E402
from ipc_explorer.teach.step import Stepper  # noqa: E402
from ipc_explorer.teach.why import session_diagnoses  # noqa: E402


async def record() -> dict:
    session = Session(SessionConfig(mechanism="pipe", format="msgpack", count=None, rate=50))
    await session.start()
    try:
        await asyncio.sleep(0.5)
        stepper = Stepper(session)
        await stepper.enter()
        stages = [report.as_json() for report in await stepper.one_message()]
        await stepper.leave()
        stepper.close()
        session.set_rate(None)
        session.pause("receiver")
        await writer_stalls(session)
        why = [d.as_json() for d in session_diagnoses(session)]
    finally:
        await session.stop(drain=False)
    return {"stages": stages, "why": why}


if __name__ == "__main__":
    data = asyncio.run(record())
    (HERE / "pipe-teach.json").write_text(json.dumps(data, indent=1) + "\n")
    stages, why = len(data["stages"]), len(data["why"])
    print(f"wrote tests/data/pipe-teach.json: {stages} stages, {why} diagnoses")
