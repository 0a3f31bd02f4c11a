"""The timing panel: latency percentiles, throughput, a sparkline, and the per-stage split."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from ipc_explorer.session import SessionStats
from ipc_explorer.tui.live_text import LiveText

STAGE_STYLE = {
    "serialize": "yellow",
    "transmit": "magenta",
    "deserialize": "green",
    "sync_wait": "red",
}
HISTORY = 120


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


class TimingPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield LiveText(id="figures")
        yield LiveText(id="stages")
        yield Static("msgs/s at the receiver, last 12 s", id="spark-label")
        yield Sparkline([], id="rate-spark")
        yield LiveText(id="histogram")

    def on_mount(self) -> None:
        self._rates: deque[float] = deque([0.0] * HISTORY, maxlen=HISTORY)
        self._ticks = 0

    def reset(self) -> None:
        self._rates.extend([0.0] * HISTORY)

    def update_view(self, stats: SessionStats, pingpong: bool) -> None:
        name = "rtt" if pingpong else "one_way"
        lat = stats.percentiles_us(name)
        msgs, mb = stats.rate_now()
        self._rates.append(msgs)
        figures = Text()
        figures.append(f"latency ({'round trip' if pingpong else 'one way'}) µs\n", style="bold")
        for row in (("p50", "p90"), ("p99", "max")):
            for q in row:
                figures.append(f"{q} ", style="grey62")
                figures.append(f"{_us(lat[q]):>9}   ", style="bold")
            figures.append("\n")
        figures.append("last second: ", style="grey62")
        figures.append(f"{msgs:,.0f} msgs/s  {mb:,.2f} MB/s", style="bold")
        self.query_one("#figures", LiveText).show(figures)
        self.query_one(Sparkline).data = list(self._rates)
        self._ticks += 1
        if self._ticks % 10 == 1:  # a histogram changes shape slowly: once a second is plenty
            self.query_one("#histogram", LiveText).show(self._histogram(stats, name))
        self.query_one("#stages", LiveText).show(self._stage_bar(stats, pingpong))

    @staticmethod
    def _histogram(stats: SessionStats, name: str, width: int = 30) -> Text:
        h = stats.hists.get(name)
        text = Text("latency histogram\n", style="bold")
        if not h or not h.total:
            return text.append("no messages yet", style="dim")
        # Fold the log-linear buckets into powers of two for a compact view.
        folded: dict[int, int] = {}
        for value, count in h.buckets():
            folded[max(int(value), 1).bit_length()] = (
                folded.get(max(int(value), 1).bit_length(), 0) + count
            )
        top = max(folded.values())
        for bits in sorted(folded)[-6:]:
            low = (1 << (bits - 1)) / 1000
            bar = "█" * max(1, round(folded[bits] / top * width))
            text.append(f"{'≥' + _us(low):>9} µs ", style="grey62")
            text.append(f"{bar} {folded[bits]:,}\n", style="cyan")
        return text

    @staticmethod
    def _stage_bar(stats: SessionStats, pingpong: bool, width: int = 40) -> Text:
        stages = stats.stage_medians_us(pingpong)
        total = sum(stages.values())
        text = Text("per-stage split (medians)\n", style="bold")
        if not total:
            return text.append("no messages yet", style="dim")
        for name, value in stages.items():
            cells = round(value / total * width)
            text.append("█" * cells, style=STAGE_STYLE[name])
        text.append("\n")
        for name, value in stages.items():
            text.append("■ ", style=STAGE_STYLE[name])
            text.append(f"{name} {_us(value)} µs  ")
        return text
