"""The contention lab on a recording: the lab's panels drawn from the folded records instead
of live workers, with the replay's timeline to play, pause, scrub, step one record either way
and jump to the anomalies (a deadlock, lost updates, a torn read, a worker stuck, an error)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header

from ipc_explorer.lab.replay import LabReplay
from ipc_explorer.teach.why import Diagnosis, diagnosis_from_json
from ipc_explorer.tui.contend_screen import STEP_HELD_NOTE
from ipc_explorer.tui.lab_panels import LabPanels
from ipc_explorer.tui.player import PlayerApp
from ipc_explorer.tui.timeline import Timeline
from ipc_explorer.tui.why_screen import WhyScreen

KEYS = (
    "A recording: nothing runs. Keys: space play/pause, . and , one record on or back, "
    "n and N the next or previous anomaly (▲ on the bar), + and - speed, [ and ] 5 s, "
    "home and end, w what the why-blocked screen showed when it was recorded, ? help."
)


class LabReplayApp(PlayerApp):
    CSS_PATH = ["app.tcss", "contend.tcss", "replay.tcss"]
    HELP_NOTE = (
        "A recording of the contention lab: nothing runs, so the keys that start, stop, "
        "pause or step workers do nothing here. Click on the bar to jump; ▲ marks an "
        "anomaly (a deadlock, lost updates, a torn read, a worker stuck on a lock, an error)."
    )
    LIVE_ONLY_NOTE = "a replay runs no processes: this key acts on a live lab run"

    BINDINGS = [
        *PlayerApp.PLAYER_BINDINGS,
        Binding("w", "why", "Why blocked"),
        Binding("1,2,3,4,l,o,p,r,x,R,enter", "live_only", "(live only)", show=False),
    ]

    replay: LabReplay

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
        self.start_player()

    def draw(self, back: bool) -> None:
        self.query_one(LabPanels).draw(self.replay.run, self.step_note())

    def said(self) -> str:
        return self.replay.said()

    def step_note(self) -> str:
        """What the live screen said of step mode at this point of the run."""
        last = self.replay.run.last_step
        if last is None:
            return ""
        if last["what"] == "step_mode":
            return STEP_HELD_NOTE if last.get("on") else ""
        return last["text"]

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


def run_lab_replay(replay: LabReplay, theme: str = "default") -> None:
    LabReplayApp(replay, theme=theme).run()
