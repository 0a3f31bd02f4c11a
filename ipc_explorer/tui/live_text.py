"""A text widget that the panels repaint at their refresh rate, and the layout of text in
pieces that must stay whole (a label with its value) at any width."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

#: A row of text: a sequence of pieces laid out two spaces apart, as many to a line as fit;
#: or one Text, wrapped at its spaces like a sentence (a no-break space keeps "1.2 s" whole).
Row = Sequence[Text] | Text


def pack(rows: Sequence[Row], width: int) -> Text:
    """``rows`` laid out in ``width`` cells: a narrow widget gets more lines, and a piece (say
    "p90 251.9") is never broken in two. A width of 0 (not laid out yet) puts each row on one
    line."""
    lines: list[Text] = []
    for row in rows:
        if isinstance(row, Text):
            lines += _wrap(row, width)
            continue
        line = Text()
        for piece in row:
            if not piece.plain:
                continue
            if line.plain and width > 0 and line.cell_len + 2 + piece.cell_len > width:
                lines.append(line)
                line = Text()
            elif line.plain:
                line.append("  ")
            line.append_text(piece)
        lines.append(line)
    return Text("\n").join(lines)


def _wrap(text: Text, width: int) -> list[Text]:
    """``text`` broken at spaces into lines of ``width`` cells, its styles kept (spaces too)."""
    breaks: list[int] = []
    line_start = 0
    for word in re.finditer(r"\S+", text.plain):
        if width > 0 and word.end() - line_start > width and word.start() > line_start:
            breaks.append(word.start())
            line_start = word.start()
    lines = list(text.divide(breaks))
    for line in lines:
        line.rstrip()
    return lines


class LiveText(Static):
    """Static text repainted in place: a new layout only when its number of lines changes
    (a relayout of the screen at every tick would cost more than the text itself), and
    nothing at all for text equal to what is shown (at a low message rate most panels are
    unchanged from one tick to the next)."""

    _shown: Text | str | None = None
    _lines = 0
    _rows: Sequence[Row] | None = None

    def show(self, content: Text | str) -> None:
        self._rows = None
        self._show(content)

    def show_rows(self, rows: Sequence[Row]) -> None:
        """Show ``rows`` packed to this widget's width (see ``pack``), packed again when the
        width changes."""
        self._rows = rows
        self._show(pack(rows, self.content_size.width))

    def on_resize(self) -> None:
        if self._rows is not None:
            self._show(pack(self._rows, self.content_size.width))

    def _show(self, content: Text | str) -> None:
        if content == self._shown:
            return
        lines = (content.plain if isinstance(content, Text) else content).count("\n")
        self._shown = content
        self.update(content, layout=lines != self._lines)
        self._lines = lines
