"""Write the pictures in screenshots/ from real runs (rich's own SVG export of the output).

    python screenshots/make.py

Each picture is a real session: real processes, real kernel objects, the figures of that run.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ipc_explorer.cli import print_summary, run_session  # noqa: E402
from ipc_explorer.engine import SessionConfig  # noqa: E402

RUNS = {
    "run-pipe-msgpack": SessionConfig(mechanism="pipe", format="msgpack", count=20000, size=64),
    "run-shm-json-ping-pong": SessionConfig(
        mechanism="shm", format="json", pattern="ping-pong", count=5000, size=256
    ),
    "run-udp-loss": SessionConfig(mechanism="udp", format="msgpack", count=50000, size=1000),
    "run-http-json": SessionConfig(
        mechanism="http", format="json", pattern="ping-pong", count=2000
    ),
}


def main() -> None:
    for name, config in RUNS.items():
        summary = asyncio.run(run_session(config))
        console = Console(record=True, width=100, file=open("/dev/null", "w"))
        console.print(
            f"$ ipc-explorer run -m {config.mechanism} -f {config.format} -p {config.pattern} "
            f"-n {config.count} -s {config.size}",
            highlight=False,
        )
        print_summary(summary, console)
        path = HERE / f"{name}.svg"
        console.save_svg(str(path), title="ipc-explorer")
        print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
