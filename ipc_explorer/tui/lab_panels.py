"""The contention lab's panels: what happens, expected against actual, the locks, and a
timeline of every worker. Drawn from a ContendRun, live (the lab's screen) or folded from a
recording (the lab's replay): both read the same attributes."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from ipc_explorer.explain.lab import SCENARIOS as SCENARIO_TEXTS
from ipc_explorer.explain.lab import WHERE_FIGURES_COME_FROM
from ipc_explorer.lab.board import DONE, HOLDING, RUNNING, STARTING, WAITING
from ipc_explorer.lab.config import ContendConfig
from ipc_explorer.lab.stats import LockStats
from ipc_explorer.teach.lessons import Lesson
from ipc_explorer.telemetry.histogram import Histogram
from ipc_explorer.tui.lesson_panel import LessonPanel
from ipc_explorer.tui.live_text import LiveText

TIMELINE_GLYPHS = {
    STARTING: (" ", ""),
    RUNNING: ("·", "grey50"),
    WAITING: ("▒", "red"),
    HOLDING: ("█", "green"),
    DONE: (" ", ""),
    -1: ("‖", "yellow"),  # stopped by SIGSTOP (paused)
}
SPARK = "▁▂▃▄▅▆▇█"
LOCK_COLUMNS = (
    "lock",
    "value",
    "holder",
    "waiting",
    "acq/s",
    "wait µs mean/p99/max",
    "hold µs mean/p99/max",
)


class LabPanels(Vertical):
    """The lab's four panels; ``draw`` fills them from a run (live or replayed)."""

    DEFAULT_CSS = """
    LabPanels {
        height: 1fr;
    }
    """

    def __init__(self, lesson: Lesson | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lesson = lesson

    def compose(self) -> ComposeResult:
        with Horizontal(id="lab-top"):
            with VerticalScroll(id="lab-explain"):  # a lesson's text first, then the scenario's
                if self.lesson is not None:
                    yield LessonPanel(self.lesson.name, self.lesson.text, id="lesson")
                yield Static(id="explanation")
            yield LiveText(id="lab-result")
        yield DataTable(id="lab-locks", cursor_type="none", zebra_stripes=True)
        yield LiveText(id="lab-timeline")

    def on_mount(self) -> None:
        self.query_one("#lab-explain").border_title = "What happens"
        self.query_one("#lab-result").border_title = "Expected vs actual"
        table = self.query_one("#lab-locks", DataTable)
        table.border_title = "Locks and semaphores"
        table.add_columns(*LOCK_COLUMNS)
        self.query_one("#lab-timeline").border_title = "Timeline"

    def show_setup(self, config: ContendConfig, keys: str) -> None:
        """The scenario's explanation, the keys that act on it, and where figures come from."""
        text = Text(SCENARIO_TEXTS[config.scenario])
        text.append(f"\n\n{keys}", "dim")
        text.append("\n\n" + WHERE_FIGURES_COME_FROM, "dim")
        self.query_one("#explanation", Static).update(text)

    def draw(self, run: Any, step_note: str = "") -> None:
        if run is None:
            self.query_one("#lab-result", LiveText).show(Text("not started: press r", "dim"))
            return
        self.query_one("#lab-result", LiveText).show(result_text(run, step_note))
        self._fill_locks(lock_rows(run))
        width = max(10, self.size.width - 30)
        self.query_one("#lab-timeline", LiveText).show(timeline_text(run, width))

    def _fill_locks(self, rows: list[tuple[str, ...]]) -> None:
        table = self.query_one("#lab-locks", DataTable)
        if table.row_count != len(rows):
            table.clear()
            for row in rows:
                table.add_row(*row)
        else:
            for y, row in enumerate(rows):
                for x, cell in enumerate(row):
                    table.update_cell_at((y, x), cell, update_width=True)


def result_text(run: Any, step_note: str = "") -> Text:
    """Expected against actual, in the scenario's own terms, as far as the run has got."""
    out = run.outcome()
    cfg = run.config
    text = Text()
    if run.stepping and step_note:
        text.append("STEP ", "bold reverse")
        text.append(f" {step_note}\n")
    state_style = {"running": "bold cyan", "deadlocked": "bold red", "failed": "bold red"}
    text.append(f"{run.state}", state_style.get(run.state, "bold green"))
    text.append(f"  {run.elapsed_s():.2f} s\n")
    if cfg.scenario == "counter":
        lost = out["lost_updates"]
        text.append(f"expected {out['expected']:>12,}\n")
        text.append(f"actual   {out['actual']:>12,}\n")
        text.append(f"lost     {lost:>12,}\n", "bold red" if lost else "bold green")
        inside = sum(1 for w in run.workers if w.state == HOLDING)
        text.append(f"in the critical section now: {inside}", "red" if inside > 1 else "")
    elif cfg.scenario == "torn":
        torn = out["torn_reads"]
        text.append(f"reads       {out['reads']:>10,}\n")
        text.append(f"torn reads  {torn:>10,}\n", "bold red" if torn else "bold green")
        if cfg.lock == "seqlock":
            text.append(f"retries     {out['retries']:>10,}\n")
        example = out.get("torn_example")
        if example:
            seq = example["seq"]
            text.append(
                f"one: seq {seq} a {example['a']} (≠{3 * seq}) b {example['b']} (≠{7 * seq})",
                "red",
            )
    elif cfg.scenario == "buffer":
        text.append(f"produced       {out['produced']:>9,} of {out['expected']:,}\n")
        if run.state == "running":
            text.append(f"taken so far   {out['received']:>9,}\n")
        else:
            text.append(f"delivered once {out['actual']:>9,}\n")
        bad = out["overwritten"] or out["duplicated"]
        style = "bold red" if bad else "bold green"
        text.append(f"overwritten    {out['overwritten']:>9,}\n", style)
        text.append(f"read twice     {out['duplicated']:>9,}\n", style)
        for label in ("empty", "full"):
            stats = run.stats.get(label)
            if stats is not None and stats.history:
                text.append(f"{label:<6}{_spark(stats, cfg.slots)} {stats.value}\n")
    else:
        text.append(f"rounds {out['actual']:,} of {out['expected']:,}\n")
        if cfg.fix == "timeout":
            text.append(f"back-offs {out['backoffs']:,}\n")
        if out["deadlock_detected"]:
            text.append(f"cycle after {out['detected_after_s']} s:\n", "bold red")
            for edge in out["cycle"]:
                text.append(
                    f" pid {edge['pid']} waits {edge['waits_for_lock']}"
                    f" ← pid {edge['held_by_pid']}\n",
                    "red",
                )
        else:
            edges = run.wait_for_graph() if run.state == "running" else {}
            text.append(f"waiting now: {len(edges)} edge(s) in the wait-for graph")
    if run.error:
        text.append(f"\n{run.error}", "red")
    return text


def lock_rows(run: Any) -> list[tuple[str, ...]]:
    """One row per lock: the kernel's value, holders and waiters, rate, wait and hold times."""
    rows = []

    def rate(s: LockStats) -> float:
        """Live: over the last half second; once ended: over the whole run."""
        if run.state == "running":
            return s.acq_per_s
        return s.acquisitions / max(run.elapsed_s(), 1e-3)

    for label, s in run.stats.items():
        waiting = ",".join(map(str, s.waiting)) or "-"
        if s.kernel_waiters is not None:
            waiting += f" (kernel: {s.kernel_waiters})"
        holder = ",".join(map(str, s.holders)) or "-"
        if s.kernel_last_pid:
            holder += f" (last {s.kernel_last_pid})"
        counting = label in ("empty", "full")
        rows.append(
            (
                f"{label} {s.kind}",
                "-" if s.value is None else str(s.value),
                "counts, not held" if counting else holder,
                waiting,
                f"{rate(s):,.0f}",
                _figures(s.wait),
                "-" if counting else _figures(s.hold),
            )
        )
    if not rows:
        inside = [str(w.pid) for w in run.workers if w.state == HOLDING]
        lock = run.config.lock
        in_cs = "in CS: " + (",".join(inside) or "-")
        rows.append(("no lock" if lock == "none" else lock, "-", in_cs, "-", "-", "-", "-"))
    return rows


def timeline_text(run: Any, width: int) -> Text:
    """A row per worker of its sampled states, newest on the right, and the legend."""
    text = Text()
    for w in run.workers:
        text.append(f"{w.role[:8]:<8} {w.pid:>7} ", "bold")
        for state in list(w.timeline)[-width:]:
            glyph, style = TIMELINE_GLYPHS.get(state, ("?", ""))
            text.append(glyph, style)
        text.append("\n")
    text.append("· running ", "grey50")
    text.append("▒ waiting ", "red")
    text.append("█ holding / in the critical section ", "green")
    text.append("‖ paused ", "yellow")
    text.append(" sampled from the board every 50 ms", "dim")
    return text


def _figures(h: Histogram) -> str:
    if not h.total:
        return "-"
    mean = h.sum / h.total / 1000
    top = h.max / 1000
    p99 = min(h.percentile(99), h.max) / 1000
    return f"{min(mean, top):,.1f}/{p99:,.1f}/{top:,.0f}"


def _spark(stats: LockStats, top: int) -> str:
    values = list(stats.history)[-30:]
    return "".join(SPARK[max(0, min(7, int(v / max(1, top) * 7.999)))] for v in values)
