"""ipc-explorer's Textual app: one session of the engine, drawn live.

The engine runs in this process's event loop (children are started from the loop's thread, so
PR_SET_PDEATHSIG stays armed); panels are refreshed from the engine's state at a fixed rate,
never per message, and engine events arrive as Textual messages.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import os
import signal
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header

from ipc_explorer.codecs import CodecError, codec_names, get_codec
from ipc_explorer.codecs.sample import sample_payload
from ipc_explorer.explain.flow import explain
from ipc_explorer.explain.step import LEFT as LEFT_STEP_MODE
from ipc_explorer.inspector.annotated import annotate_sample
from ipc_explorer.session import (
    PATTERNS,
    ChildExited,
    ChildReported,
    EngineEvent,
    Progress,
    Session,
    SessionConfig,
    SessionError,
    UsageError,
)
from ipc_explorer.teach.lessons import Lesson
from ipc_explorer.teach.why import session_diagnoses
from ipc_explorer.telemetry.recording import DEFAULT_LIMIT_MIB
from ipc_explorer.transports import MECHANISMS, MessageTooLarge, TransportError
from ipc_explorer.transports import shutdown as shutdown_transports
from ipc_explorer.tui.bytes_view import BytesPanel
from ipc_explorer.tui.contend_screen import ContendScreen
from ipc_explorer.tui.dialogs import ChoiceScreen, InjectScreen, TextScreen, keys_help
from ipc_explorer.tui.flow import FlowPanel
from ipc_explorer.tui.inspector_screen import inspector_for, marked_diff_base
from ipc_explorer.tui.lesson_panel import LessonPanel
from ipc_explorer.tui.recording_switch import RecordingSwitch
from ipc_explorer.tui.step_bar import StepBar
from ipc_explorer.tui.sync_view import SyncPanel
from ipc_explorer.tui.themes import PROJECTOR_THEME, THEMES, textual_theme
from ipc_explorer.tui.timing import TimingPanel
from ipc_explorer.tui.why_screen import WhyScreen

#: Rates the +/- keys step through; None is "as fast as possible".
RATES: list[float | None] = [1, 10, 100, 1000, 10_000, None]
SIZES = [0, 16, 64, 256, 1024, 4096, 16384, 65536]
REFRESH_HZ = 10
#: The children run at this niceness under the app, so that on a 2-core machine the UI still
#: gets the CPU at once when a key is pressed while both children run flat out.
APP_NICE = 10
#: After SIGTERM/SIGHUP, the longest a clean quit may take before the app exits regardless.
HARD_EXIT_AFTER_S = 4.0
#: Seconds after start-up at which the objects then alive (Textual's widgets, styles, caches)
#: are moved out of the garbage collector's reach: a full collection over them took ~70 ms
#: here, a stall a key press would wait for several times a minute at full rate.
GC_FREEZE_AFTER_S = 2.0


class EngineNotice(Message):
    """An engine event, delivered on the app's message queue."""

    def __init__(self, event: EngineEvent) -> None:
        super().__init__()
        self.event = event


class IpcExplorerApp(App[None]):
    CSS_PATH = ["app.tcss", "teach.tcss"]
    TITLE = "ipc-explorer"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    # Nothing focused at start: a focused message list holds still, and it should follow.
    # (Each dialog names what it focuses.)
    AUTO_FOCUS = None

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help"),
        Binding("space", "toggle_flow", "Pause"),
        Binding("plus,equals_sign", "rate(1)", "Rate+"),
        Binding("minus", "rate(-1)", "Rate-"),
        Binding("i", "inject", "Inject"),
        Binding("m", "choose_mechanism", "Mechanism"),
        Binding("f", "choose_format", "Format"),
        Binding("t", "toggle_pattern", "Pattern"),
        Binding("p", "toggle_receiver", "Pause rx"),
        Binding("k", "kill('receiver')", "Kill rx"),
        Binding("K", "kill('sender')", "Kill tx", show=False),
        Binding("r", "restart", "Restart"),
        Binding("x", "stop", "Stop", show=False),
        Binding("e", "explain", "Explain"),
        Binding("c", "contend", "Contention lab"),
        Binding("d", "inspect", "Inspect"),
        Binding("b", "mark_diff_base", "Diff base", show=False),
        Binding("right_square_bracket", "size(1)", "Size+", show=False),
        Binding("left_square_bracket", "size(-1)", "Size-", show=False),
        Binding("n", "toggle_nagle", "Nagle", show=False),
        Binding("s", "save_svg", "Screenshot", show=False),
        Binding("T", "toggle_theme", "Projector theme", show=False),
        Binding("full_stop", "step", "Step"),
        Binding("w", "why", "Why blocked"),
        Binding("a", "lesson_answer", "Lesson answer", show=False),
        Binding("R", "record", "Record to a file (again: stop)", show=False),
    ]

    def __init__(
        self,
        config: SessionConfig,
        live: bool = True,
        theme: str = "default",
        lesson: Lesson | None = None,
        record: str | None = None,
        record_limit: float = DEFAULT_LIMIT_MIB,
    ) -> None:
        """``live=False`` starts no session and no refresh timer: the caller sets ``session``
        and calls ``refresh_panels`` (snapshot tests draw recorded telemetry that way).
        ``theme`` is "default" or "projector" (high contrast); UsageError for another name.
        ``lesson`` opens on a lesson: its text beside the panels, or the lab it is about."""
        super().__init__()
        self.lesson = lesson
        self.register_theme(PROJECTOR_THEME)
        self.theme = textual_theme(theme)
        self.config = replace(config, count=None, nice=max(config.nice, APP_NICE))
        self.session: Session | None = None
        self.flow_paused = False
        self.receiver_paused = False
        self.live = live
        self.lab: ContendScreen | None = None
        self._chosen_sample: dict[str, Any] | None = None
        self._diff_base: dict[str, Any] | None = None
        self._selected_seq: int | None = None
        self._want_injected = False
        self._refresh_failed = False
        self.recording = RecordingSwitch(self.notify, record, record_limit)

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield FlowPanel(id="flow")
                yield SyncPanel(id="sync")
            yield TimingPanel(id="timing")
        yield BytesPanel(id="bytes")
        if self.lesson is not None and self.lesson.face != "lab":
            yield LessonPanel(self.lesson.name, self.lesson.text, id="lesson")
        yield StepBar(id="step-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(FlowPanel).border_title = "Flow"
        self.query_one(TimingPanel).border_title = "Timing"
        self.query_one(SyncPanel).border_title = "Sync"
        self.query_one(BytesPanel).border_title = "Bytes"
        loop = asyncio.get_running_loop()
        # Textual runs no unmount handler on SIGTERM or a closed terminal: stop cleanly here.
        # A plain signal handler (not the loop's): it runs even if drawing is stuck.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: self._on_terminate(loop, signum))
        atexit.register(self._kill_now)
        self._update_subtitle()
        if self.live:
            self.set_interval(1 / REFRESH_HZ, self.refresh_panels)
            self.set_timer(GC_FREEZE_AFTER_S, self._freeze_heap)
            self.start_session()
        if self.lesson is not None and self.lesson.face == "lab":
            self.call_after_refresh(self.action_contend)

    # -- the session -------------------------------------------------------------------------
    def _on_engine_event(self, event: EngineEvent) -> None:
        self.post_message(EngineNotice(event))

    @work(exclusive=True, group="session")
    async def start_session(self) -> None:
        """(Re)start the children with the current configuration."""
        self.query_one(StepBar).reset()
        await self._stop_session()
        self.flow_paused = self.receiver_paused = False
        self.query_one(FlowPanel).reset()
        self.query_one(TimingPanel).reset()
        self.query_one(BytesPanel).message = None
        session = Session(self.config, self._on_engine_event)
        self.session = session
        self.recording.session_created(session)
        self._update_subtitle()
        try:
            await session.start()
            self.query_one(FlowPanel).border_subtitle = ""
        except (UsageError, TransportError, SessionError, CodecError) as exc:
            self.notify(str(exc), title="cannot start", severity="error", timeout=10)
        except Exception as exc:  # never a traceback in the user's face: say it, stay usable
            self.notify(f"{type(exc).__name__}: {exc}", title="cannot start", severity="error")

    async def _stop_session(self) -> None:
        if self.session is not None:
            await self.session.stop(drain=False)
        self.recording.stop()

    def _freeze_heap(self) -> None:
        gc.collect()
        gc.freeze()

    def _kill_now(self) -> None:
        if self.session is not None:
            self.session.kill_now()
        if self.lab is not None:
            self.lab.kill_now()

    def _on_terminate(self, loop: asyncio.AbstractEventLoop, signum: int) -> None:
        """Quit cleanly; if that cannot finish (a terminal gone mid-write can block the
        drawing), kill the children and remove the kernel objects anyway, then exit."""
        loop.call_soon_threadsafe(self.call_later, self.action_quit)

        def hard_exit() -> None:
            self._kill_now()
            os._exit(128 + signum)

        timer = threading.Timer(HARD_EXIT_AFTER_S, hard_exit)
        timer.daemon = True
        timer.start()

    def on_engine_notice(self, notice: EngineNotice) -> None:
        event = notice.event
        if isinstance(event, Progress):  # a slow set-up step: said where the flow will be
            self.query_one(FlowPanel).border_subtitle = event.message
            return
        if isinstance(event, ChildReported):
            if event.kind in ("error", "peer-closed"):
                self.notify(
                    event.message,
                    title=f"{event.side}: {event.reason or event.kind}",
                    severity="error",
                    timeout=8,
                )
            elif event.kind == "inject-rejected":
                self.notify(event.message, title="not sent", severity="warning")
        elif isinstance(event, ChildExited) and not event.expected:
            self.notify(f"{event.message}; press r to restart", title=event.side, severity="error")

    def refresh_panels(self) -> None:
        try:
            self._refresh_panels()
        except Exception as exc:  # a drawing bug must not take the session down with it
            if not self._refresh_failed:
                self.notify(f"{type(exc).__name__}: {exc}", title="display error", severity="error")
            self._refresh_failed = True

    def _refresh_panels(self) -> None:
        session = self.session
        if session is None:
            return
        stats = session.stats
        cfg = self.config
        self.query_one(FlowPanel).update_view(stats, cfg.mechanism, cfg.pattern, session.lossy)
        self.query_one(TimingPanel).update_view(stats, cfg.pattern == "ping-pong")
        self.query_one(SyncPanel).update_view(stats, cfg.mechanism)
        if self._want_injected:
            injected = next((s for s in reversed(stats.recent) if s.get("injected")), None)
            if injected is not None:
                self._want_injected = False
                self.query_one(FlowPanel).show(injected)

    def on_flow_panel_message_chosen(self, event: FlowPanel.MessageChosen) -> None:
        if self.session is None:
            return
        self._chosen_sample = event.sample
        self.query_one(BytesPanel).message = annotate_sample(event.sample, self.session.codec)

    def _update_subtitle(self) -> None:
        cfg = self.config
        rate = "max" if cfg.rate is None else f"{cfg.rate:g}/s"
        nagle = "  Nagle on" if cfg.options.nagle else ""
        recording = "  ● recording" if self.recording.active else ""
        parts = (cfg.mechanism, cfg.format, cfg.pattern, f"{cfg.size} B", rate)
        self.sub_title = " · ".join(parts) + nagle + recording

    # -- actions ---------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if self.lab is not None:
            await self.lab.stop_run()
        await self._stop_session()
        await shutdown_transports()  # a private broker, if one was started
        self.exit()

    def action_toggle_flow(self) -> None:
        if self.session is None:
            return
        step_bar = self.query_one(StepBar)
        if step_bar.active:  # space leaves step mode: the flow goes on at its rate
            self.run_worker(step_bar.leave(), group="step")
            self.notify(LEFT_STEP_MODE)
            return
        self.flow_paused = not self.flow_paused
        (self.session.pause if self.flow_paused else self.session.resume)("sender")
        # Said on the flow panel's border: a header change would repaint the whole screen.
        flow = self.query_one(FlowPanel)
        flow.border_subtitle = "flow paused (space resumes)" if self.flow_paused else ""

    def action_toggle_receiver(self) -> None:
        if self.session is None:
            return
        if self.query_one(StepBar).active:
            self.notify("the receiver is held by step mode: space leaves it first", timeout=4)
            return
        self.receiver_paused = not self.receiver_paused
        (self.session.pause if self.receiver_paused else self.session.resume)("receiver")
        if not self.receiver_paused:
            self.notify("receiver resumed")
        elif self.session.lossy:
            self.notify("receiver paused: watch the socket buffer fill, then the kernel drop")
        else:
            self.notify("receiver paused: watch the buffer fill and the writer block")

    def action_rate(self, step: int) -> None:
        index = RATES.index(self.config.rate) if self.config.rate in RATES else 2
        index = max(0, min(len(RATES) - 1, index + step))
        self.config = replace(self.config, rate=RATES[index])
        if self.session is not None:
            self.session.set_rate(RATES[index])
        self._update_subtitle()

    def action_size(self, step: int) -> None:
        index = SIZES.index(self.config.size) if self.config.size in SIZES else 2
        self.config = replace(self.config, size=SIZES[max(0, min(len(SIZES) - 1, index + step))])
        self.start_session()

    def action_toggle_pattern(self) -> None:
        other = PATTERNS[1 - PATTERNS.index(self.config.pattern)]
        self.config = replace(self.config, pattern=other)
        self.start_session()

    def action_toggle_nagle(self) -> None:
        options = replace(self.config.options, nagle=not self.config.options.nagle)
        self.config = replace(self.config, options=options)
        if self.config.mechanism not in ("tcp", "http", "http-close", "https", "https-close"):
            self.notify("Nagle applies to tcp and the http family", severity="warning")
        self.start_session()

    def action_restart(self) -> None:
        self.start_session()

    async def action_stop(self) -> None:
        await self._stop_session()
        self.notify("stopped: children gone, kernel objects removed; r starts again")

    def action_kill(self, side: str) -> None:
        session = self.session
        if session is None or not session.alive(side):
            return
        if (
            side == "receiver"
            and session.transport_cls.reconnectable
            and session.config.remote is None
        ):
            # the messages wait by name: a new receiver takes over (a broker redelivers); on
            # another host the receiver is only killed
            self.run_worker(self._replace_receiver(session), group="session")
            return
        session.kill(side)
        self.notify(f"{side} killed with SIGKILL", severity="warning")

    async def _replace_receiver(self, session: Session) -> None:
        try:
            await session.replace_receiver()
        except (SessionError, UsageError) as exc:
            self.notify(str(exc), title="receiver", severity="error")
            return
        self.notify(
            "receiver killed with SIGKILL; a new one took over the queue: what the first had "
            "not acknowledged is redelivered to it",
            severity="warning",
            timeout=6,
        )

    def action_choose_mechanism(self) -> None:
        def chosen(name: str | None) -> None:
            if name and name != self.config.mechanism:
                self.config = replace(self.config, mechanism=name)
                self.start_session()

        self.push_screen(ChoiceScreen("Mechanism", list(MECHANISMS), self.config.mechanism), chosen)

    def action_choose_format(self) -> None:
        def chosen(name: str | None) -> None:
            if name and name != self.config.format:
                self.config = replace(self.config, format=name)
                self.start_session()

        self.push_screen(ChoiceScreen("Format", codec_names(), self.config.format), chosen)

    def action_inject(self) -> None:
        session = self.session
        if session is None or not session.alive("sender"):
            self.notify("no sender running: press r to restart", severity="warning")
            return
        codec = get_codec(self.config.format)
        limits = session.plan.limits if session.plan else None

        def check(value: Any) -> str | None:
            try:
                data = codec.encode(value)
                if limits is not None:
                    limits.check(len(data))
            except (CodecError, MessageTooLarge) as exc:
                return str(exc)
            return None

        def chosen(result: dict | None) -> None:
            if result is None or self.session is None:
                return
            try:
                self.session.inject(result["payload"])
            except (CodecError, MessageTooLarge) as exc:
                self.notify(str(exc), severity="error")
                return
            self._want_injected = True

        initial = json.dumps(sample_payload(0, 8) | {"kind": "injected"})
        self.push_screen(InjectScreen(initial, check), chosen)

    def action_help(self) -> None:
        notes = [
            "| `ctrl+p` | command palette: every action by name |",
            "| `tab` | move between the message list, the hex view and the tree |",
            "",
            "In the bytes panel, moving in the tree highlights the node's bytes; moving in the hex "
            "(arrow keys, or a click) selects the node of the byte under the cursor.",
        ]
        self.push_screen(TextScreen(keys_help(self.BINDINGS, notes)))

    def action_contend(self) -> None:
        """The lab runs processes of its own: the flow is paused meanwhile, so that the two do
        not compete for the CPUs and distort each other's figures."""
        if isinstance(self.screen, ContendScreen):
            return
        resume = not self.flow_paused
        if resume:
            self.action_toggle_flow()

        def back(_result: object = None) -> None:
            self.lab = None
            if resume and self.flow_paused:
                self.action_toggle_flow()

        if self.lesson is not None and self.lesson.face == "lab":
            self.lab = ContendScreen(config=self.lesson.lab_config(), lesson=self.lesson)
        else:
            self.lab = ContendScreen()
        self.push_screen(self.lab, back)

    def action_inspect(self) -> None:
        recent = self.session.stats.recent if self.session is not None else ()
        self.push_screen(
            inspector_for(
                recent,
                self._chosen_sample,
                self._diff_base,
                self.config.mechanism,
                self.config.format,
            )
        )

    def action_record(self) -> None:
        self.recording.toggle(self.session)
        self._update_subtitle()

    def action_mark_diff_base(self) -> None:
        """Mark the selected message; the inspector then compares the next one chosen with it."""
        self._diff_base = marked_diff_base(self._chosen_sample, self.notify) or self._diff_base

    # -- teaching ----------------------------------------------------------------------------
    def action_step(self) -> None:
        """Step mode: the first press holds both children, each next one moves one stage."""
        session = self.session
        if session is None or not (session.alive("sender") and session.alive("receiver")):
            self.notify("no session running: press r to restart", severity="warning")
            return
        if self.flow_paused:  # step mode holds the children itself
            self.flow_paused = False
            self.query_one(FlowPanel).border_subtitle = ""
        self.receiver_paused = False
        self.query_one(StepBar).press(session)

    def on_step_bar_stage_done(self, event: StepBar.StageDone) -> None:
        """Point at the panel the stage concerns (and record it, when recording)."""
        for panel in self.query(".-step-focus"):
            panel.remove_class("-step-focus")
        self.query_one(f"#{event.report.panel}").add_class("-step-focus")
        self.recording.step(event.report.as_json())

    def on_step_bar_left(self, _event: StepBar.Left) -> None:
        for panel in self.query(".-step-focus"):
            panel.remove_class("-step-focus")

    def action_why(self) -> None:
        """Why each child is (or is not) blocked, from the kernel, beside its own word."""
        session = self.session
        if session is None or session.plan is None:
            self.notify("no session running: press r to restart", severity="warning")
            return
        self.push_screen(WhyScreen(lambda: session_diagnoses(session)))

    def action_lesson_answer(self) -> None:
        panels = self.query(LessonPanel)
        if panels:
            panels.first().answer_shown = not panels.first().answer_shown

    def action_explain(self) -> None:
        self.push_screen(TextScreen(explain(self.config.mechanism, self.config.format)))

    def action_toggle_theme(self) -> None:
        """Projector (high contrast) and back; the panels redraw in the new palette at once."""
        projector = THEMES["projector"]
        self.theme = THEMES["default"] if self.theme == projector else projector
        self.mutate_reactive(App.sub_title)  # the header asks format_title again
        self.refresh_panels()

    def format_title(self, title: str, sub_title: str) -> Content:
        """Textual dims the sub-title; on a projector it (mechanism, format, rate) must stay
        readable."""
        if self.theme != THEMES["projector"] or not sub_title:
            return super().format_title(title, sub_title)
        return Content.assemble(Content(title), " — ", Content(sub_title))

    def action_save_svg(self) -> None:
        path = self.save_screenshot(path=str(Path.cwd()))
        self.notify(f"screenshot saved to {path}")

    # -- command palette ---------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action == "quit":
                continue
            yield SystemCommand(
                binding.description,
                f"key: {binding.key}",
                lambda action=binding.action: self.run_action(action),
            )
        for name in MECHANISMS:
            yield SystemCommand(
                f"Mechanism: {name}",
                "restart on this mechanism",
                lambda name=name: self._switch(mechanism=name),
            )
        for name in codec_names():
            yield SystemCommand(
                f"Format: {name}",
                "restart with this format",
                lambda name=name: self._switch(format=name),
            )

    def _switch(self, **changes: Any) -> None:
        self.config = replace(self.config, **changes)
        self.start_session()


def run_app(
    config: SessionConfig, theme: str = "default", lesson: Lesson | None = None, **record: Any
) -> None:
    """``record``: ``record`` (a path) and ``record_limit`` (MiB), as --record gives them."""
    IpcExplorerApp(config, theme=theme, lesson=lesson, **record).run()
