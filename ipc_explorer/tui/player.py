"""What every replay screen shares: the clock that plays a recording at a chosen speed, the
keys that move through it (play, a record on or back, an anomaly, 5 s, start and end), the
timeline under the panels, and the theme. A replay app says what it draws (``draw``) and
what to say on the timeline (``said``); its replay folds records up to a position."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual.app import App
from textual.binding import Binding
from textual.content import Content

from ipc_explorer.tui.dialogs import TextScreen, keys_help
from ipc_explorer.tui.themes import PROJECTOR_THEME, THEMES, textual_theme
from ipc_explorer.tui.timeline import Timeline

TICK_S = 0.1
SPEEDS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
JUMP_S = 5


class Replayable(Protocol):
    """A recording folded up to ``position`` (a session's Replay, the lab's LabReplay)."""

    recording: Any
    anomalies: list[Any]
    position: int

    @property
    def length(self) -> int: ...

    @property
    def t(self) -> int: ...

    def seek(self, position: int) -> None: ...

    def position_at(self, t: int) -> int: ...

    def next_anomaly(self, direction: int = 1) -> Any: ...


class PlayerApp(App[None]):
    TITLE = "ipc-explorer replay"
    AUTO_FOCUS = None
    #: What help says beside the keys; the live-only keys' notice.
    HELP_NOTE: ClassVar[str] = ""
    LIVE_ONLY_NOTE: ClassVar[str] = "a replay runs no processes: this key acts on a live run"

    PLAYER_BINDINGS: ClassVar[list[Binding]] = [
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
        Binding("T", "toggle_theme", "Projector theme", show=False),
        Binding("s", "save_svg", "Screenshot", show=False),
    ]

    def __init__(self, replay: Replayable, theme: str = "default", autoplay: bool = True) -> None:
        super().__init__()
        self.register_theme(PROJECTOR_THEME)
        self.theme = textual_theme(theme)
        self.replay = replay
        self.playing = autoplay
        self.speed = 1.0
        self._t = 0  # where the replay's clock is, in nanoseconds into the recording
        self._wall = time.monotonic()

    # -- what a replay app says ------------------------------------------------------------
    def draw(self, back: bool) -> None:
        """Draw the panels at the replay's position (``back``: it moved backwards)."""

    def said(self) -> str:
        """What the timeline says of this moment."""
        return ""

    # -- the clock -------------------------------------------------------------------------
    def start_player(self) -> None:
        """From on_mount: the timeline's extent, the clock, what the file itself says."""
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
        self.draw(back)
        self._show_state()

    def _show_state(self) -> None:
        timeline = self.query_one(Timeline)
        timeline.t, timeline.position = self._t, self.replay.position
        timeline.playing, timeline.speed = self.playing, self.speed
        timeline.said = self.said()

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

    def action_help(self) -> None:
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding) and b.action != "live_only"]
        self.push_screen(TextScreen(keys_help(bindings, ["", self.HELP_NOTE])))

    def action_live_only(self) -> None:
        self.notify(self.LIVE_ONLY_NOTE, timeout=4)

    def action_toggle_theme(self) -> None:
        projector = THEMES["projector"]
        self.theme = THEMES["default"] if self.theme == projector else projector
        self.draw(back=False)
        self.query_one(Timeline).refresh()

    def format_title(self, title: str, sub_title: str) -> Content:
        """On a projector the sub-title (what is replayed) must stay readable, not dimmed."""
        if self.theme != THEMES["projector"] or not sub_title:
            return super().format_title(title, sub_title)
        return Content.assemble(Content(title), " — ", Content(sub_title))

    def action_save_svg(self) -> None:
        path = self.save_screenshot(path=str(Path.cwd()))
        self.notify(f"screenshot saved to {path}")
