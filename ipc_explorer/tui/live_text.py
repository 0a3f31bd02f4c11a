"""A fixed-size text widget that the panels repaint at their refresh rate."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class LiveText(Static):
    """Static text whose size never changes with its content, so that new text needs a
    repaint and never a new layout; text equal to what is shown costs nothing (at a low
    message rate most panels are unchanged from one tick to the next)."""

    _shown: Text | str | None = None

    def show(self, content: Text | str) -> None:
        if content == self._shown:
            return
        self._shown = content
        self.update(content, layout=False)
