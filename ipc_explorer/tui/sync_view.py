"""The sync panel: every semaphore in play, and whether a writer is blocked right now."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from ipc_explorer.session import SessionStats
from ipc_explorer.tui.live_text import LiveText


def _us(ns: float) -> str:
    return f"{ns / 1000:,.1f}" if ns else "-"


class SyncPanel(Vertical):
    """Values come from the kernel (sem_getvalue); waits and holds from the processes."""

    def compose(self) -> ComposeResult:
        yield LiveText(id="blocked")
        table: DataTable[str] = DataTable(id="semaphores", cursor_type="none")
        yield table

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "semaphore",
            "value",
            "holder",
            "waiting",
            "acquired",
            "wait µs avg/max",
            "hold µs avg/max",
        )

    def update_view(self, stats: SessionStats, mechanism: str) -> None:
        self.query_one("#blocked", LiveText).show(self._blocked_line(stats, mechanism))
        table = self.query_one(DataTable)
        rows = self._rows(stats)
        table.display = bool(rows)
        if table.row_count != len(rows):
            table.clear()
            for key, cells in rows.items():
                table.add_row(*cells, key=key)
            return
        for key, cells in rows.items():
            current = table.get_row(key)
            for column, old, value in zip(table.columns, current, cells, strict=False):
                if str(old) != str(value):  # an unchanged cell must not cost a redraw
                    table.update_cell(key, column, value)

    @staticmethod
    def _rows(stats: SessionStats) -> dict[str, list[str | Text]]:
        merged: dict[str, dict] = {}
        for side in (stats.sender, stats.receiver):
            for sem in side.sync:
                entry = merged.setdefault(sem["label"], {"value": sem["value"], "sides": {}})
                entry["sides"][side.side] = sem
                if sem["value"] is not None:
                    entry["value"] = sem["value"]
        rows: dict[str, list[str | Text]] = {}
        for label, entry in merged.items():
            sides = entry["sides"]
            holder = ", ".join(
                f"{name} {s['pid']}" for name, s in sides.items() if s["holding_since"]
            )
            waiting = ", ".join(
                f"{name} {s['pid']}" for name, s in sides.items() if s["waiting_since"]
            )
            acquired = sum(s["acquisitions"] for s in sides.values())
            wait_total = sum(s["wait_total_ns"] for s in sides.values())
            wait_max = max(s["wait_max_ns"] for s in sides.values())
            hold_total = sum(s["hold_total_ns"] for s in sides.values())
            hold_max = max(s["hold_max_ns"] for s in sides.values())
            mutex = any(s["mutex"] for s in sides.values())
            rows[label] = [
                label,
                Text(str(entry["value"]), style="bold"),
                holder or "-",
                Text(waiting or "-", style="yellow" if waiting else ""),
                f"{acquired:,}",
                f"{_us(wait_total / acquired if acquired else 0)} / {_us(wait_max)}",
                f"{_us(hold_total / acquired if acquired else 0)} / {_us(hold_max)}"
                if mutex
                else "-",
            ]
        return rows

    @staticmethod
    def _blocked_line(stats: SessionStats, mechanism: str) -> Text:
        snd = stats.sender
        describe = stats.receiver.describe or snd.describe
        text = Text()
        if snd.stalled_ns > 200_000_000 and snd.op in ("send", "recv"):
            buffer = describe.get("buffer_bytes")
            what = f" ({buffer:,} B buffer full)" if buffer and snd.op == "send" else ""
            text.append(
                f"sender blocked in {snd.op} for {snd.stalled_ns / 1e9:.1f} s{what}",
                style="bold red",
            )
        else:
            text.append("no one blocked", style="green")
        if not stats.sender.sync and not stats.receiver.sync:
            text.append(
                f"   {mechanism}: no user-space semaphores; the kernel does the waiting",
                style="dim",
            )
        return text
