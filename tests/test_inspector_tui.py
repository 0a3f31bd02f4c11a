"""The inspector screen, driven as a user would: on a flow message, on pasted hex, on a file."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
from textual.app import App
from textual.widgets import DataTable, Input, Static

from ipc_explorer.codecs import get_codec
from ipc_explorer.codecs.sample import sample_payload
from ipc_explorer.session import SessionConfig
from ipc_explorer.tui import app as app_module
from ipc_explorer.tui.app import IpcExplorerApp
from ipc_explorer.tui.bytes_view import BytesPanel
from ipc_explorer.tui.inspector_screen import InspectorScreen

from .test_tui import SIZE, diagram, text_of, until

pytestmark = pytest.mark.timeout(60)


class InspectorApp(App):
    """The inspector alone, styled as in the app (whose stylesheet sizes the bytes panel)."""

    CSS_PATH = str(Path(app_module.__file__).parent / "app.tcss")

    def __init__(self, screen: InspectorScreen):
        super().__init__()
        self.inspector = screen

    def on_mount(self) -> None:
        self.push_screen(self.inspector)


async def test_d_opens_the_inspector_on_a_flow_message_with_its_exact_bytes():
    app = IpcExplorerApp(SessionConfig(format="msgpack", rate=200))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "received 1" in diagram(app))
        await until(pilot, lambda: len(app.session.stats.recent) >= 2)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen))
        screen = app.screen
        payload = screen.payload
        assert payload and msgpack.unpackb(payload)["kind"] == "sample"  # the real bytes
        assert screen.query_one(BytesPanel).message.wire == payload
        compare = screen.query_one("#inspect-compare", DataTable)
        assert compare.row_count == 4  # json, xml, msgpack, struct
        assert "change(s)" in text_of(screen.query_one("#inspect-diff", Static))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, InspectorScreen))
        await app.action_quit()


async def test_pasted_hex_is_decoded_and_a_malformed_one_says_where():
    screen = InspectorScreen()
    async with InspectorApp(screen).run_test(size=SIZE) as pilot:
        field = screen.query_one("#inspect-input", Input)
        field.value = "82 a1 61 01 a1 62 c0"
        await pilot.press("enter")
        await until(pilot, lambda: screen.result is not None and screen.result.format == "msgpack")
        assert screen.result.ok and screen.result.value == {"a": 1, "b": None}
        field.value = "82 a1 61 01 a1"
        await pilot.press("enter")
        await until(pilot, lambda: screen.result.error is not None)
        status = text_of(screen.query_one("#inspect-status", Static))
        assert "error at byte 5" in status
        # the message before is the one pasted first: the diff says what was lost
        assert "one of the two messages does not decode" in text_of(
            screen.query_one("#inspect-diff", Static)
        )


async def test_a_file_path_opens_the_file_and_ctrl_f_changes_the_format(tmp_path):
    data = get_codec("json").encode(sample_payload(1, 8))
    path = tmp_path / "m.json"
    path.write_bytes(data)
    screen = InspectorScreen()
    async with InspectorApp(screen).run_test(size=SIZE) as pilot:
        screen.query_one("#inspect-input", Input).value = str(path)
        await pilot.press("enter")
        await until(pilot, lambda: screen.result is not None and screen.result.format == "json")
        assert screen.payload == data
        await pilot.press("ctrl+f")  # auto -> json
        await pilot.press("ctrl+f")  # json -> xml: the JSON bytes are not XML
        await until(pilot, lambda: screen.format == "xml")
        assert screen.result.error is not None


def test_the_inspector_on_a_message(snap_compare):
    codec = get_codec("msgpack")
    screen = InspectorScreen(
        codec.encode(sample_payload(2, 16)), "msgpack", codec.encode(sample_payload(1, 16))
    )

    async def hide_timings(pilot) -> None:
        # encode/decode times differ from run to run: blank them for a stable picture
        table = screen.query_one("#inspect-compare", DataTable)
        for row in range(table.row_count):
            table.update_cell_at((row, 5), "-")
            table.update_cell_at((row, 6), "-")
        await pilot.pause()

    assert snap_compare(InspectorApp(screen), terminal_size=SIZE, run_before=hide_timings)


async def test_b_marks_a_diff_base_and_d_compares_the_selected_message_with_it():
    app = IpcExplorerApp(SessionConfig(format="json", rate=200))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.session.stats.recent) >= 3)
        recent = list(app.session.stats.recent)
        app._chosen_sample = recent[0]
        await pilot.press("b")
        app._chosen_sample = recent[-1]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen))
        screen = app.screen
        base = recent[0]
        assert screen.previous == base["wire"][base["framing_size"] :]
        assert f"message {base['seq']}" in str(
            screen.query_one("#inspect-diff-scroll").border_title
        )
        assert "$.id" in text_of(screen.query_one("#inspect-diff", Static))
        await pilot.press("escape")
        await app.action_quit()
