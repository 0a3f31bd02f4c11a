"""The sync panel: every semaphore in play, and whether a writer is blocked right now."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable

from ipc_explorer.session import SessionStats
from ipc_explorer.tui.live_text import LiveText
from ipc_explorer.tui.themes import Palette, palette_for

#: Under this many columns (80x24 leaves the panel 54) the table gives way to one line:
#: each semaphore's value and which side waits on it, and who is blocked if anyone is.
NARROW_BELOW = 70
#: Between a number and its unit: wrapping never separates them.
NBSP = "\u00a0"


def _us(ns: float) -> str:
    return f"{ns / 1000:,.1f}" if ns else "-"


#: Who holds a sender or receiver back where no semaphore of ours does.
WAITERS = {"amqp": "the broker (its queue, the prefetch window, confirms)"}


class SyncPanel(Vertical):
    """Values come from the kernel (sem_getvalue); waits and holds from the processes."""

    narrow: reactive[bool] = reactive(False, toggle_class="-narrow")
    #: The latest figures drawn, to draw them again at a new size or in a new theme.
    _view: tuple[SessionStats, str] | None = None

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
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def on_resize(self, event: events.Resize) -> None:
        self.narrow = event.size.width < NARROW_BELOW

    def watch_narrow(self) -> None:
        if self.is_mounted and self._view is not None:
            self.update_view(*self._view)

    def _restyle(self) -> None:
        """The rows added again in the new theme's colours (an update rewrites only the cells
        whose text changed)."""
        self.query_one(DataTable).clear()
        if self._view is not None:
            self.update_view(*self._view)

    @property
    def palette(self) -> Palette:
        return palette_for(self.app.theme)

    def update_view(self, stats: SessionStats, mechanism: str) -> None:
        self._view = (stats, mechanism)
        rows = self._rows(stats, self.palette)
        self.query_one("#blocked", LiveText).show_rows([self._status(stats, mechanism, rows)])
        table = self.query_one(DataTable)
        table.display = bool(rows) and not self.narrow
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
    def _rows(stats: SessionStats, palette: Palette) -> dict[str, list[str | Text]]:
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
                Text(str(entry["value"]), style=palette.number),
                holder or "-",
                Text(waiting or "-", style=palette.warn if waiting else ""),
                f"{acquired:,}",
                f"{_us(wait_total / acquired if acquired else 0)} / {_us(wait_max)}",
                f"{_us(hold_total / acquired if acquired else 0)} / {_us(hold_max)}"
                if mutex
                else "-",
            ]
        return rows

    def _status(
        self, stats: SessionStats, mechanism: str, rows: dict[str, list[str | Text]]
    ) -> list[Text]:
        """Who is blocked, and (narrow, where the table is hidden) each semaphore's value and
        which side waits on it, as pieces that wrap whole. Narrow, "no one blocked" goes
        unsaid beside the semaphores: the line keeps to one line of 52 columns."""
        palette = self.palette
        snd = stats.sender
        describe = stats.receiver.describe or snd.describe
        pieces = [Text("Sync", style=palette.heading)] if self.narrow else []
        blocked = snd.stalled_ns > 200_000_000 and snd.op in ("send", "recv")
        if blocked:
            pieces.append(
                Text(
                    f"sender blocked in {snd.op} for {snd.stalled_ns / 1e9:.1f}{NBSP}s",
                    style=palette.alarm,
                )
            )
            buffer = describe.get("buffer_bytes")
            if buffer and snd.op == "send":
                pieces.append(Text(f"({buffer:,} B buffer full)", style=palette.alarm))
        elif not (self.narrow and rows):
            pieces.append(Text("no one blocked", style=palette.good))
        if not rows:
            waiter = WAITERS.get(mechanism, "the kernel")
            hint = f"{mechanism}: no user-space semaphores; {waiter} does the waiting"
            short = f"{waiter} does the waiting"
            pieces.append(Text(short if self.narrow else hint, style=palette.hint))
        elif self.narrow:
            # "forward empty", "forward full": the word they share said once, if all share it
            first = {label.split(" ", 1)[0] for label in rows}
            shared = first.pop() + " " if len(first) == 1 and len(rows) > 1 else ""
            for label, cells in rows.items():
                piece = Text.assemble((label.removeprefix(shared), palette.label), " ", cells[1])
                waiting = {name.split(" ")[0] for name in str(cells[3]).split(", ")} - {"-"}
                if waiting:
                    verb = "waits" if len(waiting) == 1 else "wait"
                    piece.append(f" ({' and '.join(sorted(waiting))} {verb})", style=palette.warn)
                pieces.append(piece)
        return pieces
