"""Teaching in the app, driven as a user would with real children: step mode (.), why blocked
(w), a lesson's text with its answer behind a key (a), a lab lesson."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from ipc_explorer.session import SessionConfig
from ipc_explorer.teach.lessons import get_lesson
from ipc_explorer.tui.app import IpcExplorerApp
from ipc_explorer.tui.contend_screen import ContendScreen
from ipc_explorer.tui.lesson_panel import LessonPanel
from ipc_explorer.tui.step_bar import StepBar
from ipc_explorer.tui.why_screen import WhyScreen

from .conftest import agent_processes
from .test_tui import SIZE, diagram, text_of, until

pytestmark = pytest.mark.timeout(60)


async def test_dot_holds_both_children_and_moves_one_message_one_stage_per_press():
    app = IpcExplorerApp(SessionConfig(rate=50))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "received 3" in diagram(app))
        bar = app.query_one(StepBar)
        await pilot.press("full_stop")
        await until(pilot, lambda: bar.active and not bar.busy, 5)
        assert "both processes are held" in text_of(bar)
        stages = []
        for _ in range(4):  # build, serialize, send, kernel
            await pilot.press("full_stop")
            await until(pilot, lambda: bar.report is not None and not bar.busy, 5)
            await until(pilot, lambda: len(stages) < 4 and bar.report.stage not in stages, 5)
            stages.append(bar.report.stage)
        assert stages == ["build", "serialize", "send", "kernel"]
        shown = text_of(bar)
        assert "131 bytes queued for the receiver" in shown
        assert "queued_bytes 131" in shown and "FIONREAD" in shown  # the figure, its source
        assert app.query_one("#sync").has_class("-step-focus")  # the panel it concerns
        sent = app.session.stats.sender.count("sent")
        await pilot.pause(0.5)
        assert app.session.stats.sender.count("sent") == sent  # held: nothing moves by itself
        await pilot.press("space")  # leave step mode: the flow goes on at its rate
        await until(pilot, lambda: not bar.active, 5)
        await until(pilot, lambda: app.session.stats.sender.count("sent") > sent + 5, 5)
        assert not app.query(".-step-focus")
        await app.action_quit()
    assert not agent_processes()


async def test_w_says_the_writer_is_blocked_on_a_full_pipe_and_the_reader_is_paused():
    app = IpcExplorerApp(SessionConfig(rate=None, size=512))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "received 1" in diagram(app))
        await pilot.press("p")
        await until(pilot, lambda: app.session.stats.receiver.state == "paused", 5)
        await pilot.pause(1.0)  # the pipe fills at full rate within a fraction of that
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WhyScreen), 5)
        body = app.screen.query_one("#why-body", Static)
        await until(pilot, lambda: "blocked in writev(2)" in text_of(body), 5)
        why = text_of(body)
        assert "on the pipe" in why and "the reader is paused (it says so)" in why
        assert "ioctl FIONREAD" in why and "/proc/" in why  # every figure with its source
        assert "self-reported" in why  # the process's own word, labelled
        await pilot.press("w")
        await until(pilot, lambda: not isinstance(app.screen, WhyScreen), 5)
        await app.action_quit()
    assert not agent_processes()


async def test_a_lesson_opens_on_its_scenario_with_its_text_and_the_answer_behind_a():
    lesson = get_lesson("full-pipe")
    app = IpcExplorerApp(lesson.session_config(), lesson=lesson)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "received 1" in diagram(app))
        panel = app.query_one(LessonPanel)
        assert panel.border_title == f"Lesson: {lesson.text.title}"
        text = text_of(panel)
        assert "Watch:" in text and "Ask:" in text and lesson.text.answer not in text
        await pilot.press("a")
        await until(pilot, lambda: lesson.text.answer[:40] in text_of(panel), 5)
        assert app.config.format == "struct" and app.config.mechanism == "pipe"
        await app.action_quit()
    assert not agent_processes()


async def test_a_lab_lesson_opens_the_lab_on_its_run_with_its_text():
    lesson = get_lesson("deadlock")
    app = IpcExplorerApp(lesson.session_config(), lesson=lesson)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ContendScreen), 5)
        lab = app.screen
        await until(pilot, lambda: lab.query(LessonPanel), 5)
        assert lab.config.scenario == "deadlock" and lab.config.lock == "sem"
        await until(pilot, lambda: "Two locks" in str(lab.query_one(LessonPanel).border_title))
        await until(pilot, lambda: lab.run is not None and lab.run.state == "deadlocked", 10)
        await app.action_quit()
    assert not agent_processes()
