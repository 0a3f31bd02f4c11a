"""The contention lab's screen: one scenario at a time, run live by real worker processes.

Every key that raises or lowers contention (workers, critical-section length, the lock)
restarts the run with the new setting, so what is on screen is always one coherent run.
R records the run to a file (lab/recording.py) until it ends, the screen is left or R again.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header

from ipc_explorer.kernel.procfs import ProcessGone
from ipc_explorer.lab.board import DONE, HOLDING, MAX_WORKERS, RUNNING, STARTING, WAITING
from ipc_explorer.lab.config import FIXES, ContendConfig
from ipc_explorer.lab.locks import LOCK_KINDS
from ipc_explorer.lab.recording import LabRecorder
from ipc_explorer.lab.run import ContendRun, describe_step
from ipc_explorer.teach.lessons import Lesson
from ipc_explorer.teach.why import Child, Diagnosis, NotAChild, diagnose
from ipc_explorer.telemetry.recording import RecordingError
from ipc_explorer.tui.lab_panels import LabPanels
from ipc_explorer.tui.lesson_panel import LessonPanel
from ipc_explorer.tui.why_screen import WhyScreen

REFRESH_HZ = 10
#: Live runs are longer than the headless defaults, so that there is something to watch.
LIVE_ITERATIONS = {"counter": 200_000, "torn": 2_000_000, "buffer": 1_000_000, "deadlock": 200}
CRITICAL_STEPS_US = [0, 1, 5, 20, 100, 500, 2000, 10000]
KEYS = (
    "Keys: 1-4 scenario, l lock, +/- workers, [ and ] critical section, "
    "p pause consumers/readers, o deadlock fix, r run again, . one lock operation "
    "at a time (space lets go), w why each worker is blocked, R record the run to a file."
)
STEP_HELD_NOTE = "held: each . lets one worker do one lock operation, space lets go"
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
        Binding("R", "record", "Record", show=False),
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
        self.recorder: LabRecorder | None = None
        #: R with no run going on: the next run is recorded from its start.
        self._record_next = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield LabPanels(self.lesson)
        yield Footer()

    def on_mount(self) -> None:
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
        if self._record_next:
            self._record_next = False
            self._start_recording(run)
        try:
            await run.start()
            await run.wait()
        except Exception as exc:  # a worker that cannot start: say it, stay usable
            self.notify(f"{type(exc).__name__}: {exc}", title="cannot run", severity="error")
        finally:  # a run that was stopped (not ended) is closed by whoever stopped it
            if run.state not in ("starting", "running"):
                self._stop_recording(run)
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
            self._stop_recording(self.run)

    def on_unmount(self) -> None:
        self.kill_now()  # the screen is gone (back, or the app quitting): so is its run
        self._stop_recording(say=False)

    def kill_now(self) -> None:
        if self.run is not None:
            self.run.kill_now()

    # -- recording ---------------------------------------------------------------------------
    def action_record(self) -> None:
        """R: record the run going on from here (or the next one from its start); R again,
        the run's end or leaving the screen closes the file."""
        if self.recorder is not None:
            self._stop_recording()
        elif self.run is not None and self.run.state in ("starting", "running"):
            self._start_recording(self.run)
        else:
            self._record_next = True
            self.step_note = ""
            self.start_run()

    def _start_recording(self, run: ContendRun) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, again = f"ipcx-lab-{stamp}.ipcx", 2
        while Path(path).exists():  # two runs recorded within a second: keep both
            path, again = f"ipcx-lab-{stamp}-{again}.ipcx", again + 1
        try:
            self.recorder = LabRecorder(run, path, command="app")
        except RecordingError as exc:
            self.notify(str(exc), title="not recording", severity="error", timeout=10)
            return
        self.recorder.start()
        self._show_setup()
        self.notify(f"recording the lab run to {path}: R stops, `ipc-explorer replay` plays it")

    def _stop_recording(self, run: ContendRun | None = None, say: bool = True) -> None:
        """Close the file with the run's summary so far (only ``run``'s, when given), and say
        where it is (``say``: not while the screen is being taken down)."""
        recorder = self.recorder
        if recorder is None or (run is not None and recorder.run is not run):
            return
        self.recorder = None
        recorder.close()
        if say and self.is_mounted:
            self.notify(recorder.said(), title="recording saved", timeout=10)
            try:
                self._show_setup()
            except NoMatches:  # the screen is being taken down
                pass

    def _record_why(self, diagnoses: list[dict]) -> None:
        if self.recorder is not None:
            self.recorder.add_why(diagnoses)

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
            self.step_note = STEP_HELD_NOTE
            self._show_setup()
            self.start_run(stepping=True)
            return
        if not run.stepping:
            run.set_step_mode(True)
            self.step_note = STEP_HELD_NOTE
            self.refresh_view()
            return
        chosen = run.step()
        if chosen is not None:
            self.step_note = describe_step(chosen)
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
            if self.recorder is not None:  # what the screen shows goes to the recording too
                self.app.call_from_thread(self._record_why, [d.as_json() for d in found])
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
        recording = "  ● recording" if self.recorder is not None else ""
        self.sub_title = (
            f"lab: {cfg.scenario} · lock {cfg.lock}{fix} · {cfg.workers} workers · "
            f"{cfg.iterations:,} iterations · critical section {cfg.cs_us} µs{recording}"
        )
        self.query_one(LabPanels).show_setup(cfg, KEYS)

    def refresh_view(self) -> None:
        try:
            self.query_one(LabPanels).draw(self.run, self.step_note)
        except NoMatches:  # the screen is being taken down while a run ends
            pass
