"""Snapshots of the app's screens, drawn from the recorded telemetry of a real session.

The data is a real shm + JSON session (tests/data/record_session.py wrote it); drawing it with
no live children and no refresh timer makes every picture the same from run to run.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest

from ipc_explorer.session import Session, SessionConfig
from ipc_explorer.session.replay import Replay, read_session_recording
from ipc_explorer.teach.lessons import get_lesson
from ipc_explorer.teach.step import report_from_json
from ipc_explorer.teach.why import diagnosis_from_json
from ipc_explorer.tui.app import IpcExplorerApp
from ipc_explorer.tui.replay_app import ReplayApp
from ipc_explorer.tui.step_bar import StepBar
from ipc_explorer.tui.why_screen import WhyScreen

pytestmark = pytest.mark.timeout(60)

DATA = Path(__file__).parent / "data" / "shm-json-session.msgpack"
SIZE = (140, 44)


def recorded_app(theme: str = "default") -> IpcExplorerApp:
    config = SessionConfig(mechanism="shm", format="json", rate=2000, size=48)
    app = IpcExplorerApp(config, live=False, theme=theme)
    records = msgpack.unpackb(DATA.read_bytes(), raw=False, strict_map_key=False)
    running = [r for r in records if r["state"] not in ("done", "stopped")]
    session = Session(config)
    for record in running:
        session.stats.apply(record)
    app.session = session
    return app


async def show(pilot) -> None:
    pilot.app.refresh_panels()
    await pilot.pause()


def test_main_screen(snap_compare):
    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=show)


def test_main_screen_at_80x24(snap_compare):
    """Every panel in its compact form: short box titles, the timing table, a few rows of
    the list, the semaphores on one line, hex and tree side by side."""
    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=show)


def test_projector_theme_at_80x24(snap_compare):
    assert snap_compare(recorded_app("projector"), terminal_size=(80, 24), run_before=show)


def test_projector_theme_at_120x36(snap_compare):
    assert snap_compare(recorded_app("projector"), terminal_size=(120, 36), run_before=show)


def test_bytes_panel_with_a_key_highlighted(snap_compare):
    async def walk_the_tree(pilot) -> None:
        await show(pilot)
        pilot.app.query_one("#decoded").focus()
        for _ in range(12):
            await pilot.press("down")
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=walk_the_tree)


def test_inject_dialog(snap_compare):
    async def open_inject(pilot) -> None:
        await show(pilot)
        pilot.app.push_screen(
            __import__("ipc_explorer.tui.dialogs", fromlist=["InjectScreen"]).InjectScreen(
                '{"hello": ', lambda value: None
            )
        )
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=open_inject)


def test_help_screen(snap_compare):
    assert snap_compare(
        recorded_app(), terminal_size=SIZE, press=["question_mark"], run_before=show
    )


def test_explain_screen(snap_compare):
    assert snap_compare(recorded_app(), terminal_size=SIZE, press=["e"], run_before=show)


async def test_moving_in_the_hex_selects_the_tree_node_and_back():
    """The two views are linked both ways (drawn from the recorded session: no children)."""
    from textual.widgets import Tree

    from ipc_explorer.tui.bytes_view import BytesPanel, HexView

    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await show(pilot)
        message = app.query_one(BytesPanel).message
        assert message is not None
        hexview, tree = app.query_one(HexView), app.query_one(Tree)
        hexview.focus()
        # into the payload (the first key's bytes): a line down at a time, then byte by byte
        lines, column = divmod(message.framing_size + 3, hexview.bytes_per_line)
        await pilot.press(*["down"] * lines, *["right"] * column)
        await pilot.pause()
        span = tree.cursor_node.data
        assert span.start <= hexview.cursor < span.end
        assert span.path == "$.id"
        tree.focus()
        await pilot.press("down")
        await pilot.pause()
        following = tree.cursor_node.data
        assert hexview.highlight == (following.start, following.end)


TEACH = json.loads((Path(__file__).parent / "data" / "pipe-teach.json").read_text())


def test_step_bar_at_the_kernel_stage(snap_compare):
    """The bar as step mode drew it at "in the kernel" (tests/data/record_teach.py)."""

    async def at_the_kernel(pilot) -> None:
        await show(pilot)
        report = report_from_json(TEACH["stages"][3])
        bar = pilot.app.query_one(StepBar)
        bar.add_class("-shown")
        bar.report = report
        pilot.app.post_message(StepBar.StageDone(report))
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=at_the_kernel)


def test_why_screen_on_a_full_pipe(snap_compare):
    async def why(pilot) -> None:
        await show(pilot)
        diagnoses = [diagnosis_from_json(d) for d in TEACH["why"]]
        pilot.app.push_screen(WhyScreen(lambda: diagnoses))
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=why)


def lesson_app(theme: str = "default") -> IpcExplorerApp:
    app = recorded_app(theme)
    app.lesson = get_lesson("full-pipe")
    return app


def test_a_lesson_beside_the_panels(snap_compare):
    assert snap_compare(lesson_app(), terminal_size=SIZE, run_before=show)


def test_a_lesson_on_a_projector_at_80x24_with_its_answer(snap_compare):
    assert snap_compare(
        lesson_app("projector"), terminal_size=(80, 24), press=["a"], run_before=show
    )


REPLAY = Path(__file__).parent / "data" / "udp-replay.ipcx"


def replay_app(theme: str = "default") -> ReplayApp:
    """A real UDP run that dropped datagrams (tests/data/record_replay.py recorded it)."""
    return ReplayApp(Replay(read_session_recording(REPLAY)), theme=theme, autoplay=False)


def test_replay_at_the_first_anomaly(snap_compare):
    """The timeline under the panels: paused at the first loss, marks at every anomaly."""
    assert snap_compare(replay_app(), terminal_size=SIZE, press=["n"])


def test_replay_on_a_projector_at_80x24(snap_compare):
    assert snap_compare(replay_app("projector"), terminal_size=(80, 24), press=["end"])
