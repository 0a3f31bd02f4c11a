"""The step-mode bar: the stages of one message with the current one marked, what just
happened in one line, and what the kernel holds now (with where that figure comes from)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ipc_explorer.teach.step import StageReport

#: Kernel facts worth a glance, in this order; the why screen (w) shows them all.
GLANCE = ("queued_bytes", "next_datagram_bytes", "queue_depth", "full", "empty")


class StepBar(Static):
    """Hidden until step mode; fed a StageReport after each press."""

    report: reactive[StageReport | None] = reactive(None, layout=True)

    def __init__(self, stages: tuple[str, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.stages = stages
        self.hint = ""

    def show_entered(self, stages: tuple[str, ...], hint: str) -> None:
        self.stages = stages
        self.hint = hint
        self.report = None
        self.update(self._render_now())

    def watch_report(self) -> None:
        self.update(self._render_now())

    def _render_now(self) -> Text:
        report = self.report
        line = Text()
        line.append(" STEP ", "bold reverse")
        line.append(f" message {report.seq} " if report else " ")
        done = self.stages.index(report.stage) if report else -1
        for index, stage in enumerate(self.stages):
            if index:
                line.append(" › ", "dim")
            if index == done:
                line.append(stage, "bold reverse")
            elif index < done:
                line.append(stage)
            else:
                line.append(stage, "dim")
        if report is None:
            line.append("\n" + self.hint)
            return line
        line.append("\n")
        line.append(report.narration)
        facts = report.kernel.values()
        sources = report.kernel.sources()
        shown = [name for name in GLANCE if name in facts]
        if shown:
            line.append("\nkernel: ", "bold")
            line.append(", ".join(f"{name} {facts[name]}" for name in shown))
            line.append(f"  ({sources[shown[0]]})", "dim")
        elif not facts:
            line.append("\nkernel: nothing to read at this stage", "dim")
        return line
