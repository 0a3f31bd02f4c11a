"""The contention lab's screen: one scenario at a time, run live by real worker processes.

Every key that raises or lowers contention (workers, critical-section length, the lock)
restarts the run with the new setting, so what is on screen is always one coherent run.
"""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ipc_explorer.explain.lab import SCENARIOS as SCENARIO_TEXTS
from ipc_explorer.explain.lab import WHERE_FIGURES_COME_FROM
from ipc_explorer.kernel.procfs import ProcessGone
from ipc_explorer.lab.board import DONE, HOLDING, MAX_WORKERS, RUNNING, STARTING, WAITING
from ipc_explorer.lab.config import FIXES, ContendConfig
from ipc_explorer.lab.locks import LOCK_KINDS
from ipc_explorer.lab.run import ContendRun
from ipc_explorer.lab.stats import LockStats
from ipc_explorer.teach.lessons import Lesson
from ipc_explorer.teach.why import Child, Diagnosis, NotAChild, diagnose
from ipc_explorer.telemetry.histogram import Histogram
from ipc_explorer.tui.lesson_panel import LessonPanel
from ipc_explorer.tui.live_text import LiveText
from ipc_explorer.tui.why_screen import WhyScreen

REFRESH_HZ = 10
#: Live runs are longer than the headless defaults, so that there is something to watch.
LIVE_ITERATIONS = {"counter": 200_000, "torn": 2_000_000, "buffer": 1_000_000, "deadlock": 200}
CRITICAL_STEPS_US = [0, 1, 5, 20, 100, 500, 2000, 10000]
TIMELINE_GLYPHS = {
    STARTING: (" ", ""),
    RUNNING: ("·", "grey50"),
    WAITING: ("▒", "red"),
    HOLDING: ("█", "green"),
    DONE: (" ", ""),
    -1: ("‖", "yellow"),  # stopped by SIGSTOP (paused)
}
SPARK = "▁▂▃▄▅▆▇█"
#: A worker's state on the board, in words (its own report).
STATE_WORDS = {
    STARTING: "starting",
    RUNNING: "running",
    WAITING: "waiting for a lock",
    HOLDING: "holding a lock",
    DONE: "done",
}


def live_config(scenario: str, lock: str = "none") -> ContendConfig:
    if scenario == "deadlock" and lock == "none":
        lock = "sem"
    return ContendConfig(scenario=scenario, lock=lock, iterations=LIVE_ITERATIONS[scenario])


class ContendScreen(Screen):
    """Pick a scenario, raise the contention, watch the processes interleave."""

    CSS_PATH = "contend.tcss"
    BINDINGS = [
        Binding("escape", "leave", "Back"),
        Binding("1", "scenario('counter')", "Counter"),
        Binding("2", "scenario('torn')", "Torn"),
        Binding("3", "scenario('buffer')", "Buffer"),
        Binding("4", "scenario('deadlock')", "Deadlock"),
        Binding("l", "cycle_lock", "Lock"),
        Binding("o", "cycle_fix", "Fix"),
        Binding("plus,equals_sign", "workers(1)", "Workers+"),
        Binding("minus", "workers(-1)", "Workers-"),
        Binding("right_square_bracket", "critical(1)", "Longer CS"),
        Binding("left_square_bracket", "critical(-1)", "Shorter CS", show=False),
        Binding("p", "pause_readers", "Pause rx"),
        Binding("enter,r", "rerun", "Run again"),
        Binding("full_stop", "step_lock", "Step"),
        Binding("space", "let_go", "Run freely", show=False),
        Binding("w", "why", "Why blocked"),
        Binding("a", "lesson_answer", "Lesson answer", show=False),
        Binding("x", "stop_run", "Stop", show=False),
    ]

    def __init__(
        self,
        scenario: str = "counter",
        autostart: bool = True,
        config: ContendConfig | None = None,
        lesson: Lesson | None = None,
    ) -> None:
        """``config`` opens on that run (a lesson's), with live-length iterations."""
        super().__init__()
        self.config = (
            replace(config, iterations=LIVE_ITERATIONS[config.scenario])
            if config is not None
            else live_config(scenario)
        )
        self.lesson = lesson
        self.autostart = autostart
        self.run: ContendRun | None = None
        self.paused = False
        #: What the last step did, shown above the figures while step mode is on.
        self.step_note = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="lab-top"):
            with VerticalScroll(id="lab-explain"):  # a lesson's text first, then the scenario's
                if self.lesson is not None:
                    yield LessonPanel(self.lesson.name, self.lesson.text, id="lesson")
                yield Static(id="explanation")
            yield LiveText(id="lab-result")
        yield DataTable(id="lab-locks", cursor_type="none", zebra_stripes=True)
        yield LiveText(id="lab-timeline")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#lab-explain").border_title = "What happens"
        self.query_one("#lab-result").border_title = "Expected vs actual"
        table = self.query_one("#lab-locks", DataTable)
        table.border_title = "Locks and semaphores"
        table.add_columns(
            "lock",
            "value",
            "holder",
            "waiting",
            "acq/s",
            "wait µs mean/p99/max",
            "hold µs mean/p99/max",
        )
        self.query_one("#lab-timeline").border_title = "Timeline"
        self._show_setup()
        self.set_interval(1 / REFRESH_HZ, self.refresh_view)
        if self.autostart:
            self.start_run()

    # -- runs --------------------------------------------------------------------------------
    @work(exclusive=True, group="contend")
    async def start_run(self, stepping: bool = False) -> None:
        await self.stop_run()
        self.paused = False
        run = ContendRun(self.config)
        if stepping:
            run.set_step_mode(True)  # held before the first lock operation
        self.run = run
        try:
            await run.start()
            await run.wait()
        except Exception as exc:  # a worker that cannot start: say it, stay usable
            self.notify(f"{type(exc).__name__}: {exc}", title="cannot run", severity="error")
        if not self.is_mounted:  # the screen was closed while the run ended
            return
        self.refresh_view()
        if run.state == "deadlocked":
            self.notify(
                "deadlock: every process in the cycle waits for a lock the next one holds; "
                "press o for a fix",
                title="deadlock detected",
                severity="warning",
                timeout=8,
            )

    async def stop_run(self) -> None:
        if self.run is not None:
            await self.run.stop()

    def on_unmount(self) -> None:
        self.kill_now()  # the screen is gone (back, or the app quitting): so is its run

    def kill_now(self) -> None:
        if self.run is not None:
            self.run.kill_now()

    def _restart(self, **changes: object) -> None:
        self.config = replace(self.config, **changes)  # type: ignore[arg-type]
        self.config.validate()
        self._show_setup()
        self.start_run()

    # -- actions -----------------------------------------------------------------------------
    async def action_leave(self) -> None:
        await self.stop_run()
        self.dismiss()

    def action_scenario(self, scenario: str) -> None:
        # seqlock and condvar belong to one scenario each: another starts without a lock
        keep = self.config.lock if self.config.lock in LOCK_KINDS else "none"
        self.config = live_config(scenario, keep)
        self._show_setup()
        self.start_run()

    def action_cycle_lock(self) -> None:
        extra = {"torn": ["seqlock"], "buffer": ["condvar"]}.get(self.config.scenario, [])
        kinds = list(LOCK_KINDS) + extra
        if self.config.scenario == "deadlock":
            kinds = ["sem", "sysv"]
        index = kinds.index(self.config.lock) if self.config.lock in kinds else -1
        self._restart(lock=kinds[(index + 1) % len(kinds)])

    def action_cycle_fix(self) -> None:
        if self.config.scenario != "deadlock":
            self.notify("fixes are for the deadlock scenario (4)", severity="warning")
            return
        self._restart(fix=FIXES[(FIXES.index(self.config.fix) + 1) % len(FIXES)])

    def action_workers(self, step: int) -> None:
        workers = max(2, min(MAX_WORKERS, (self.config.workers or 2) + step))
        self._restart(workers=workers)

    def action_critical(self, step: int) -> None:
        current = self.config.cs_us or 0
        steps = CRITICAL_STEPS_US
        index = min(range(len(steps)), key=lambda i: abs(steps[i] - current))
        index = max(0, min(len(steps) - 1, index + step))
        self._restart(cs_us=steps[index])

    def action_pause_readers(self) -> None:
        run = self.run
        if self.config.scenario not in ("buffer", "torn"):
            self.notify("pausing is for the buffer's consumers (3) and the record's readers (2)")
            return
        if run is None or run.state != "running":
            self.notify("the run has ended: press r to run again, then p")
            return
        self.paused = not self.paused
        run.pause_consumers(self.paused)
        what = "consumers" if self.config.scenario == "buffer" else "readers"
        self.notify(
            f"{what} {'stopped (SIGSTOP)' if self.paused else 'resumed (SIGCONT)'}"
            + (": watch 'empty' fall to 0 and the producer wait" if self.paused else "")
        )

    def action_step_lock(self) -> None:
        """Step mode: hold every worker before its next lock operation; each press lets one
        (the next at the barrier, in turn) do one."""
        cfg = self.config
        if cfg.lock in ("none", "seqlock") and cfg.scenario != "counter":
            self.notify(
                "this run takes no lock, so there is no lock operation to step through: "
                "l chooses a lock",
                severity="warning",
            )
            return
        run = self.run
        if run is None or run.state != "running":  # a new run, held from its first operation
            self.step_note = "held: each . lets one worker do one lock operation, space lets go"
            self._show_setup()
            self.start_run(stepping=True)
            return
        if not run.stepping:
            run.set_step_mode(True)
            self.step_note = "held: each . lets one worker do one lock operation, space lets go"
            self.refresh_view()
            return
        chosen = run.step()
        if chosen is not None:
            self.step_note = (
                f"worker {chosen['worker']} (pid {chosen['pid']}): {chosen['operation']} "
                f"{chosen['lock']}"
            )
        elif run.workers and all(w.state == WAITING for w in run.workers if w.exit_code is None):
            self.step_note = "nobody can move: every worker waits for a lock another holds"
        else:
            self.step_note = "no worker at the barrier yet (a lock operation is under way)"
        self.refresh_view()

    def action_let_go(self) -> None:
        if self.run is not None and self.run.stepping:
            self.run.set_step_mode(False)
            self.step_note = ""
            self.notify("step mode left: the workers run freely")

    def action_why(self) -> None:
        run = self.run
        if run is None or not run.workers:
            self.notify("no worker to look at: press r to run")
            return

        def diagnoses() -> list[Diagnosis]:
            held = {h["pid"]: h for h in run.held_workers()}
            found = []
            for w in run.workers:
                if w.exit_code is not None:
                    continue
                said = {"state": STATE_WORDS.get(w.state, "?")}
                if w.pid in held:
                    said["op"] = f"held before {held[w.pid]['operation']} {held[w.pid]['lock']}"
                try:
                    child = Child(w.pid, "contender")
                    found.append(diagnose(w.pid, child=child, peer=None, said=said))
                except (ProcessGone, NotAChild):
                    continue
            return found

        self.app.push_screen(WhyScreen(diagnoses))

    def action_lesson_answer(self) -> None:
        panels = self.query(LessonPanel)
        if panels:
            panels.first().answer_shown = not panels.first().answer_shown

    def action_rerun(self) -> None:
        self.step_note = ""
        self._show_setup()
        self.start_run()

    async def action_stop_run(self) -> None:
        await self.stop_run()

    # -- drawing -----------------------------------------------------------------------------
    def _show_setup(self) -> None:
        cfg = self.config
        fix = f" · fix {cfg.fix}" if cfg.scenario == "deadlock" else ""
        self.sub_title = (
            f"lab: {cfg.scenario} · lock {cfg.lock}{fix} · {cfg.workers} workers · "
            f"{cfg.iterations:,} iterations · critical section {cfg.cs_us} µs"
        )
        text = Text(SCENARIO_TEXTS[cfg.scenario])
        text.append(
            "\n\nKeys: 1-4 scenario, l lock, +/- workers, [ and ] critical section, "
            "p pause consumers/readers, o deadlock fix, r run again, . one lock operation "
            "at a time (space lets go), w why each worker is blocked.",
            "dim",
        )
        text.append("\n\n" + WHERE_FIGURES_COME_FROM, "dim")
        self.query_one("#explanation", Static).update(text)

    def refresh_view(self) -> None:
        try:
            self._refresh_view()
        except NoMatches:  # the screen is being taken down while a run ends
            pass

    def _refresh_view(self) -> None:
        run = self.run
        if run is None:
            self.query_one("#lab-result", LiveText).show(Text("not started: press r", "dim"))
            return
        self.query_one("#lab-result", LiveText).show(self._result_text(run))
        self._fill_locks(run)
        self.query_one("#lab-timeline", LiveText).show(self._timeline_text(run))

    def _result_text(self, run: ContendRun) -> Text:
        out = run.outcome()
        cfg = run.config
        text = Text()
        if run.stepping and self.step_note:
            text.append("STEP ", "bold reverse")
            text.append(f" {self.step_note}\n")
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

    def _fill_locks(self, run: ContendRun) -> None:
        table = self.query_one("#lab-locks", DataTable)
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
            rows.append(
                (
                    "no lock" if self.config.lock == "none" else self.config.lock,
                    "-",
                    "in CS: " + (",".join(inside) or "-"),
                    "-",
                    "-",
                    "-",
                    "-",
                )
            )
        if table.row_count != len(rows):
            table.clear()
            for row in rows:
                table.add_row(*row)
        else:
            for y, row in enumerate(rows):
                for x, cell in enumerate(row):
                    table.update_cell_at((y, x), cell, update_width=True)

    def _timeline_text(self, run: ContendRun) -> Text:
        width = max(10, self.size.width - 30)
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
    return "".join(SPARK[min(7, int(v / max(1, top) * 7.999))] for v in values)
