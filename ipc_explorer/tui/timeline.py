"""The replay's timeline: where the replay is, how fast it plays, and a scrub bar with a mark
at each anomaly (loss, damage, a blocked writer, an error); a click on the bar jumps there."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ipc_explorer.telemetry.recording import Anomaly
from ipc_explorer.tui.themes import palette_for

#: Room the bar leaves on its line for the times around it.
BAR_MARGIN = 2


def clock(ns: int) -> str:
    """mm:ss.t: a recording's time as a reader counts it."""
    tenths = ns // 100_000_000
    return f"{tenths // 600:02d}:{tenths // 10 % 60:02d}.{tenths % 10}"


class Timeline(Widget):
    """Two lines: the state of the player, then the scrub bar."""

    t: reactive[int] = reactive(0)
    duration: reactive[int] = reactive(0)
    playing: reactive[bool] = reactive(False)
    speed: reactive[float] = reactive(1.0)
    position: reactive[int] = reactive(0)
    length: reactive[int] = reactive(0)
    #: What happened last at this position (an event, an anomaly), in words.
    said: reactive[str] = reactive("")

    class Seek(Message):
        """The user clicked on the bar: go to ``t`` nanoseconds into the recording."""

        def __init__(self, t: int) -> None:
            super().__init__()
            self.t = t

    def __init__(self, anomalies: list[Anomaly], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.anomalies = anomalies

    def render(self) -> Text:
        palette = palette_for(self.app.theme)
        width = self.size.width
        narrow = width < 100  # 80x24: the short forms, so that the bar keeps its line
        state = (
            ("▶" if narrow else "▶ playing") if self.playing else ("❚❚" if narrow else "❚❚ paused")
        )
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{state} {self.speed:g}x", style=palette.heading)
        head.append(f"  {clock(self.t)} / {clock(self.duration)}", style=palette.number)
        where = (
            f"{self.position:,}/{self.length:,}"
            if narrow
            else (f"record {self.position:,} of {self.length:,}")
        )
        head.append(f"  {where}", style=palette.label)
        if self.said:
            head.append(f"  {self.said}", style=palette.hint)
        head.truncate(max(width, 1), overflow="ellipsis")
        return Text("\n").join([head, self._bar(palette)])

    def _bar(self, palette: object) -> Text:
        width = max(self.size.width - BAR_MARGIN, 10)
        done = round(width * self.t / self.duration) if self.duration else 0
        cells = ["━"] * done + ["─"] * (width - done)
        styles = [palette.bar] * done + [palette.quiet] * (width - done)  # type: ignore[attr-defined]
        for anomaly in self.anomalies:
            at = min(width - 1, round(width * anomaly.t / self.duration)) if self.duration else 0
            cells[at], styles[at] = "▲", palette.bad  # type: ignore[attr-defined]
        if done:
            cells[min(done, width - 1)] = "●"
        bar = Text(" ")
        for cell, style in zip(cells, styles, strict=True):
            bar.append(cell, style=style)
        return bar

    def on_click(self, event: events.Click) -> None:
        width = max(self.size.width - BAR_MARGIN, 10)
        if event.y == 1 and self.duration:
            fraction = min(max(event.x - 1, 0), width) / width
            self.post_message(self.Seek(round(self.duration * fraction)))
