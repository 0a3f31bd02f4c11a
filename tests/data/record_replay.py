"""Record one real UDP run that drops datagrams, for the replay screen's snapshot test.

    python tests/data/record_replay.py

Writes tests/data/udp-replay.ipcx (a recording as `run --record` makes it).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from ipc_explorer.cli.run import run_session  # noqa: E402
from ipc_explorer.session import SessionConfig  # noqa: E402

CONFIG = SessionConfig(mechanism="udp", format="json", count=20000, size=200)

if __name__ == "__main__":
    summary = asyncio.run(run_session(CONFIG, record=str(HERE / "udp-replay.ipcx")))
    print(f"sent {summary['sent']}, lost {summary['lost']}")
