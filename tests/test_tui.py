"""The app driven as a user would (Textual's Pilot), with real children and kernel objects."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import posix_ipc
import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, OptionList, Static, Tree

from ipc_explorer.codecs import get_codec
from ipc_explorer.session import SessionConfig
from ipc_explorer.transports import MECHANISMS
from ipc_explorer.tui.app import IpcExplorerApp
from ipc_explorer.tui.bytes_view import BytesPanel
from ipc_explorer.tui.dialogs import InjectScreen

pytestmark = pytest.mark.timeout(60)

SIZE = (120, 36)


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(widget.content)
    return console.file.getvalue()


def diagram(app: IpcExplorerApp) -> str:
    """The sender, channel and receiver boxes, as text."""
    return "\n".join(
        text_of(app.query_one(f"#{box}-box", Static)) for box in ("sender", "channel", "receiver")
    )


def notifications(app: IpcExplorerApp) -> str:
    return "\n".join(f"{n.title} {n.message}" for n in app._notifications)


async def until(pilot: Any, predicate: Any, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the app did not get there in time"
        await pilot.pause(0.05)


async def test_messages_flow_within_a_second_with_nothing_to_configure():
    app = IpcExplorerApp(SessionConfig(rate=200))
    async with app.run_test(size=SIZE) as pilot:
        started = time.monotonic()
        await until(pilot, lambda: "received 1" in diagram(app))
        assert time.monotonic() - started < 2.0
        assert app.query_one("#messages", DataTable).row_count > 0
        assert "pipe fd" in diagram(app)
        await app.action_quit()


async def test_switching_mechanism_restarts_the_children_on_it():
    app = IpcExplorerApp(SessionConfig(rate=200))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session and app.session.stats.receiver.count("received") > 5)
        old_pids = (app.session.stats.sender.pid, app.session.stats.receiver.pid)
        await pilot.press("m")
        await until(pilot, lambda: bool(app.screen.query(OptionList)))
        for _ in range(MECHANISMS.index("udp")):
            await pilot.press("down")
        await pilot.press("enter")
        await until(pilot, lambda: "(UDP)" in diagram(app))
        await until(pilot, lambda: app.session.stats.receiver.count("received") > 5)
        assert (app.session.stats.sender.pid, app.session.stats.receiver.pid) != old_pids
        assert "udp" in app.sub_title
        await app.action_quit()


async def test_injected_payload_is_shown_byte_for_byte():
    app = IpcExplorerApp(SessionConfig(mechanism="unix-stream", format="msgpack", rate=50))
    payload = {"hello": "ipc", "n": [1, 2, 300]}
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session and app.session.stats.receiver.count("received") > 3)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        app.screen.query_one(Input).value = '{"hello": "ipc", "n": [1, 2, 300]}'
        await pilot.press("enter")
        expected = get_codec("msgpack").encode(payload)
        bytes_panel = app.query_one(BytesPanel)
        await until(
            pilot,
            lambda: bytes_panel.message is not None and bytes_panel.message.wire.endswith(expected),
        )
        message = bytes_panel.message
        assert message.payload_size == len(expected) and message.framing_size == 28
        labels = [str(node.label) for node in app.query_one(Tree).root.children[1].children]
        assert any("hello" in label for label in labels)
        await app.action_quit()


async def test_invalid_inject_shows_an_error_and_sends_nothing():
    app = IpcExplorerApp(SessionConfig(rate=50))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session and app.session.stats.receiver.count("received") > 3)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        app.screen.query_one(Input).value = '{"hello": '
        await pilot.pause(0.1)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, InjectScreen), "an invalid payload must not close the editor"
        assert "invalid JSON" in text_of(app.screen.query_one("#inject-error", Static))
        await pilot.press("escape")
        await pilot.pause(0.5)
        assert app.session.stats.sender.count("injected") == 0
        await app.action_quit()


async def test_paused_receiver_shows_the_blocked_writer():
    app = IpcExplorerApp(SessionConfig(mechanism="pipe", rate=None, size=1024))
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot, lambda: app.session and app.session.stats.receiver.count("received") > 100
        )
        await pilot.press("p")
        await until(
            pilot, lambda: "sender blocked in send" in text_of(app.query_one("#blocked", Static))
        )
        assert "65,536 B buffer full" in text_of(app.query_one("#blocked", Static))
        assert "paused" in diagram(app)
        await app.action_quit()


async def test_killed_receiver_shows_the_senders_epipe_and_can_restart():
    app = IpcExplorerApp(SessionConfig(mechanism="pipe", rate=500))
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot, lambda: app.session and app.session.stats.receiver.count("received") > 10
        )
        await pilot.press("k")
        await until(pilot, lambda: "EPIPE" in notifications(app))
        await until(pilot, lambda: "killed" in diagram(app))
        await pilot.press("r")
        await until(pilot, lambda: app.session.stats.receiver.count("received") > 10)
        await app.action_quit()


async def test_quit_leaves_no_process_and_no_kernel_object():
    app = IpcExplorerApp(SessionConfig(mechanism="shm", rate=500))
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot, lambda: app.session and app.session.stats.receiver.count("received") > 10
        )
        names = app.session.plan.names["forward"]
        await pilot.press("q")
        await pilot.pause(0.2)
    for proc in app.session._procs.values():
        assert proc.returncode is not None
    with pytest.raises(posix_ipc.ExistentialError):
        posix_ipc.SharedMemory(names["shm"])
    for key in ("empty", "full", "mutex"):
        with pytest.raises(posix_ipc.ExistentialError):
            posix_ipc.Semaphore(names[key])
    await asyncio.sleep(0)
