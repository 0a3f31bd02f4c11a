"""The serialization inspector: one message's bytes linked to its tree, the same value in
every format, and what changed since the message before.

Opened (key d) on the flow message selected in the main screen, or on anything pasted as hex
or named as a file in its input line.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from ipc_explorer.codecs import Span, codec_names
from ipc_explorer.inspector.annotated import AnnotatedMessage, payload_of
from ipc_explorer.inspector.compare import compare_formats
from ipc_explorer.inspector.decoder import Decoded, InputError, decode, read_input
from ipc_explorer.inspector.diff import diff_messages
from ipc_explorer.tui.bytes_view import BytesPanel

FORMATS = ["auto", *codec_names()]
BAR_WIDTH = 12


def annotated(result: Decoded) -> AnnotatedMessage:
    """A decoded input as the bytes panel draws it; undecoded bytes after an error in one span."""
    spans = list(result.spans)
    end = spans[-1].end if spans else 0
    if end < len(result.data):
        spans.append(Span(end, len(result.data), "$", "bytes", "undecoded"))
    error = None
    if result.error is not None:
        error = f"error at byte {result.error.offset}: {result.error.message}"
    return AnnotatedMessage(result.data, spans, 0, len(result.data), False, error)


def marked_diff_base(sample: dict[str, Any] | None, notify: Any) -> dict[str, Any] | None:
    """The message b marks as the diff base (said through ``notify``), or None: a message
    must be selected, and whole."""
    if sample is None or sample.get("truncated"):
        notify("select a message in the flow list first, then press b", severity="warning")
        return None
    notify(f"message {sample['seq']} is the diff base: select another, then press d")
    return sample


def inspector_for(
    recent: Iterable[dict[str, Any]],
    chosen: dict[str, Any] | None,
    diff_base: dict[str, Any] | None,
    mechanism: str,
    fmt: str,
) -> InspectorScreen:
    """The inspector on the chosen flow message (or the latest of ``recent``), compared with
    ``diff_base`` (marked with b), or else with the message before it."""
    payload, previous, framing, previous_name = b"", None, None, "the previous message"
    whole = [s for s in recent if not s.get("truncated")]
    chosen = chosen if chosen in whole else None
    chosen = chosen or (whole[-1] if whole else None)
    if chosen is not None:
        payload = payload_of(chosen)
        framing = (mechanism, chosen["framing_size"])
        if diff_base is not None and diff_base["seq"] != chosen["seq"]:
            previous = payload_of(diff_base)
            previous_name = f"message {diff_base['seq']} (marked with b)"
        else:
            older = [s for s in whole if s["seq"] < chosen["seq"]]
            if older:
                before = max(older, key=lambda s: s["seq"])
                previous = payload_of(before)
                previous_name = f"message {before['seq']}, the one before"
    return InspectorScreen(payload, fmt, previous, framing, previous_name)


class InspectorScreen(Screen):
    """Any bytes, annotated and linked; compared across formats and with another message."""

    CSS_PATH = "inspector.tcss"
    BINDINGS = [
        Binding("escape", "dismiss", "Back"),
        Binding("ctrl+f", "next_format", "Format"),
        Binding("ctrl+o", "focus_input", "Open / paste"),
    ]

    def __init__(
        self,
        payload: bytes = b"",
        fmt: str = "auto",
        previous: bytes | None = None,
        framing: tuple[str, int] | None = None,
        previous_name: str = "the previous message",
    ):
        """``framing``: the mechanism and framing bytes (length prefix, envelope, HTTP head) of
        the flow message the payload came from, so that the comparison counts them too."""
        super().__init__()
        self.payload = payload
        self.format = fmt
        self.previous = previous
        self.framing = framing
        self.previous_name = previous_name
        self.result: Decoded | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="paste hex (spaces, 0x allowed) or type a file path, then enter",
            id="inspect-input",
        )
        yield Static(id="inspect-status")
        yield BytesPanel(id="inspect-bytes")
        with Horizontal(id="inspect-bottom"):
            yield DataTable(id="inspect-compare", cursor_type="none", zebra_stripes=True)
            with VerticalScroll(id="inspect-diff-scroll"):
                yield Static(id="inspect-diff")

    def on_mount(self) -> None:
        self.query_one("#inspect-bytes").border_title = "Bytes"
        table = self.query_one("#inspect-compare", DataTable)
        table.border_title = "Same value, every format"
        columns = ["format", "bytes", "values", "keys", "tags/syntax", "enc µs", "dec µs"]
        if self.framing is not None:
            columns.insert(5, f"{self.framing[0]} framing")
        table.add_columns(*columns, "")
        self.query_one("#inspect-diff-scroll").border_title = f"Changes since {self.previous_name}"
        self.show()

    def show(self) -> None:
        self.result = result = decode(self.payload, self.format)
        self.sub_title = f"inspector · {len(self.payload):,} B · format {self.format}"
        status = Text()
        status.append(f"{result.format}", "bold")
        if result.reason:
            status.append(f" (auto: {result.reason})", "dim")
        if result.error is not None:
            status.append(
                f"  error at byte {result.error.offset}: {result.error.message}", "bold red"
            )
        status.append("   ctrl+f format · ctrl+o open or paste · esc back", "dim")
        self.query_one("#inspect-status", Static).update(status)
        self.query_one(BytesPanel).message = annotated(result) if self.payload else None
        self._fill_compare(result)
        self._fill_diff(result)

    def _fill_compare(self, result: Decoded) -> None:
        table = self.query_one("#inspect-compare", DataTable)
        table.clear()
        if result.error is not None or not self.payload:
            return
        rows = compare_formats(result.value)
        framing = self.framing[1] if self.framing is not None else 0
        largest = max((r.size + framing for r in rows), default=1) or 1
        for r in rows:
            if r.error:
                cells = ["-"] * (len(table.columns) - 2)
                table.add_row(r.format, *cells, Text(r.error[:40], "dim"))
                continue
            parts = [(r.value_bytes, "green"), (r.key_bytes, "bright_blue")]
            parts += [(r.syntax_bytes, "grey50"), (framing, "magenta")]
            bar = Text()
            for part, style in parts:
                bar.append("█" * round(part / largest * BAR_WIDTH), style)
            cells = [
                Text(r.format, "bold" if r.format == result.format else ""),
                f"{r.size:,}",
                f"{r.value_bytes:,}",
                f"{r.key_bytes:,}",
                f"{r.syntax_bytes:,}",
                f"{r.encode_us:,.1f}",
                f"{r.decode_us:,.1f}",
            ]
            if self.framing is not None:
                # exact for the message's own format; in another format an HTTP head differs
                # by a few bytes (Content-Type, the digits of Content-Length)
                exact = r.format == result.format
                cells.insert(5, f"{framing:,}" if exact else f"≈{framing:,}")
            table.add_row(*cells, bar)

    def _fill_diff(self, result: Decoded) -> None:
        out = self.query_one("#inspect-diff", Static)
        if self.previous is None:
            out.update(Text("no previous message to compare with", "dim"))
            return
        before = decode(self.previous, result.format)
        if before.error is not None or result.error is not None:
            out.update(Text("one of the two messages does not decode", "red"))
            return
        changes = diff_messages(before.value, before.spans, result.value, result.spans)
        text = Text(f"{len(changes)} change(s)\n", "bold")
        style = {"added": "green", "removed": "red", "changed": "yellow", "type changed": "magenta"}
        for c in changes[:200]:
            text.append(f"{c.kind:<12}", style[c.kind])
            text.append(f" {c.path}")
            if c.new_bytes:
                text.append(f"  bytes {c.new_bytes[0]}-{c.new_bytes[1] - 1}", "grey50")
            text.append("\n")
        out.update(text)

    def action_next_format(self) -> None:
        self.format = FORMATS[(FORMATS.index(self.format) + 1) % len(FORMATS)]
        self.show()

    def action_focus_input(self) -> None:
        self.query_one("#inspect-input", Input).focus()

    @on(Input.Submitted, "#inspect-input")
    def load(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        try:
            path = Path(text).expanduser()
            if path.is_file():
                with path.open("rb") as stream:
                    data = read_input(stream)
            else:
                data = read_input(io.BytesIO(text.encode()), hex_text=True)
        except (InputError, OSError) as exc:
            self.notify(f"{exc}", title="cannot read that", severity="error")
            return
        self.previous = self.payload or None
        self.previous_name = "the input before"
        self.query_one("#inspect-diff-scroll").border_title = f"Changes since {self.previous_name}"
        self.payload = data
        self.format = "auto"
        self.show()
