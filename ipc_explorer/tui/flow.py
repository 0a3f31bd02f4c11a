"""The flow panel: sender -> channel -> receiver with live counters, and the recent messages."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from ipc_explorer.engine import SessionStats

MAX_ROWS = 200

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
        yield Static(id="diagram")
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

    def reset(self) -> None:
        self.query_one(DataTable).clear()
        self._samples.clear()
        self._seen = 0

    def update_view(self, stats: SessionStats, mechanism: str, pattern: str, lossy: bool) -> None:
        self.query_one("#diagram", Static).update(self._diagram(stats, mechanism, pattern, lossy))
        fresh = stats.new_samples(self._seen)
        self._seen = stats.sample_count
        if fresh:
            self._add_rows(fresh)

    def _add_rows(self, samples: list[dict[str, Any]]) -> None:
        table = self.query_one(DataTable)
        follow = table.cursor_row >= table.row_count - 1
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
        while table.row_count > MAX_ROWS:
            first = next(iter(self._samples))
            table.remove_row(first)
            del self._samples[first]
        if follow and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        sample = self._samples.get(event.row_key.value or "")
        if sample is not None:
            self.post_message(self.MessageChosen(sample))

    def select_injected(self) -> bool:
        """Move the cursor to the newest injected message, if one has arrived."""
        table = self.query_one(DataTable)
        for key in reversed(list(self._samples)):
            if self._samples[key].get("injected"):
                table.move_cursor(row=table.get_row_index(key), animate=False)
                return True
        return False

    @staticmethod
    def _diagram(stats: SessionStats, mechanism: str, pattern: str, lossy: bool) -> Group:
        snd, rcv = stats.sender, stats.receiver
        sent, received = snd.count("sent"), rcv.count("unique")
        describe = rcv.describe or snd.describe
        live = rcv.live or {}

        def side_box(title: str, side: Any, lines: list[Text]) -> Panel:
            state = Text(side.state, style=STATE_STYLE.get(side.state, ""))
            if side.stalled_ns > 200_000_000:
                state.append(
                    f"  blocked in {side.op} {side.stalled_ns / 1e9:.1f} s", style="bold red"
                )
            body = Text("\n").join([state, *lines])
            return Panel(body, title=f"{title} pid {side.pid or '-'}", border_style="blue")

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
        if live.get("kernel_drops") is not None:
            channel_lines.append(Text(f"kernel drops {live['kernel_drops']:,}", style="red"))
        channel = Panel(
            Text("\n").join(channel_lines),
            title=f"{mechanism} · {pattern}",
            border_style="magenta",
        )
        # Lost: gaps the receiver saw (and, on UDP, the kernel's own drop count).
        lost = max(rcv.count("missing"), drops or 0) if lossy else rcv.count("missing")
        anomalies = Text(
            f"lost {lost:,}  dup {rcv.count('duplicated'):,}  "
            f"reord {rcv.count('reordered'):,}  corrupt {rcv.count('corrupt'):,}",
            style="red" if lost or rcv.count("corrupt") or rcv.count("duplicated") else "grey62",
        )
        sender = side_box("sender", snd, [Text(f"sent {sent:,}", style="bold")])
        receiver = side_box(
            "receiver", rcv, [Text(f"received {received:,}", style="bold"), anomalies]
        )
        grid = Table.grid(expand=True)
        grid.add_column(ratio=3, min_width=15)
        grid.add_column(width=3, vertical="middle")
        grid.add_column(ratio=4, min_width=14)
        grid.add_column(width=3, vertical="middle")
        grid.add_column(ratio=3, min_width=18)
        arrow = Text("──>", style="bold")
        grid.add_row(sender, arrow, channel, arrow, receiver)
        return Group(grid)
