"""The app on a recording: the live app's panels, fed from the records instead of children,
with a timeline to play, pause, scrub, step one record either way and jump to anomalies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header

from ipc_explorer.explain.flow import explain
from ipc_explorer.inspector.annotated import annotate_sample
from ipc_explorer.session.replay import Replay
from ipc_explorer.teach.why import Diagnosis, diagnosis_from_json
from ipc_explorer.tui.bytes_view import BytesPanel
from ipc_explorer.tui.dialogs import TextScreen
from ipc_explorer.tui.flow import FlowPanel
from ipc_explorer.tui.inspector_screen import inspector_for, marked_diff_base
from ipc_explorer.tui.player import PlayerApp
from ipc_explorer.tui.sync_view import SyncPanel
from ipc_explorer.tui.timeline import Timeline, clock
from ipc_explorer.tui.timing import TimingPanel
from ipc_explorer.tui.why_screen import WhyScreen


class ReplayApp(PlayerApp):
    CSS_PATH = ["app.tcss", "replay.tcss"]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    HELP_NOTE = (
        "A recording: nothing runs, so the keys that act on processes (inject, pause, kill, "
        "restart) do nothing here; `w` shows the kernel's account as last recorded. Click "
        "on the bar to jump; ▲ marks an anomaly (loss, damage, a blocked writer, an error)."
    )
    LIVE_ONLY_NOTE = "a replay runs no processes: this key acts on a live session"

    BINDINGS = [
        *PlayerApp.PLAYER_BINDINGS,
        Binding("d", "inspect", "Inspect"),
        Binding("b", "mark_diff_base", "Diff base", show=False),
        Binding("e", "explain", "Explain"),
        Binding("w", "why", "Why blocked"),
        Binding("i,k,K,p,m,f,t,r,x,R", "live_only", "(live only)", show=False),
    ]

    replay: Replay

    def __init__(self, replay: Replay, theme: str = "default", autoplay: bool = True) -> None:
        super().__init__(replay, theme, autoplay)
        self.session = replay.session
        self.config = replay.session.config
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
        self.start_player()

    def draw(self, back: bool) -> None:
        if back:  # the panels keep what they were shown: start them again
            self.query_one(FlowPanel).reset()
            self.query_one(TimingPanel).reset()
        self.refresh_panels()
        recent = self.session.stats.recent
        if recent and self._chosen_sample not in recent:  # gone from the list: the latest
            self.query_one(FlowPanel).show(recent[-1])

    def said(self) -> str:
        steps = self.session.steps
        if steps and steps[-1]["stage"]["narration"]:  # step mode: what the last stage did
            stage = steps[-1]["stage"]
            return f"message {stage['seq']}, {stage['stage']}: {stage['narration']}"
        here = self.replay.position
        last = next((a for a in reversed(self.replay.anomalies) if a.index <= here), None)
        return f"{last.kind} at {clock(last.t)}: {last.text}" if last else ""

    def refresh_panels(self) -> None:
        """Every panel as it was at this moment, the list and the histogram too (a live panel
        paces those; a replay that moved must show them now)."""
        stats, cfg, lossy = self.session.stats, self.config, self.session.lossy
        self.query_one(FlowPanel).update_view(stats, cfg.mechanism, cfg.pattern, lossy, now=True)
        self.query_one(TimingPanel).update_view(stats, cfg.pattern == "ping-pong", now=True)
        self.query_one(SyncPanel).update_view(stats, cfg.mechanism)

    # -- keys of a session's replay --------------------------------------------------------
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
        self._diff_base = marked_diff_base(self._chosen_sample, self.notify) or self._diff_base

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


def run_replay(replay: Replay, theme: str = "default") -> None:
    ReplayApp(replay, theme=theme).run()
