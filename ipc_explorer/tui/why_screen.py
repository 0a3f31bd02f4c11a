"""Why is each child blocked? The kernel's account (teach/why.py) for every process of the
session or the lab: one sentence each, then the facts with their sources; what a process
says of itself is labelled as such. Refreshed every second while open."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ipc_explorer.teach.why import Diagnosis

REFRESH_S = 1.0


class WhyScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,w", "close", "Close")]
    AUTO_FOCUS = "VerticalScroll"

    def __init__(self, diagnose: Callable[[], list[Diagnosis]]) -> None:
        super().__init__()
        self._diagnose = diagnose

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog text-dialog", id="why"):
            yield Static(id="why-body")

    def on_mount(self) -> None:
        self.query_one("#why").border_title = "Why blocked? (from the kernel; w closes)"
        self.refresh_facts()
        self.set_interval(REFRESH_S, self.refresh_facts)

    def refresh_facts(self) -> None:
        """Read /proc and the descriptors in a thread: the screen stays responsive."""
        self.run_worker(self._read, thread=True, exclusive=True, group="why")

    def _read(self) -> None:
        try:
            diagnoses, error = self._diagnose(), None
        except Exception as exc:  # a process gone between two reads, one we may not trace
            diagnoses, error = [], exc
        self.app.call_from_thread(self.show, diagnoses, error)

    def show(self, diagnoses: list[Diagnosis], error: Exception | None = None) -> None:
        if not self.is_mounted:
            return
        if error is not None:
            self.query_one("#why-body", Static).update(Text(f"cannot read: {error}", "red"))
            return
        parts: list[Text | Table] = []
        for d in diagnoses:
            parts.append(Text(f"\n{d.role} (pid {d.pid}) · {d.state}", "bold"))
            parts.append(Text(d.sentence))
            table = Table(box=None, padding=(0, 1), show_header=False)
            table.add_column(style="bold", no_wrap=True)
            table.add_column()
            table.add_column(style="dim")
            sources = d.facts.sources()
            for name, value in d.facts.values().items():  # Text: "[heap]" is not markup
                table.add_row(name, Text(_shown(value)), Text(sources[name]))
            for name, value in d.self_reported.items():
                table.add_row(
                    name, Text(_shown(value)), "self-reported: the process's own telemetry"
                )
            parts.append(table)
        if not diagnoses:
            parts.append(Text("no process to look at: start a session (r)", "dim"))
        self.query_one("#why-body", Static).update(Group(*parts))

    def action_close(self) -> None:
        self.dismiss(None)


def _shown(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
