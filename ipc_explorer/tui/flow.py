"""The flow panel: sender -> channel -> receiver with live counters, and the recent messages."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from ipc_explorer.engine import SessionStats

MAX_ROWS = 100
LIST_EVERY_TICKS = 5

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
            yield Static(id="sender-box", classes="box")
            yield Static("──>", classes="arrow")
            yield Static(id="channel-box", classes="box")
            yield Static("──>", classes="arrow")
            yield Static(id="receiver-box", classes="box")
        yield Static(
            "sampled messages (every message is counted; a few per tick are kept)",
            id="messages-label",
        )
        table: DataTable[str] = DataTable(id="messages", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(
            "seq", "side", "payload B", "wire B", "latency µs", "ser", "transmit", "deser"
        )
        self._samples: dict[str, dict[str, Any]] = {}
        self._seen = 0
        self._row = 0
        self._chosen = ""  # row key of the message shown in the bytes panel
        self._ticks = 0

    def reset(self) -> None:
        self.query_one(DataTable).clear()
        self._samples.clear()
        self._seen = 0
        self._chosen = ""

    def update_view(self, stats: SessionStats, mechanism: str, pattern: str, lossy: bool) -> None:
        self._update_diagram(stats, mechanism, pattern, lossy)
        # The list moves at a reading pace: redrawing a table ten times a second costs the UI
        # more than everything else together, and nobody reads rows that fast.
        self._ticks += 1
        if self._ticks % LIST_EVERY_TICKS != 1:
            return
        fresh = stats.new_samples(self._seen)
        self._seen = stats.sample_count
        if fresh:
            self._add_rows(fresh)

    def _add_rows(self, samples: list[dict[str, Any]]) -> None:
        """Append new samples; the cursor stays on the message the user is looking at."""
        table = self.query_one(DataTable)
        at_bottom = table.scroll_y >= table.max_scroll_y - 1
        for sample in samples[-MAX_ROWS:]:
            self._row += 1
            key = str(self._row)
            self._samples[key] = sample
            latency = sample.get("latency_ns") or sample.get("rtt_ns")
            seq = Text(str(sample["seq"]), style="bold yellow" if sample.get("injected") else "")
            table.add_row(
                seq,
                "injected" if sample.get("injected") else sample.get("side", ""),
                f"{sample['size']:,}",
                f"{sample['wire_size']:,}",
                _us(latency),
                _us(sample.get("ser_ns")),
                _us(sample.get("transmit_ns")),
                _us(sample.get("deserialize_ns")),
                key=key,
            )
        if table.row_count > MAX_ROWS:
            for key in list(self._samples)[: table.row_count - MAX_ROWS]:
                table.remove_row(key)
                del self._samples[key]
            if self._chosen in self._samples:
                table.move_cursor(row=table.get_row_index(self._chosen), animate=False)
        if not self._chosen and self._samples:
            self.choose(next(reversed(self._samples)))  # show something from the start
        if at_bottom:
            table.scroll_end(animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.choose(event.row_key.value or "", move=False)

    def choose(self, key: str, move: bool = True) -> None:
        """Show the message of row ``key`` in the bytes panel (and put the cursor on it)."""
        sample = self._samples.get(key)
        if sample is None or key == self._chosen:
            return
        self._chosen = key
        if move:
            table = self.query_one(DataTable)
            table.move_cursor(row=table.get_row_index(key), animate=False)
        self.post_message(self.MessageChosen(sample))

    def select_injected(self) -> bool:
        """Move the cursor to the newest injected message, if one has arrived."""
        for key in reversed(list(self._samples)):
            if self._samples[key].get("injected"):
                self.choose(key)
                return True
        return False

    def _update_diagram(
        self, stats: SessionStats, mechanism: str, pattern: str, lossy: bool
    ) -> None:
        snd, rcv = stats.sender, stats.receiver
        sent, received = snd.count("sent"), rcv.count("unique")
        describe = rcv.describe or snd.describe
        live = rcv.live or {}

        def side_text(side: Any, lines: list[Text]) -> Text:
            state = Text(side.state, style=STATE_STYLE.get(side.state, ""))
            if side.stalled_ns > 200_000_000:
                state.append(
                    f" blocked in {side.op} {side.stalled_ns / 1e9:.1f} s", style="bold red"
                )
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
        sender = self.query_one("#sender-box", Static)
        channel = self.query_one("#channel-box", Static)
        receiver = self.query_one("#receiver-box", Static)
        sender.border_title = f"sender pid {snd.pid or '-'}"
        receiver.border_title = f"receiver pid {rcv.pid or '-'}"
        channel.border_title = f"{mechanism} · {pattern}"
        # Fixed-size boxes: new text needs a repaint, not a new layout.
        sender.update(side_text(snd, [Text(f"sent {sent:,}", style="bold")]), layout=False)
        channel.update(Text("\n").join(channel_lines), layout=False)
        receiver.update(
            side_text(rcv, [Text(f"received {received:,}", style="bold"), anomalies]), layout=False
        )
