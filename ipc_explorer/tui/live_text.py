"""A text widget that the panels repaint at their refresh rate."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class LiveText(Static):
    """Static text repainted in place: a new layout only when its number of lines changes
    (a relayout of the screen at every tick would cost more than the text itself), and
    nothing at all for text equal to what is shown (at a low message rate most panels are
    unchanged from one tick to the next)."""

    _shown: Text | str | None = None
    _lines = 0

    def show(self, content: Text | str) -> None:
        if content == self._shown:
            return
        lines = (content.plain if isinstance(content, Text) else content).count("\n")
        self._shown = content
        self.update(content, layout=lines != self._lines)
        self._lines = lines
