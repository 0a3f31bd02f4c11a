"""Write the pictures in screenshots/ from real runs: real processes, real kernel objects.

    python screenshots/make.py                      # every picture
    python screenshots/make.py app-80x24 help       # only these (names without .svg)

The app's pictures are Textual's own SVG screenshots of the running app (headless, 160x48
unless a picture says otherwise); the headless command's pictures are rich's SVG export of
its output.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ipc_explorer.cli.run import print_summary, run_session  # noqa: E402
from ipc_explorer.session import SessionConfig  # noqa: E402
from ipc_explorer.session.replay import Replay, read_session_recording  # noqa: E402
from ipc_explorer.teach.lessons import get_lesson  # noqa: E402
from ipc_explorer.tui.app import IpcExplorerApp  # noqa: E402
from ipc_explorer.tui.replay_app import ReplayApp  # noqa: E402

SIZE = (160, 48)
#: A small terminal, or a projector's large font: every panel in its compact form.
SMALL = (80, 24)
MEDIUM = (120, 36)

#: A picture's maker, given the picture's name.
Shot = Callable[[str], None]


async def app_shot(
    name: str,
    config: SessionConfig,
    keys: list[str],
    settle: float = 2.5,
    size: tuple[int, int] = SIZE,
    theme: str = "default",
    lesson: str | None = None,
) -> None:
    app = IpcExplorerApp(config, theme=theme, lesson=get_lesson(lesson) if lesson else None)
    async with app.run_test(size=size) as pilot:
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


def app(config: SessionConfig, keys: list[str] | None = None, **options) -> Shot:
    """The app on ``config`` after ``keys`` ('sleep:N' waits N seconds)."""
    return lambda name: asyncio.run(app_shot(name, config, keys or [], **options))


def run(config: SessionConfig) -> Shot:
    """`ipc-explorer run` and its summary."""

    def shoot(name: str) -> None:
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

    return shoot


def replay(config: SessionConfig, keys: list[str]) -> Shot:
    """`ipc-explorer replay` on a run of ``config`` recorded here, after ``keys``."""

    async def shoot(name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.ipcx"
            await run_session(config, record=str(path))
            app = ReplayApp(Replay(read_session_recording(path)), autoplay=False)
            async with app.run_test(size=MEDIUM) as pilot:
                for key in keys:
                    await pilot.press(key)
                await pilot.pause(0.5)
                app.save_screenshot(f"{name}.svg", str(HERE))
        print(f"wrote screenshots/{name}.svg")

    return lambda name: asyncio.run(shoot(name))


def decode_malformed(name: str) -> None:
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
    console.save_svg(str(HERE / f"{name}.svg"), title="ipc-explorer decode")
    print(f"wrote screenshots/{name}.svg")


# The bytes panel: focus the tree and walk down to the first key of the payload.
WALK = ["space", "tab", "tab", "tab", *["down"] * 9]
QUIET = SessionConfig(mechanism="pipe", format="msgpack", rate=10)
FULL_PIPE = SessionConfig(mechanism="pipe", format="msgpack", rate=None, size=512)
#: Into step mode, then build, serialize, send and "in the kernel".
STEP_TO_KERNEL = ["full_stop", "sleep:1.5", *["full_stop", "sleep:0.6"] * 4]

SHOTS: dict[str, Shot] = {
    "run-pipe-msgpack": run(
        SessionConfig(mechanism="pipe", format="msgpack", count=20000, size=64)
    ),
    "run-udp-loss": run(SessionConfig(mechanism="udp", format="msgpack", count=50000, size=1000)),
    "decode-malformed": decode_malformed,
    "app-pipe": app(SessionConfig(mechanism="pipe", format="msgpack", rate=1000)),
    "app-shm": app(SessionConfig(mechanism="shm", format="json", rate=1000)),
    "app-udp-receiver-paused": app(
        SessionConfig(mechanism="udp", format="msgpack", rate=10000, size=1024), ["p", "sleep:2"]
    ),
    "app-http": app(SessionConfig(mechanism="http", format="json", rate=1000)),
    # A private RabbitMQ node (a few seconds to start), then the consumer killed (k): the
    # broker redelivers what it had not acknowledged to the new one.
    "app-amqp": app(
        SessionConfig(mechanism="amqp", format="msgpack", rate=100),
        ["k", "sleep:3"],
        settle=12,
        size=MEDIUM,
    ),
    "bytes-msgpack": app(SessionConfig(mechanism="unix-stream", format="msgpack", rate=100), WALK),
    "bytes-http-json": app(SessionConfig(mechanism="http", format="json", rate=100), WALK),
    "inject": app(SessionConfig(mechanism="pipe", format="json", rate=100), ["i"]),
    "explain": app(SessionConfig(mechanism="shm", format="msgpack", rate=100), ["e"]),
    "help": app(SessionConfig(mechanism="pipe", format="msgpack", rate=100), ["question_mark"]),
    # Small, and projected: every panel in its compact form, then in the high-contrast theme.
    "app-80x24": app(SessionConfig(mechanism="pipe", format="msgpack", rate=1000), size=SMALL),
    "app-projector-80x24": app(
        SessionConfig(mechanism="pipe", format="msgpack", rate=1000), size=SMALL, theme="projector"
    ),
    "app-projector": app(
        SessionConfig(mechanism="shm", format="json", rate=1000), size=MEDIUM, theme="projector"
    ),
    # The contention lab (key c), one picture per scenario, each at its telling moment.
    "contend-counter": app(QUIET, ["c", "sleep:3"]),
    "contend-torn": app(QUIET, ["c", "2", "sleep:3"]),
    # the bounded buffer with its semaphores, the consumer paused: 'empty' at 0, producer waits
    "contend-buffer": app(QUIET, ["c", "3", "l", "sleep:1.5", "p", "sleep:1.5"]),
    "contend-deadlock": app(QUIET, ["c", "4", "sleep:2.5"]),
    # Teaching: step mode (.) stopped at "in the kernel", why blocked (w) on a full pipe, and a
    # lesson, each in both themes.
    "step-mode": app(QUIET, STEP_TO_KERNEL, size=MEDIUM),
    "step-mode-projector": app(QUIET, STEP_TO_KERNEL, size=MEDIUM, theme="projector"),
    "why-blocked": app(FULL_PIPE, ["p", "sleep:1.5", "w", "sleep:1.5"], size=MEDIUM),
    "why-blocked-projector": app(
        FULL_PIPE, ["p", "sleep:1.5", "w", "sleep:1.5"], size=MEDIUM, theme="projector"
    ),
    "lesson-full-pipe": app(
        get_lesson("full-pipe").session_config(), ["p", "sleep:1.5"], lesson="full-pipe"
    ),
    "lesson-full-pipe-projector-80x24": app(
        get_lesson("full-pipe").session_config(),
        ["p", "sleep:1.5", "a"],
        lesson="full-pipe",
        size=SMALL,
        theme="projector",
    ),
    # A recording replayed: a UDP run that dropped datagrams, stopped at its second anomaly.
    "replay-udp": replay(
        SessionConfig(mechanism="udp", format="msgpack", count=60000, size=512), ["n", "n"]
    ),
    # The inspector (key d) on a flow message: bytes and tree, every format, the diff.
    "inspector": app(SessionConfig(mechanism="unix-stream", format="msgpack", rate=100), ["d"]),
}


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in SHOTS]
    if unknown:
        print(f"unknown pictures: {', '.join(unknown)}; known: {', '.join(SHOTS)}")
        return 2
    if not names:  # every picture: none left over from an older set
        for old in HERE.glob("*.svg"):
            old.unlink()
    for name in names or SHOTS:
        SHOTS[name](name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
