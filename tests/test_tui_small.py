"""The app at 80x24 and in the projector theme, driven as a user would (Textual's Pilot),
with real children: what a reader of a small or projected screen would notice."""

from __future__ import annotations

import re
from typing import Any

import pytest
from textual.widgets import DataTable, Tree
from textual.widgets._header import HeaderTitle

from ipc_explorer.session import SessionConfig
from ipc_explorer.tui.app import IpcExplorerApp
from ipc_explorer.tui.live_text import LiveText

from .conftest import run_cli
from .test_tui import until

pytestmark = pytest.mark.timeout(60)

SMALL = (80, 24)


def screen_lines(app: IpcExplorerApp) -> list[str]:
    """The screen as the terminal shows it, one string per line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def flowing(app: IpcExplorerApp, count: int = 20) -> Any:
    return lambda: app.session and app.session.stats.receiver.count("received") > count


async def test_80x24_box_titles_are_whole_words():
    app = IpcExplorerApp(SessionConfig(mechanism="pipe", rate=200))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, flowing(app))
        await pilot.pause(0.3)
        titles = [
            app.query_one(f"#{box}-box").border_title for box in ("sender", "channel", "receiver")
        ]
        assert titles == ["sender", "pipe", "receiver"]
        lines = screen_lines(app)
        assert any(re.search(r"─ sender ─.*─ pipe ─.*─ receiver ─", line) for line in lines)
        assert not any("…" in line for line in lines), "something on screen was cut short"
        assert any("pipe fd " in line for line in lines), "the channel box names the pipe"
        await app.action_quit()


async def test_80x24_timing_keeps_each_label_beside_its_value():
    app = IpcExplorerApp(SessionConfig(mechanism="pipe", rate=200))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, flowing(app, 50))
        await pilot.pause(0.3)
        lines = screen_lines(app)
        for label in ("p50", "p90", "p99", "max"):
            assert any(re.search(rf"\b{label} +[\d,.]+", line) for line in lines), label
        assert any(re.search(r"[\d,]+ msgs/s", line) for line in lines)
        await app.action_quit()


async def test_80x24_message_list_shows_rows_once_messages_flow():
    app = IpcExplorerApp(SessionConfig(mechanism="pipe", rate=200))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, flowing(app))
        table = app.query_one("#messages", DataTable)
        await until(pilot, lambda: table.get_row_at(table.row_count - 1)[0] != "")
        await pilot.pause(0.3)
        seqs = [
            str(table.get_row_at(row)[0]) for row in range(table.row_count - 3, table.row_count)
        ]
        lines = screen_lines(app)
        for seq in seqs:  # the three latest rows are on screen, each with its latency
            assert any(re.match(rf"│ {seq} +[\d,]+ +[\d,]+ +[\d,.]+ ", line) for line in lines), seq
        await app.action_quit()


async def test_80x24_bytes_panel_shows_hex_and_tree_side_by_side():
    app = IpcExplorerApp(SessionConfig(mechanism="pipe", rate=200))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, flowing(app))
        tree = app.query_one(Tree)
        await until(pilot, lambda: len(tree.root.children) == 2)
        await pilot.pause(0.3)
        lines = screen_lines(app)
        assert any(re.search(r"0000  (?:[0-9a-f]{2} ){8}.*▼ message", line) for line in lines)
        assert any(re.search(r"0008  .*▼ framing", line) for line in lines)
        assert any(re.search(r"length u32 \d+", line) for line in lines), "a tree leaf is shown"
        await app.action_quit()


async def test_80x24_sync_line_shows_each_semaphore_value():
    app = IpcExplorerApp(SessionConfig(mechanism="shm", rate=200))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, flowing(app))
        await pilot.pause(0.3)
        sync = next(line for line in screen_lines(app) if line.lstrip().startswith("Sync"))
        for name in ("empty", "full", "mutex"):
            assert re.search(rf"\b{name} \d+", sync), (name, sync)
        await app.action_quit()


def styles_shown(app: IpcExplorerApp) -> list[str]:
    """Every style the panels' own text uses (the boxes, figures, sync line)."""
    styles = []
    for widget in app.query(LiveText):
        content = widget._shown
        if content is not None and not isinstance(content, str):
            styles += [str(span.style) for span in content.spans]
    return styles


async def test_projector_key_switches_theme_and_drops_grey_text():
    app = IpcExplorerApp(SessionConfig(mechanism="udp", rate=200))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, flowing(app))
        await pilot.pause(0.3)
        assert any("grey" in style for style in styles_shown(app)), "default labels are grey"
        await pilot.press("T")
        await pilot.pause(0.3)
        assert app.theme == "projector"
        shown = styles_shown(app)
        assert not any("grey" in style or "dim" in style for style in shown), shown
        sent = app.query_one("#sender-box", LiveText)._shown
        assert any("bold" in str(s.style) and "#ffff00" in str(s.style) for s in sent.spans)
        header = app.query_one(HeaderTitle).content  # the mechanism and rate, not dimmed
        assert "udp" in header.plain and not header.spans
        await pilot.press("T")
        await pilot.pause(0.3)
        assert app.theme == "textual-dark"
        await app.action_quit()


async def test_projector_theme_from_the_constructor():
    app = IpcExplorerApp(SessionConfig(mechanism="pipe", rate=100), theme="projector")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, flowing(app, 5))
        await pilot.pause(0.3)
        assert app.theme == "projector"
        assert app.current_theme.background == "#000000"
        await app.action_quit()


def test_unknown_theme_is_a_one_line_usage_error():
    result = run_cli("--theme", "sepia")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown theme 'sepia'" in result.stderr and "projector" in result.stderr


async def test_help_lists_the_projector_key():
    app = IpcExplorerApp(SessionConfig(), live=False)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert "| `T` | Projector theme |" in app.screen._markdown
