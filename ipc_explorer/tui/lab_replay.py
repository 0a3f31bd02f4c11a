"""The contention lab on a recording: the lab's panels drawn from the folded records instead
of live workers, with the replay's timeline to play, pause, scrub, step one record either way
and jump to the anomalies (a deadlock, lost updates, a torn read, a worker stuck, an error)."""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header

from ipc_explorer.lab.replay import LabReplay
from ipc_explorer.teach.why import Diagnosis, diagnosis_from_json
from ipc_explorer.tui.contend_screen import STEP_HELD_NOTE
from ipc_explorer.tui.dialogs import TextScreen, keys_help
from ipc_explorer.tui.lab_panels import LabPanels
from ipc_explorer.tui.themes import PROJECTOR_THEME, THEMES, textual_theme
from ipc_explorer.tui.timeline import Timeline
from ipc_explorer.tui.why_screen import WhyScreen

TICK_S = 0.1
SPEEDS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
JUMP_S = 5
KEYS = (
    "A recording: nothing runs. Keys: space play/pause, . and , one record on or back, "
    "n and N the next or previous anomaly (▲ on the bar), + and - speed, [ and ] 5 s, "
    "home and end, w what the why-blocked screen showed when it was recorded, ? help."
)


class LabReplayApp(App[None]):
    CSS_PATH = ["app.tcss", "contend.tcss", "replay.tcss"]
    TITLE = "ipc-explorer replay"
    AUTO_FOCUS = None

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help"),
        Binding("space", "play", "Play/pause"),
        Binding("full_stop", "step(1)", "Record on"),
        Binding("comma", "step(-1)", "Record back"),
        Binding("n", "anomaly(1)", "Next anomaly"),
        Binding("N", "anomaly(-1)", "Previous anomaly", show=False),
        Binding("plus,equals_sign", "speed(1)", "Faster"),
        Binding("minus", "speed(-1)", "Slower"),
        Binding("right_square_bracket", f"jump({JUMP_S})", f"{JUMP_S} s on", show=False),
        Binding("left_square_bracket", f"jump(-{JUMP_S})", f"{JUMP_S} s back", show=False),
        Binding("home", "go(0)", "Start", show=False),
        Binding("end", "go(-1)", "End", show=False),
        Binding("w", "why", "Why blocked"),
        Binding("T", "toggle_theme", "Projector theme", show=False),
        Binding("s", "save_svg", "Screenshot", show=False),
        Binding("1,2,3,4,l,o,p,r,x,R,enter", "live_only", "(live only)", show=False),
    ]

    def __init__(self, replay: LabReplay, theme: str = "default", autoplay: bool = True) -> None:
        super().__init__()
        self.register_theme(PROJECTOR_THEME)
        self.theme = textual_theme(theme)
        self.replay = replay
        self.playing = autoplay
        self.speed = 1.0
        self._t = 0  # where the replay's clock is, in nanoseconds into the recording
        self._wall = time.monotonic()

    def compose(self) -> ComposeResult:
        yield Header()
        yield LabPanels()
        yield Timeline(self.replay.anomalies, id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        cfg = self.replay.run.config
        fix = f" · fix {cfg.fix}" if cfg.scenario == "deadlock" else ""
        name = Path(self.replay.recording.path).name
        self.sub_title = (
            f"{name} · lab: {cfg.scenario} · lock {cfg.lock}{fix} · {cfg.workers} workers · "
            f"{cfg.iterations:,} iterations · critical section {cfg.cs_us} µs"
        )
        self.query_one(LabPanels).show_setup(cfg, KEYS)
        timeline = self.query_one(Timeline)
        timeline.duration = self.replay.recording.duration_ns
        timeline.length = self.replay.length
        self.set_interval(TICK_S, self._tick)
        problem = self.replay.recording.problem
        if problem:
            self.notify(problem, title="the recording is damaged", severity="warning", timeout=12)
        for note in self.replay.recording.notes:
            self.notify(note, title="recording", timeout=8)
        self._go(0)

    # -- the clock -------------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._wall = now - self._wall, now
        if not self.playing:
            return
        self._t += int(elapsed * self.speed * 1e9)
        self._go(self.replay.position_at(self._t), self._t)
        if self.replay.position >= self.replay.length:
            self.playing = False
            self._show_state()

    def _go(self, position: int, t: int | None = None) -> None:
        """Fold the records up to ``position`` and redraw; the clock follows unless given."""
        replay = self.replay
        replay.seek(position)
        self._t = replay.t if t is None else min(t, replay.recording.duration_ns)
        self.query_one(LabPanels).draw(replay.run, self.step_note())
        self._show_state()

    def step_note(self) -> str:
        """What the live screen said of step mode at this point of the run."""
        last = self.replay.run.last_step
        if last is None:
            return ""
        if last["what"] == "step_mode":
            return STEP_HELD_NOTE if last.get("on") else ""
        return last["text"]

    def _show_state(self) -> None:
        timeline = self.query_one(Timeline)
        timeline.t, timeline.position = self._t, self.replay.position
        timeline.playing, timeline.speed = self.playing, self.speed
        timeline.said = self.replay.said()

    # -- keys ------------------------------------------------------------------------------
    def action_play(self) -> None:
        if not self.playing and self.replay.position >= self.replay.length:
            self._go(0)  # at the end, play starts again
        self.playing = not self.playing
        self._show_state()

    def action_step(self, records: int) -> None:
        self.playing = False
        self._go(self.replay.position + records)

    def action_anomaly(self, direction: int) -> None:
        anomaly = self.replay.next_anomaly(direction)
        if anomaly is None:
            self.notify("no anomaly that way", severity="warning")
            return
        self.playing = False
        self._go(anomaly.index)

    def action_speed(self, step: int) -> None:
        index = SPEEDS.index(self.speed) if self.speed in SPEEDS else 2
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, index + step))]
        self._show_state()

    def action_jump(self, seconds: int) -> None:
        t = max(0, self._t + seconds * 1_000_000_000)
        self._go(self.replay.position_at(t), t)

    def action_go(self, position: int) -> None:
        self._go(self.replay.length if position < 0 else position)

    def on_timeline_seek(self, event: Timeline.Seek) -> None:
        self._go(self.replay.position_at(event.t), event.t)

    def action_why(self) -> None:
        """The why-blocked screen as it was recorded last before this point (the live lab
        records what its screen showed while it was open)."""
        if self.replay.run.why is None:
            self.notify(
                "no why-blocked snapshot up to here: w in the live lab, while recording, "
                "records one",
                severity="warning",
            )
            return

        def recorded() -> list[Diagnosis]:
            return [diagnosis_from_json(d) for d in self.replay.run.why or []]

        self.push_screen(WhyScreen(recorded))

    def action_help(self) -> None:
        notes = [
            "",
            "A recording of the contention lab: nothing runs, so the keys that start, stop, "
            "pause or step workers do nothing here. Click on the bar to jump; ▲ marks an "
            "anomaly (a deadlock, lost updates, a torn read, a worker stuck on a lock, an error).",
        ]
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding) and b.action != "live_only"]
        self.push_screen(TextScreen(keys_help(bindings, notes)))

    def action_live_only(self) -> None:
        self.notify("a replay runs no processes: this key acts on a live lab run", timeout=4)

    def action_toggle_theme(self) -> None:
        projector = THEMES["projector"]
        self.theme = THEMES["default"] if self.theme == projector else projector
        self.query_one(Timeline).refresh()

    def action_save_svg(self) -> None:
        path = self.save_screenshot(path=str(Path.cwd()))
        self.notify(f"screenshot saved to {path}")


def run_lab_replay(replay: LabReplay, theme: str = "default") -> None:
    LabReplayApp(replay, theme=theme).run()
