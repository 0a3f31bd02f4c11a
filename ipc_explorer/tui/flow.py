"""The flow panel: sender -> channel -> receiver with live counters, and the recent messages."""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult, RenderResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import DataTable

from ipc_explorer.session import SessionStats
from ipc_explorer.tui.live_text import LiveText, Row, pack
from ipc_explorer.tui.themes import Palette, palette_for

MAX_ROWS = 40
LIST_EVERY_TICKS = 10
#: Name, width, and whether a narrow panel keeps the column.
COLUMNS = [
    ("seq", 9, True),
    ("side", 9, False),
    ("payload B", 9, True),
    ("wire B", 8, True),
    ("latency µs", 10, True),
    ("ser", 7, False),
    ("transmit", 9, False),
    ("deser", 7, False),
]
#: Under this many columns the list keeps its essential columns (the boxes fit their own
#: titles and names at any width).
NARROW_BELOW = 70
#: Under this many rows the boxes lose a line and the list its caption, so that a few
#: messages stay in view (80x24 leaves the panel 12).
SHORT_BELOW = 15
#: What a box's border takes from its title's room: the corners, a rule and a space each side.
TITLE_MARGIN = 6
#: Between a number and its unit: wrapping never separates them.
NBSP = "\u00a0"


def _us(ns: float | int | None) -> str:
    if not ns:
        return "-"
    us = ns / 1000
    return f"{us:,.1f}" if us < 1000 else f"{us:,.0f}"


def fitting(width: int, *forms: str) -> str:
    """The first of ``forms`` that fits in ``width`` cells (the last if none does): a title
    or a name is shown whole or in a shorter form, never cut."""
    return next((form for form in forms if len(form) <= width), forms[-1])


def kernel_object_rows(kernel_object: str, title: str, width: int, detail: bool) -> list[Row]:
    """The kernel object in words that fit: its name whole, a path by its file name, or else
    what it is ('shared memory + semaphores'); the bracketed details on lines of their own."""
    name, bracket, rest = kernel_object.partition(" (")
    forms = [name]
    if name.startswith("/"):
        forms.append(name.rsplit("/", 1)[-1])
    rows: list[Row] = [Text(fitting(width or len(name), *forms, title))]
    if detail and bracket:
        rows.append(Text("(" + rest))
    return rows


class Arrow(Widget):
    """'──>' as long as the space between two boxes."""

    def render(self) -> RenderResult:
        return "─" * max(self.size.width - 1, 0) + ">"


class FlowPanel(Vertical):
    """Boxes and counters on top, a bounded list of sampled messages below."""

    narrow: reactive[bool] = reactive(False, toggle_class="-narrow")
    short: reactive[bool] = reactive(False, toggle_class="-short")
    #: The latest figures drawn, to draw them again at a new size or in a new theme.
    _view: tuple[SessionStats, str, str, bool] | None = None

    class MessageChosen(Message):
        def __init__(self, sample: dict[str, Any]) -> None:
            super().__init__()
            self.sample = sample

    def compose(self) -> ComposeResult:
        with Horizontal(id="diagram"):
            yield LiveText(id="sender-box", classes="box")
            yield Arrow(classes="arrow")
            yield LiveText(id="channel-box", classes="box")
            yield Arrow(classes="arrow")
            yield LiveText(id="receiver-box", classes="box")
        yield LiveText(id="messages-label")
        table: DataTable[str] = DataTable(id="messages", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        self._window: deque[dict[str, Any]] = deque(maxlen=MAX_ROWS)
        self._shown: list[dict[str, Any] | None] = [None] * MAX_ROWS
        self._seen = 0
        self._chosen: dict[str, Any] | None = None
        self._ticks = 0
        self._build_table()
        self._set_label()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def on_resize(self, event: events.Resize) -> None:
        self.narrow = event.size.width < NARROW_BELOW
        self.short = event.size.height < SHORT_BELOW
        self._set_label()
        table = self.query_one(DataTable)
        if not table.has_focus:  # the latest message stays in view in a shorter list
            table.move_cursor(row=table.cursor_row, animate=False)
        self.call_after_refresh(self._redraw_diagram)  # once the boxes have their new size

    def _redraw_diagram(self) -> None:
        """The boxes drawn again with the latest figures: their titles, names and lines are
        chosen to fit their size."""
        if self._view is not None:
            self._update_diagram(*self._view)

    def _restyle(self) -> None:
        self._redraw_diagram()
        self._redraw_rows(force=True)

    def watch_narrow(self) -> None:
        if self.is_mounted:
            self._build_table()

    @property
    def palette(self) -> Palette:
        return palette_for(self.app.theme)

    def _columns(self) -> list[tuple[str, int]]:
        return [(name, width) for name, width, essential in COLUMNS if essential or not self.narrow]

    def _build_table(self) -> None:
        """The list's columns for the panel's width, and a fixed set of rows whose cells are
        rewritten: adding and removing rows would make Textual lay the whole screen out again
        at every update."""
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for name, width in self._columns():
            table.add_column(name, width=width, key=name)
        for index in range(MAX_ROWS):
            table.add_row(*[""] * len(self._columns()), key=str(index))
        self._redraw_rows(force=True)
        table.move_cursor(row=MAX_ROWS - 1, animate=False)

    def reset(self) -> None:
        self._window.clear()
        self._seen = 0
        self._chosen = None
        self._redraw_rows()

    def _set_label(self) -> None:
        """The list's caption, in the longest form that fits on its one line."""
        forms = [
            "sampled messages (every message is counted; a few per tick are kept)",
            "sampled messages (every message is counted)",
            "sampled messages",
        ]
        if self.query_one(DataTable).has_focus:
            forms = [
                forms[0] + "  [b]frozen while you browse[/b] (tab away to follow)",
                "sampled messages  [b]frozen while you browse[/b] (tab away to follow)",
                "[b]frozen while you browse[/b] (tab away to follow)",
                "[b]frozen[/b] (tab away to follow)",
            ]
        width = self.content_size.width or len(forms[0])
        texts = [Text.from_markup(form) for form in forms]
        label = next((text for text in texts if text.cell_len <= width), texts[-1])
        self.query_one("#messages-label", LiveText).show(label)

    def on_descendant_focus(self) -> None:
        self._set_label()

    def on_descendant_blur(self) -> None:
        self._set_label()

    def update_view(
        self, stats: SessionStats, mechanism: str, pattern: str, lossy: bool, now: bool = False
    ) -> None:
        """``now``: the list too, at once (a replay moved to another moment)."""
        self._view = (stats, mechanism, pattern, lossy)
        self._update_diagram(stats, mechanism, pattern, lossy)
        # The list moves at a reading pace (nobody reads rows ten times a second), and holds
        # still while the user browses it.
        self._ticks += 1
        paced = self._ticks % LIST_EVERY_TICKS != 1 or self.query_one(DataTable).has_focus
        if paced and not now:
            return
        fresh = stats.new_samples(self._seen)
        self._seen = stats.sample_count
        if fresh:
            self._window.extend(fresh)
            self._redraw_rows()
            if self._chosen is None:
                self._choose(self._window[-1])  # show something from the start

    def _redraw_rows(self, force: bool = False) -> None:
        """Rewrite the rows whose sample changed (every row when ``force``: new columns or a
        new theme)."""
        table = self.query_one(DataTable)
        samples: list[dict[str, Any] | None] = [None] * (MAX_ROWS - len(self._window))
        samples += list(self._window)
        columns = self._columns()
        for index, sample in enumerate(samples):
            if sample is self._shown[index] and not force:
                continue
            self._shown[index] = sample
            cells = self._cells(sample, self.palette)
            for name, _ in columns:
                table.update_cell(str(index), name, cells.get(name, ""))

    @staticmethod
    def _cells(sample: dict[str, Any] | None, palette: Palette) -> dict[str, str | Text]:
        if sample is None:
            return {}
        latency = sample.get("latency_ns") or sample.get("rtt_ns")
        injected = sample.get("injected")
        return {
            "seq": Text(str(sample["seq"]), style=palette.flagged if injected else ""),
            "side": "injected" if injected else sample.get("side", ""),
            "payload B": f"{sample['size']:,}",
            "wire B": f"{sample['wire_size']:,}",
            "latency µs": _us(latency),
            "ser": _us(sample.get("ser_ns")),
            "transmit": _us(sample.get("transmit_ns")),
            "deser": _us(sample.get("deserialize_ns")),
        }

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        sample = self._shown[event.cursor_row] if 0 <= event.cursor_row < MAX_ROWS else None
        if sample is not None:
            self._choose(sample)

    def _choose(self, sample: dict[str, Any]) -> None:
        """Show ``sample`` in the bytes panel."""
        if sample is self._chosen:
            return
        self._chosen = sample
        self.post_message(self.MessageChosen(sample))

    def show(self, sample: dict[str, Any]) -> None:
        """Show ``sample`` in the bytes panel, and put the cursor on its row if it is listed."""
        if sample in self._window and sample not in self._shown:
            self._redraw_rows()
        for index, shown in enumerate(self._shown):
            if shown is sample:
                self.query_one(DataTable).move_cursor(row=index, animate=False)
        self._choose(sample)

    def _update_diagram(
        self, stats: SessionStats, mechanism: str, pattern: str, lossy: bool
    ) -> None:
        palette = self.palette
        snd, rcv = stats.sender, stats.receiver
        received = rcv.count("unique")
        # Both sides report every 100 ms, out of phase: a receiver's newer report can count
        # messages the sender's last one did not. Every message received was sent, so that
        # count is a lower bound of what was sent, not a reading to show below it.
        sent = max(snd.count("sent"), received)
        describe = rcv.describe or snd.describe
        live = rcv.live or {}

        def state_row(side: Any) -> Text:
            state = Text(side.state, style=palette.state(side.state))
            stalled = side.stalled_ns / 1e9
            if stalled > 0.2 and side.op == "send":
                state.append(f" blocked in send {stalled:.1f}{NBSP}s", style=palette.alarm)
            elif stalled > 0.2 and side.op == "recv":
                state.append(f" waiting in recv {stalled:.1f}{NBSP}s", style=palette.label)
            return state

        sender = self.query_one("#sender-box", LiveText)
        channel = self.query_one("#channel-box", LiveText)
        receiver = self.query_one("#receiver-box", LiveText)

        drops = live.get("kernel_drops")
        in_flight = max(sent - received - (drops if drops is not None else rcv.count("missing")), 0)
        count_rows: list[Row] = []
        if "queue_depth" in live:
            depth = f"queue depth {live['queue_depth']}"
            if "queue_max" in live:  # a POSIX queue's limit; a broker's queue has none set
                depth += f"/{live['queue_max']}"
            row = [Text(depth)]
            if "unacked" in live:  # the broker's own count of deliveries not acked yet
                row.append(Text(f"unacked {live['unacked']}"))
            count_rows.append(row)
            if live.get("redelivered"):
                count_rows.append([Text(f"redelivered {live['redelivered']:,}", palette.warn)])
        elif "ring_occupancy" in live:
            ring = f"ring {live['ring_occupancy']}/{live['ring_slots']}"
            count_rows.append([Text(ring), Text("slots full")])
        else:
            count_rows.append([Text(f"in flight {in_flight:,}")])
        if drops is not None:
            count_rows.append([Text(f"kernel drops {drops:,}", style=palette.bad)])
        opened = (snd.live or {}).get("connections")
        if opened is not None:  # the HTTP family: connections (and TLS handshakes) so far
            row = [Text(f"connections {opened:,}")]
            if "handshakes" in snd.live:
                row.append(Text(f"handshakes {snd.live['handshakes']:,}"))
            count_rows.append(row)
        # The counts always show; the kernel object's bracketed detail (a broker's address)
        # only where the box has room for it beside them.
        width, height = channel.content_size
        for detail in (not self.short, False):
            object_rows = kernel_object_rows(
                str(describe.get("kernel_object", "")),
                str(describe.get("title", mechanism)),
                width,
                detail=detail,
            )
            lines = len(pack([*object_rows, *count_rows], width).plain.splitlines())
            if not height or lines <= height:
                break
        for row in object_rows:
            row.stylize(palette.object)
        channel_rows = [*object_rows, *count_rows]
        # Lost: gaps the receiver saw (and, on UDP, the kernel's own drop count).
        lost = max(rcv.count("missing"), drops or 0) if lossy else rcv.count("missing")
        bad = lost or rcv.count("corrupt") or rcv.count("duplicated")
        anomaly = palette.bad if bad else palette.label
        counts = {
            "lost": lost,
            "dup": rcv.count("duplicated"),
            "reord": rcv.count("reordered"),
            "corrupt": rcv.count("corrupt"),
        }
        # Two pairs a line; a narrow box keeps "lost" and the counts that are not zero.
        anomalies = [
            Text(f"{name} {count:,}", style=anomaly)
            for name, count in counts.items()
            if count or name == "lost" or not self.narrow
        ]
        room = (
            sender.outer_size.width - TITLE_MARGIN,
            channel.outer_size.width - TITLE_MARGIN,
            receiver.outer_size.width - TITLE_MARGIN,
        )
        sender.border_title = fitting(room[0], f"sender pid {snd.pid or '-'}", "sender")
        channel.border_title = fitting(room[1], f"{mechanism} · {pattern}", mechanism)
        receiver.border_title = fitting(room[2], f"receiver pid {rcv.pid or '-'}", "receiver")
        sender.show_rows([state_row(snd), [Text(f"sent {sent:,}", style=palette.number)]])
        channel.show_rows(channel_rows)
        receiver.show_rows(
            [
                state_row(rcv),
                [Text(f"received {received:,}", style=palette.number)],
                anomalies[:2],
                anomalies[2:],
            ]
        )
