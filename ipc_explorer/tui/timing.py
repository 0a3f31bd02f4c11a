"""The timing panel: latency percentiles, throughput, a sparkline, and the per-stage split."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Sparkline, Static

from ipc_explorer.session import SessionStats
from ipc_explorer.telemetry.protocol import STAGES
from ipc_explorer.tui.live_text import LiveText, Row
from ipc_explorer.tui.themes import Palette, palette_for

HISTORY = 120
#: Under this many columns the stage split's title takes its short form.
NARROW_BELOW = 40
#: Under this many rows only the figures and the stage split are shown (80x24 leaves 13).
SHORT_BELOW = 18
#: A histogram row's label: "  ≥131.1 µs ".
HISTOGRAM_LABEL = 13


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


class TimingPanel(Vertical):
    """Figures, then the stage split, the sparkline and the histogram: a short panel keeps
    the first two, the numbers a reader came for."""

    narrow: reactive[bool] = reactive(False, toggle_class="-narrow")
    short: reactive[bool] = reactive(False, toggle_class="-short")
    #: The latest figures drawn, to draw them again at a new size or in a new theme.
    _view: tuple[SessionStats, bool] | None = None

    def compose(self) -> ComposeResult:
        yield LiveText(id="figures")
        yield LiveText(id="stages")
        yield Static("msgs/s at the receiver, last 12 s", id="spark-label")
        yield Sparkline([], id="rate-spark")
        yield LiveText(id="histogram")

    def on_mount(self) -> None:
        self._rates: deque[float] = deque([0.0] * HISTORY, maxlen=HISTORY)
        self._ticks = 0
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._draw())

    def on_resize(self, event: events.Resize) -> None:
        self.narrow = event.size.width < NARROW_BELOW
        self.short = event.size.height < SHORT_BELOW
        self.call_after_refresh(self._draw)  # the bars follow the new width

    @property
    def palette(self) -> Palette:
        return palette_for(self.app.theme)

    def reset(self) -> None:
        self._rates.extend([0.0] * HISTORY)

    def update_view(self, stats: SessionStats, pingpong: bool, now: bool = False) -> None:
        """``now``: the histogram too, at once (a replay moved to another moment)."""
        self._rates.append(stats.rate_now()[0])
        self.query_one(Sparkline).data = list(self._rates)
        self._view = (stats, pingpong)
        # A histogram changes shape slowly: once a second is plenty.
        self._draw(histogram=now or self._ticks % 10 == 0)
        self._ticks += 1

    def _draw(self, histogram: bool = True) -> None:
        """The figures, the stage split and (``histogram``) the histogram, from the latest
        stats, in the current theme and width."""
        if self._view is None:
            return
        stats, pingpong = self._view
        name = "rtt" if pingpong else "one_way"
        msgs, mb = stats.rate_now()
        self.query_one("#figures", LiveText).show_rows(
            self._figures(stats.percentiles_us(name), msgs, mb, pingpong, self.palette)
        )
        if histogram:
            chart = self.query_one("#histogram", LiveText)
            chart.show(self._histogram(stats, name, chart.content_size.width))
        stages = self.query_one("#stages", LiveText)
        stages.show_rows(self._stage_bar(stats, pingpong, stages.content_size.width))

    @staticmethod
    def _figures(
        lat: dict[str, float], msgs: float, mb: float, pingpong: bool, palette: Palette
    ) -> list[Row]:
        """A table of label/value pairs, two to a line where they fit, one where they do not:
        values right-aligned to the widest, so that the columns line up either way."""
        values = {q: _us(value) for q, value in lat.items()}
        width = max(len(value) for value in values.values())

        def pair(q: str) -> Text:
            return Text.assemble((q, palette.label), " ", (values[q].rjust(width), palette.number))

        return [
            Text(f"latency ({'round trip' if pingpong else 'one way'}) µs", style=palette.heading),
            [pair("p50"), pair("p90")],
            [pair("p99"), pair("max")],
            [
                Text("last second:", style=palette.label),
                Text(f"{msgs:,.0f} msgs/s", style=palette.number),
                Text(f"{mb:,.2f} MB/s", style=palette.number),
            ],
        ]

    def _histogram(self, stats: SessionStats, name: str, width: int) -> Text:
        palette = self.palette
        h = stats.hists.get(name)
        text = Text("latency histogram\n", style=palette.heading)
        if not h or not h.total:
            return text.append("no messages yet", style=palette.hint)
        # Fold the log-linear buckets into powers of two for a compact view.
        folded: dict[int, int] = {}
        for value, count in h.buckets():
            folded[max(int(value), 1).bit_length()] = (
                folded.get(max(int(value), 1).bit_length(), 0) + count
            )
        top = max(folded.values())
        # The longest bar leaves room for its count on the same line.
        longest = max((width or 44) - HISTOGRAM_LABEL - len(f" {top:,}"), 1)
        for bits in sorted(folded)[-6:]:
            low = (1 << (bits - 1)) / 1000
            bar = "█" * max(1, round(folded[bits] / top * longest))
            text.append(f"{'≥' + _us(low):>9} µs ", style=palette.label)
            text.append(f"{bar} {folded[bits]:,}\n", style=palette.bar)
        return text

    def _stage_bar(self, stats: SessionStats, pingpong: bool, width: int) -> list[Row]:
        palette = self.palette
        stages = stats.stage_medians_us(pingpong)
        total = sum(stages.values())
        title = "per-stage split (medians)"
        if self.narrow:
            title = "per-stage medians"
        rows: list[Row] = [[Text(title, style=palette.heading)]]
        if not total:
            return [*rows, [Text("no messages yet", style=palette.hint)]]
        # The bar splits a message's own path; a broker's confirm and ack happen beside it
        # (the confirm while the message travels on, the ack after it has arrived), so they
        # are listed after it, not stacked into it.
        path = {name: value for name, value in stages.items() if name in STAGES}
        beside = {name: value for name, value in stages.items() if name not in STAGES}
        path_total = sum(path.values()) or 1.0
        bar, done, cells = Text(), 0.0, width or 40
        for name, value in path.items():  # cumulative rounding: the bar fills one line
            start, done = round(done / path_total * cells), done + value
            bar.append("█" * (round(done / path_total * cells) - start), style=palette.stages[name])
        rows.append([bar])
        values = {name: _us(value) for name, value in stages.items()}
        names, digits = max(map(len, values)), max(map(len, values.values()))

        def legend(part: dict[str, float]) -> list[Text]:
            return [
                Text.assemble(
                    ("■ ", palette.stages[name]), f"{name:<{names}} {values[name]:>{digits}} µs"
                )
                for name in part
            ]

        rows.append(legend(path))
        if beside:
            rows.append([Text("beside the path (not in the bar)", style=palette.label)])
            rows.append(legend(beside))
        return rows
