"""Write the pictures in screenshots/ from real runs: real processes, real kernel objects.

    python screenshots/make.py

The app's pictures are Textual's own SVG screenshots of the running app (headless, 160x48);
the headless command's pictures are rich's SVG export of its output.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ipc_explorer.cli.run import print_summary, run_session  # noqa: E402
from ipc_explorer.session import SessionConfig  # noqa: E402
from ipc_explorer.tui.app import IpcExplorerApp  # noqa: E402

SIZE = (160, 48)

RUNS = {
    "run-pipe-msgpack": SessionConfig(mechanism="pipe", format="msgpack", count=20000, size=64),
    "run-udp-loss": SessionConfig(mechanism="udp", format="msgpack", count=50000, size=1000),
}


async def app_shot(name: str, config: SessionConfig, keys: list[str], settle: float = 2.5) -> None:
    app = IpcExplorerApp(config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(settle)
        for key in keys:
            if key.startswith("sleep:"):
                await pilot.pause(float(key[6:]))
            else:
                await pilot.press(key)
                await pilot.pause(0.3)
        app.save_screenshot(f"{name}.svg", str(HERE))
        await app.action_quit()
    print(f"wrote screenshots/{name}.svg")


async def app_shots() -> None:
    await app_shot("app-pipe", SessionConfig(mechanism="pipe", format="msgpack", rate=1000), [])
    await app_shot("app-shm", SessionConfig(mechanism="shm", format="json", rate=1000), [])
    await app_shot(
        "app-udp-receiver-paused",
        SessionConfig(mechanism="udp", format="msgpack", rate=10000, size=1024),
        ["p", "sleep:2"],
    )
    await app_shot("app-http", SessionConfig(mechanism="http", format="json", rate=1000), [])
    # The bytes panel: focus the tree and walk down to the first key of the payload.
    walk = ["space", "tab", "tab", "tab", *["down"] * 9]
    await app_shot(
        "bytes-msgpack", SessionConfig(mechanism="unix-stream", format="msgpack", rate=100), walk
    )
    await app_shot(
        "bytes-http-json", SessionConfig(mechanism="http", format="json", rate=100), walk
    )
    await app_shot("inject", SessionConfig(mechanism="pipe", format="json", rate=100), ["i"])
    await app_shot("explain", SessionConfig(mechanism="shm", format="msgpack", rate=100), ["e"])
    await app_shot(
        "help", SessionConfig(mechanism="pipe", format="msgpack", rate=100), ["question_mark"]
    )


async def lab_shots() -> None:
    """The contention lab (key c), one picture per scenario, each at its telling moment."""
    quiet = SessionConfig(mechanism="pipe", format="msgpack", rate=10)
    await app_shot("contend-counter", quiet, ["c", "sleep:3"])
    await app_shot("contend-torn", quiet, ["c", "2", "sleep:3"])
    # the bounded buffer with its semaphores, the consumer paused: 'empty' at 0, producer waits
    await app_shot("contend-buffer", quiet, ["c", "3", "l", "sleep:1.5", "p", "sleep:1.5"])
    await app_shot("contend-deadlock", quiet, ["c", "4", "sleep:2.5"])


async def inspector_shots() -> None:
    """The inspector (key d) on a flow message: bytes and tree, every format, the diff."""
    await app_shot(
        "inspector", SessionConfig(mechanism="unix-stream", format="msgpack", rate=100), ["d"]
    )


def decode_shot() -> None:
    """`ipc-explorer decode` on a MessagePack message cut short: the partial tree, then the
    error at its byte offset."""
    import msgpack

    from ipc_explorer.cli.decode import print_decoded
    from ipc_explorer.codecs.sample import sample_payload
    from ipc_explorer.inspector.decoder import decode

    data = msgpack.packb(sample_payload(3, 8))[:30]
    console = Console(record=True, width=100, file=open("/dev/null", "w"))
    console.print("$ ipc-explorer decode cut.msgpack --format msgpack", highlight=False)
    print_decoded(decode(data, "msgpack"), console)
    console.save_svg(str(HERE / "decode-malformed.svg"), title="ipc-explorer decode")
    print("wrote screenshots/decode-malformed.svg")


def run_shots() -> None:
    for name, config in RUNS.items():
        summary = asyncio.run(run_session(config))
        console = Console(record=True, width=100, file=open("/dev/null", "w"))
        console.print(
            f"$ ipc-explorer run -m {config.mechanism} -f {config.format} -p {config.pattern} "
            f"-n {config.count} -s {config.size}",
            highlight=False,
        )
        print_summary(summary, console)
        console.save_svg(str(HERE / f"{name}.svg"), title="ipc-explorer run")
        print(f"wrote screenshots/{name}.svg")


def main() -> None:
    for old in HERE.glob("*.svg"):
        old.unlink()
    run_shots()
    decode_shot()
    asyncio.run(app_shots())
    asyncio.run(lab_shots())
    asyncio.run(inspector_shots())


if __name__ == "__main__":
    main()
