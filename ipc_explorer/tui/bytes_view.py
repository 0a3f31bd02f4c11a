"""The bytes panel: a message's wire bytes as annotated hex, linked both ways with its decoded
tree. Moving in the tree highlights the bytes of the node; moving in the hex selects the node."""

from __future__ import annotations

import re

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from ipc_explorer.codecs import Span
from ipc_explorer.inspector.annotated import AnnotatedMessage
from ipc_explorer.tui.themes import Palette, palette_for

BYTES_PER_LINE = 16
#: A narrow panel's hex lines: half as long, so that the tree keeps room beside them.
NARROW_BYTES_PER_LINE = 8
HEX_START = 6  # "0000  "
#: Hex shown for the first bytes only: a 16 MiB message is not drawn whole.
MAX_HEX_BYTES = 8192
#: Under this many columns (80x24 gives 80) the hex shows 8 bytes a line and the tree its
#: nodes without their offsets (the hex shows those when a node is selected).
NARROW_BELOW = 110

_PATH_PART = re.compile(r'\.[^.\[]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\]')


def path_parts(path: str) -> list[str]:
    """'$.items[2].name' -> ['$', '.items', '[2]', '.name']; framing paths -> their words."""
    if not path.startswith("$"):
        return path.split(".")
    return ["$", *_PATH_PART.findall(path[1:])]


class HexView(Widget, can_focus=True):
    """Hex dump with offsets and ASCII, coloured by span kind, with a byte cursor."""

    BINDINGS = [
        Binding("left", "move(-1)", "byte left", show=False),
        Binding("right", "move(1)", "byte right", show=False),
        Binding("up", "move_lines(-1)", "line up", show=False),
        Binding("down", "move_lines(1)", "line down", show=False),
        Binding("home", "move_to(0)", "first byte", show=False),
    ]

    message: reactive[AnnotatedMessage | None] = reactive(None, layout=True)
    cursor: reactive[int] = reactive(0)
    highlight: reactive[tuple[int, int] | None] = reactive(None)
    bytes_per_line: reactive[int] = reactive(BYTES_PER_LINE, layout=True)

    class ByteSelected(Message):
        def __init__(self, offset: int) -> None:
            super().__init__()
            self.offset = offset

    def action_move(self, delta: int) -> None:
        if self.message is None:
            return
        last = min(len(self.message.wire), MAX_HEX_BYTES) - 1
        self.cursor = max(0, min(last, self.cursor + delta))
        self.post_message(self.ByteSelected(self.cursor))

    def action_move_lines(self, lines: int) -> None:
        self.action_move(lines * self.bytes_per_line)

    def action_move_to(self, offset: int) -> None:
        self.cursor = 0
        self.action_move(offset)

    def on_click(self, event: events.Click) -> None:
        """A click on a byte, in the hex or in the ASCII column, selects it."""
        if self.message is None or event.x < HEX_START:
            return
        per_line = self.bytes_per_line
        ascii_start = HEX_START + 3 * per_line + 1
        if event.x >= ascii_start:
            column = min(event.x - ascii_start, per_line - 1)
        else:
            column = min((event.x - HEX_START) // 3, per_line - 1)
        index = event.y * per_line + column
        if index < min(len(self.message.wire), MAX_HEX_BYTES):
            self.cursor = index
            self.post_message(self.ByteSelected(index))

    def get_content_height(self, container, viewport, width) -> int:  # type: ignore[no-untyped-def]
        if self.message is None:
            return 1
        shown = min(len(self.message.wire), MAX_HEX_BYTES)
        lines = -(-shown // self.bytes_per_line)
        return max(1, lines) + (1 if len(self.message.wire) > shown else 0)

    def render(self) -> Text:
        message = self.message
        palette = palette_for(self.app.theme)
        if message is None:
            return Text("select a message in the flow list", style=palette.hint)
        per_line = self.bytes_per_line
        styles = [""] * min(len(message.wire), MAX_HEX_BYTES)
        for span in message.spans:
            style = palette.spans.get(span.kind, "")
            for i in range(span.start, min(span.end, len(styles))):
                styles[i] = style
        lo, hi = self.highlight or (-1, -1)
        text = Text(no_wrap=True, overflow="crop")
        for line_start in range(0, len(styles), per_line):
            chunk = message.wire[line_start : line_start + per_line]
            text.append(f"{line_start:04x}  ", style=palette.quiet)
            for i, byte in enumerate(chunk):
                offset = line_start + i
                style = styles[offset]
                if lo <= offset < hi:
                    style += " reverse"
                if offset == self.cursor and self.has_focus:
                    style += " underline bold"
                text.append(f"{byte:02x}", style=style)
                text.append(" ")
            text.append("   " * (per_line - len(chunk)))
            text.append(" ")
            for i, byte in enumerate(chunk):
                offset = line_start + i
                style = styles[offset] + (" reverse" if lo <= offset < hi else "")
                text.append(chr(byte) if 32 <= byte < 127 else ".", style=style)
            text.append("\n")
        if len(message.wire) > len(styles):
            text.append(f"... {len(message.wire) - len(styles):,} more bytes", style=palette.hint)
        return text


class BytesPanel(Vertical):
    """Size line, hex dump and decoded tree of the selected message."""

    message: reactive[AnnotatedMessage | None] = reactive(None)
    narrow: reactive[bool] = reactive(False, toggle_class="-narrow")

    def compose(self) -> ComposeResult:
        yield Static("no message selected", id="bytes-size")
        with Horizontal(id="bytes-body"):
            with VerticalScroll(id="hex-scroll"):
                yield HexView(id="hex")
            yield Tree("message", id="decoded")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def on_resize(self, event: events.Resize) -> None:
        self.narrow = event.size.width < NARROW_BELOW

    def watch_narrow(self, narrow: bool) -> None:
        self.query_one(HexView).bytes_per_line = NARROW_BYTES_PER_LINE if narrow else BYTES_PER_LINE
        self._restyle()

    @property
    def palette(self) -> Palette:
        return palette_for(self.app.theme)

    def _restyle(self) -> None:
        """The same message drawn again in the current theme and width: the tree keeps its
        open nodes and its cursor."""
        self.query_one(HexView).refresh()
        if self.message is not None:
            self.query_one("#bytes-size", Static).update(self._size_line(self.message))
        for span, node in getattr(self, "_node_of", {}).items():
            node.set_label(self._label(span))

    def _size_line(self, message: AnnotatedMessage) -> Text:
        palette = self.palette
        line = Text()
        line.append(f"{message.payload_size:,} B payload", style=palette.payload)
        line.append(" + ")
        line.append(f"{message.framing_size:,} B framing", style=palette.framing)
        line.append(f" = {len(message.wire):,} B on the wire  ")
        line.append(f"overhead {message.overhead_percent:.1f}%", style=palette.number)
        if message.error:
            line.append(f"  {message.error}", style=palette.bad)
        return line

    def _label(self, span: Span) -> Text:
        """A tree node's label: its bytes' offsets (not in a narrow panel) and what they are."""
        palette = self.palette
        label = Text()
        if not self.narrow:
            label.append(f"{span.start:#06x}-{span.end - 1:#06x} ", style=palette.quiet)
        label.append(span.label, style=palette.spans.get(span.kind, ""))
        return label

    def watch_message(self, message: AnnotatedMessage | None) -> None:
        hexview = self.query_one(HexView)
        tree: Tree[Span] = self.query_one(Tree)
        size_line = self.query_one("#bytes-size", Static)
        hexview.message = message
        hexview.highlight = None
        hexview.cursor = 0
        tree.clear()
        self._node_of: dict[Span, TreeNode[Span]] = {}
        if message is None:
            size_line.update("no message selected")
            return
        size_line.update(self._size_line(message))
        self._build_tree(tree, message)

    def _build_tree(self, tree: Tree[Span], message: AnnotatedMessage) -> None:
        tree.root.expand()
        containers: dict[tuple[str, ...], TreeNode[Span]] = {}
        framing = tree.root.add("framing", expand=True)
        payload = tree.root.add("payload $", expand=True)
        containers[("$",)] = payload
        for span in message.spans:
            if span.kind == "framing":
                parent = framing
            else:
                parts = path_parts(span.path)
                parent = payload
                for depth in range(2, len(parts) + 1):
                    key = tuple(parts[:depth])
                    if key not in containers:
                        containers[key] = containers[key[:-1]].add(
                            parts[depth - 1], expand=depth < 4
                        )
                    parent = containers[key]
            self._node_of[span] = parent.add_leaf(self._label(span), data=span)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        span = event.node.data
        hexview = self.query_one(HexView)
        if span is None:
            hexview.highlight = None
            return
        hexview.highlight = (span.start, span.end)
        hexview.cursor = span.start
        self.query_one("#hex-scroll", VerticalScroll).scroll_to(
            y=span.start // hexview.bytes_per_line, animate=False
        )

    def on_hex_view_byte_selected(self, event: HexView.ByteSelected) -> None:
        message = self.message
        if message is None:
            return
        span = message.span_at(event.offset)
        node = self._node_of.get(span) if span else None
        if node is not None:
            tree: Tree[Span] = self.query_one(Tree)
            node.parent and node.parent.expand()
            tree.move_cursor(node)
