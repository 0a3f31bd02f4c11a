"""The flow panel: sender -> channel -> receiver with live counters, and the recent messages."""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from ipc_explorer.session import SessionStats
from ipc_explorer.tui.live_text import LiveText

MAX_ROWS = 40
LIST_EVERY_TICKS = 10
COLUMNS = [
    ("seq", 9),
    ("side", 9),
    ("payload B", 9),
    ("wire B", 8),
    ("latency µs", 10),
    ("ser", 7),
    ("transmit", 9),
    ("deser", 7),
]

STATE_STYLE = {
    "running": "green",
    "ready": "yellow",
    "paused": "yellow",
    "done": "cyan",
    "stopped": "grey50",
    "peer-closed": "red",
    "error": "bold red",
    "killed": "bold red",
    "exited": "red",
}


def _us(ns: float | int | None) -> str:
    if not ns:
        return "-"
    us = ns / 1000
    return f"{us:,.1f}" if us < 1000 else f"{us:,.0f}"


class FlowPanel(Vertical):
    """Boxes and counters on top, a bounded list of sampled messages below."""

    class MessageChosen(Message):
        def __init__(self, sample: dict[str, Any]) -> None:
            super().__init__()
            self.sample = sample

    def compose(self) -> ComposeResult:
        with Horizontal(id="diagram"):
            yield LiveText(id="sender-box", classes="box")
            yield Static("──>", classes="arrow")
            yield LiveText(id="channel-box", classes="box")
            yield Static("──>", classes="arrow")
            yield LiveText(id="receiver-box", classes="box")
        yield LiveText(id="messages-label")
        table: DataTable[str] = DataTable(id="messages", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name, width in COLUMNS:
            table.add_column(name, width=width, key=name)
        # A fixed set of rows whose cells are rewritten: adding and removing rows would make
        # Textual lay the whole screen out again at every update.
        for index in range(MAX_ROWS):
            table.add_row(*[""] * len(COLUMNS), key=str(index))
        table.move_cursor(row=MAX_ROWS - 1, animate=False)
        self._window: deque[dict[str, Any]] = deque(maxlen=MAX_ROWS)
        self._shown: list[dict[str, Any] | None] = [None] * MAX_ROWS
        self._seen = 0
        self._chosen: dict[str, Any] | None = None
        self._ticks = 0
        self._set_label()

    def reset(self) -> None:
        self._window.clear()
        self._seen = 0
        self._chosen = None
        self._redraw_rows()

    def _set_label(self) -> None:
        table = self.query_one(DataTable)
        frozen = "  [b]frozen while you browse[/b] (tab away to follow)" if table.has_focus else ""
        self.query_one("#messages-label", LiveText).show(
            "sampled messages (every message is counted; a few per tick are kept)" + frozen
        )

    def on_descendant_focus(self) -> None:
        self._set_label()

    def on_descendant_blur(self) -> None:
        self._set_label()

    def update_view(self, stats: SessionStats, mechanism: str, pattern: str, lossy: bool) -> None:
        self._update_diagram(stats, mechanism, pattern, lossy)
        # The list moves at a reading pace (nobody reads rows ten times a second), and holds
        # still while the user browses it.
        self._ticks += 1
        if self._ticks % LIST_EVERY_TICKS != 1 or self.query_one(DataTable).has_focus:
            return
        fresh = stats.new_samples(self._seen)
        self._seen = stats.sample_count
        if fresh:
            self._window.extend(fresh)
            self._redraw_rows()
            if self._chosen is None:
                self._choose(self._window[-1])  # show something from the start

    def _redraw_rows(self) -> None:
        table = self.query_one(DataTable)
        samples: list[dict[str, Any] | None] = [None] * (MAX_ROWS - len(self._window))
        samples += list(self._window)
        for index, sample in enumerate(samples):
            if sample is self._shown[index]:
                continue
            self._shown[index] = sample
            for (name, _), value in zip(COLUMNS, self._cells(sample), strict=True):
                table.update_cell(str(index), name, value)

    @staticmethod
    def _cells(sample: dict[str, Any] | None) -> list[str | Text]:
        if sample is None:
            return [""] * len(COLUMNS)
        latency = sample.get("latency_ns") or sample.get("rtt_ns")
        injected = sample.get("injected")
        return [
            Text(str(sample["seq"]), style="bold yellow" if injected else ""),
            "injected" if injected else sample.get("side", ""),
            f"{sample['size']:,}",
            f"{sample['wire_size']:,}",
            _us(latency),
            _us(sample.get("ser_ns")),
            _us(sample.get("transmit_ns")),
            _us(sample.get("deserialize_ns")),
        ]

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
        snd, rcv = stats.sender, stats.receiver
        sent, received = snd.count("sent"), rcv.count("unique")
        describe = rcv.describe or snd.describe
        live = rcv.live or {}

        def side_text(side: Any, lines: list[Text]) -> Text:
            state = Text(side.state, style=STATE_STYLE.get(side.state, ""))
            stalled = side.stalled_ns / 1e9
            if stalled > 0.2 and side.op == "send":
                state.append(f" blocked in send {stalled:.1f} s", style="bold red")
            elif stalled > 0.2 and side.op == "recv":
                state.append(f" waiting in recv {stalled:.1f} s", style="grey62")
            return Text("\n").join([state, *lines])

        drops = live.get("kernel_drops")
        in_flight = max(sent - received - (drops if drops is not None else rcv.count("missing")), 0)
        channel_lines = [Text(str(describe.get("kernel_object", "")), style="cyan")]
        if "queue_depth" in live:
            channel_lines.append(Text(f"queue depth {live['queue_depth']}/{live['queue_max']}"))
        elif "ring_occupancy" in live:
            channel_lines.append(
                Text(f"ring {live['ring_occupancy']}/{live['ring_slots']} slots full")
            )
        else:
            channel_lines.append(Text(f"in flight {in_flight:,}"))
        if drops is not None:
            channel_lines.append(Text(f"kernel drops {drops:,}", style="red"))
        # Lost: gaps the receiver saw (and, on UDP, the kernel's own drop count).
        lost = max(rcv.count("missing"), drops or 0) if lossy else rcv.count("missing")
        bad = lost or rcv.count("corrupt") or rcv.count("duplicated")
        anomalies = Text(
            f"lost {lost:,}  dup {rcv.count('duplicated'):,}  "
            f"reord {rcv.count('reordered'):,}  corrupt {rcv.count('corrupt'):,}",
            style="red" if bad else "grey62",
        )
        sender = self.query_one("#sender-box", LiveText)
        channel = self.query_one("#channel-box", LiveText)
        receiver = self.query_one("#receiver-box", LiveText)
        sender.border_title = f"sender pid {snd.pid or '-'}"
        receiver.border_title = f"receiver pid {rcv.pid or '-'}"
        channel.border_title = f"{mechanism} · {pattern}"
        sender.show(side_text(snd, [Text(f"sent {sent:,}", style="bold")]))
        channel.show(Text("\n").join(channel_lines))
        receiver.show(side_text(rcv, [Text(f"received {received:,}", style="bold"), anomalies]))
