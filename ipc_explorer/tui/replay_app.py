"""The app on a recording: the live app's panels, fed from the records instead of children,
with a timeline to play, pause, scrub, step one record either way and jump to anomalies."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Header

from ipc_explorer.explain.flow import explain
from ipc_explorer.inspector.annotated import annotate_sample
from ipc_explorer.session.replay import Replay
from ipc_explorer.teach.why import Diagnosis, diagnosis_from_json
from ipc_explorer.tui.bytes_view import BytesPanel
from ipc_explorer.tui.dialogs import TextScreen, keys_help
from ipc_explorer.tui.flow import FlowPanel
from ipc_explorer.tui.inspector_screen import inspector_for
from ipc_explorer.tui.sync_view import SyncPanel
from ipc_explorer.tui.themes import PROJECTOR_THEME, THEMES, textual_theme
from ipc_explorer.tui.timeline import Timeline, clock
from ipc_explorer.tui.timing import TimingPanel
from ipc_explorer.tui.why_screen import WhyScreen

TICK_S = 0.1
SPEEDS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
JUMP_S = 5


class ReplayApp(App[None]):
    CSS_PATH = ["app.tcss", "replay.tcss"]
    TITLE = "ipc-explorer replay"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
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
        Binding("d", "inspect", "Inspect"),
        Binding("b", "mark_diff_base", "Diff base", show=False),
        Binding("e", "explain", "Explain"),
        Binding("T", "toggle_theme", "Projector theme", show=False),
        Binding("s", "save_svg", "Screenshot", show=False),
        Binding("w", "why", "Why blocked"),
        Binding("i,k,K,p,m,f,t,r,x,R", "live_only", "(live only)", show=False),
    ]

    def __init__(self, replay: Replay, theme: str = "default", autoplay: bool = True) -> None:
        super().__init__()
        self.register_theme(PROJECTOR_THEME)
        self.theme = textual_theme(theme)
        self.replay = replay
        self.session = replay.session
        self.config = replay.session.config
        self.playing = autoplay
        self.speed = 1.0
        self._t = 0  # where the replay's clock is, in nanoseconds into the recording
        self._wall = time.monotonic()
        self._chosen_sample: dict[str, Any] | None = None
        self._diff_base: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield FlowPanel(id="flow")
                yield SyncPanel(id="sync")
            yield TimingPanel(id="timing")
        yield BytesPanel(id="bytes")
        yield Timeline(self.replay.anomalies, id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        for panel, title in ((FlowPanel, "Flow"), (TimingPanel, "Timing"), (SyncPanel, "Sync")):
            self.query_one(panel).border_title = title
        self.query_one(BytesPanel).border_title = "Bytes"
        cfg = self.config
        rate = "max" if cfg.rate is None else f"{cfg.rate:g}/s"
        name = Path(self.replay.recording.path).name
        self.sub_title = " · ".join((name, cfg.mechanism, cfg.format, cfg.pattern, rate))
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
        back = position < replay.position
        replay.seek(position)
        self._t = replay.t if t is None else min(t, replay.recording.duration_ns)
        if back:  # the panels keep what they were shown: start them again
            self.query_one(FlowPanel).reset()
            self.query_one(TimingPanel).reset()
        self.refresh_panels()
        recent = replay.session.stats.recent
        if recent and self._chosen_sample not in recent:  # gone from the list: the latest
            self.query_one(FlowPanel).show(recent[-1])
        self._show_state()

    def _show_state(self) -> None:
        timeline = self.query_one(Timeline)
        timeline.t, timeline.position = self._t, self.replay.position
        timeline.playing, timeline.speed = self.playing, self.speed
        here = self.replay.position
        steps = self.session.steps
        if steps and steps[-1]["stage"]["narration"]:  # step mode: what the last stage did
            stage = steps[-1]["stage"]
            timeline.said = f"message {stage['seq']}, {stage['stage']}: {stage['narration']}"
            return
        last = next((a for a in reversed(self.replay.anomalies) if a.index <= here), None)
        timeline.said = f"{last.kind} at {clock(last.t)}: {last.text}" if last else ""

    def refresh_panels(self) -> None:
        """Every panel as it was at this moment, the list and the histogram too (a live panel
        paces those; a replay that moved must show them now)."""
        stats, cfg, lossy = self.session.stats, self.config, self.session.lossy
        self.query_one(FlowPanel).update_view(stats, cfg.mechanism, cfg.pattern, lossy, now=True)
        self.query_one(TimingPanel).update_view(stats, cfg.pattern == "ping-pong", now=True)
        self.query_one(SyncPanel).update_view(stats, cfg.mechanism)

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

    def on_flow_panel_message_chosen(self, event: FlowPanel.MessageChosen) -> None:
        self._chosen_sample = event.sample
        self.query_one(BytesPanel).message = annotate_sample(event.sample, self.session.codec)

    def action_inspect(self) -> None:
        cfg = self.config
        self.push_screen(
            inspector_for(
                self.session.stats.recent,
                self._chosen_sample,
                self._diff_base,
                cfg.mechanism,
                cfg.format,
            )
        )

    def action_mark_diff_base(self) -> None:
        sample = self._chosen_sample
        if sample is None or sample.get("truncated"):
            self.notify("select a message in the flow list first, then press b", severity="warning")
            return
        self._diff_base = sample
        self.notify(f"message {sample['seq']} is the diff base: select another, then press d")

    def action_why(self) -> None:
        """The kernel's account of each child as last recorded before this moment (a
        recording made with --record or R takes one every second)."""
        if not self.session.why:
            self.notify("no why-blocked snapshot was recorded before this moment", timeout=4)
            return
        self.push_screen(WhyScreen(self._recorded_why))

    def _recorded_why(self) -> list[Diagnosis]:
        try:
            return [diagnosis_from_json(d) for d in self.session.why]
        except (KeyError, TypeError, ValueError):
            return []

    def action_explain(self) -> None:
        self.push_screen(TextScreen(explain(self.config.mechanism, self.config.format)))

    def action_help(self) -> None:
        notes = [
            "",
            "A recording: nothing runs, so the keys that act on processes (inject, pause, kill, "
            "restart) do nothing here; `w` shows the kernel's account as last recorded. Click "
            "on the bar to jump; ▲ marks an anomaly (loss, damage, a blocked writer, an error).",
        ]
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding) and b.action != "live_only"]
        self.push_screen(TextScreen(keys_help(bindings, notes)))

    def action_live_only(self) -> None:
        self.notify("a replay runs no processes: this key acts on a live session", timeout=4)

    def action_toggle_theme(self) -> None:
        projector = THEMES["projector"]
        self.theme = THEMES["default"] if self.theme == projector else projector
        self.refresh_panels()
        self.query_one(Timeline).refresh()

    def format_title(self, title: str, sub_title: str) -> Content:
        if self.theme != THEMES["projector"] or not sub_title:
            return super().format_title(title, sub_title)
        return Content.assemble(Content(title), " — ", Content(sub_title))

    def action_save_svg(self) -> None:
        path = self.save_screenshot(path=str(Path.cwd()))
        self.notify(f"screenshot saved to {path}")


def run_replay(replay: Replay, theme: str = "default") -> None:
    ReplayApp(replay, theme=theme).run()
