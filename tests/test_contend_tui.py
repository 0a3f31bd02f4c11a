"""The contention lab's screen, driven as a user would, with real worker processes."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.widgets import DataTable, Static

from ipc_explorer.session import SessionConfig
from ipc_explorer.tui.app import IpcExplorerApp
from ipc_explorer.tui.contend_screen import ContendScreen
from ipc_explorer.tui.why_screen import WhyScreen

from .conftest import agent_processes, sysv_semaphores
from .test_tui import SIZE, diagram, text_of, until

pytestmark = pytest.mark.timeout(60)


class LabApp(App):
    """The lab's screen alone, as the app shows it."""

    def __init__(self, screen: ContendScreen):
        super().__init__()
        self.lab = screen

    def on_mount(self) -> None:
        self.push_screen(self.lab)


def result(screen: ContendScreen) -> str:
    return text_of(screen.query_one("#lab-result", Static))


def timeline(screen: ContendScreen) -> str:
    return text_of(screen.query_one("#lab-timeline", Static))


async def test_c_opens_the_lab_and_escape_comes_back_with_the_flow_resumed():
    app = IpcExplorerApp(SessionConfig(rate=200))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "received 1" in diagram(app))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ContendScreen))
        assert app.flow_paused  # the lab's processes do not compete with the flow
        lab = app.screen
        await until(pilot, lambda: "finished" in result(lab), timeout=20)
        assert "lost" in result(lab)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ContendScreen))
        assert not app.flow_paused
        await app.action_quit()
    assert not agent_processes()


async def test_the_counter_race_shows_lost_updates_and_a_lock_removes_them():
    lab = ContendScreen("counter")
    before = sysv_semaphores()
    async with LabApp(lab).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "finished" in result(lab), 20)  # as drawn, not just as run
        lost = lab.run.outcome()["lost_updates"]
        assert lost > 0 and f"{lost:,}" in result(lab) and "lost" in result(lab)
        assert "holder" in str(lab.query_one("#lab-locks", DataTable).columns)
        # timeline rows: one per worker, with the glyphs the legend explains
        assert timeline(lab).count("counter") == 4 and "█" in timeline(lab)
        await pilot.press("minus", "minus")  # fewer workers: 2 (restarts the run)
        await pilot.press("l", "l")  # lock: none -> sem -> sysv
        await until(pilot, lambda: lab.config.lock == "sysv" and lab.config.workers == 2)
        await until(pilot, lambda: lab.run is not None and lab.run.state == "running", 10)
        table = lab.query_one("#lab-locks", DataTable)
        await until(pilot, lambda: "(kernel:" in str(table.get_row_at(0)), 10)  # GETNCNT
        await pilot.press("x")
        await until(pilot, lambda: lab.run.state == "stopped")
    assert not agent_processes()
    assert sysv_semaphores() <= before


async def test_the_deadlock_is_drawn_as_a_cycle_and_the_fix_runs_clean():
    lab = ContendScreen("deadlock")
    async with LabApp(lab).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: lab.run is not None and lab.run.state == "deadlocked", 10)
        await pilot.pause(0.2)
        text = result(lab)
        assert "cycle after" in text and text.count("waits L") == 2
        assert any(n.title == "deadlock detected" for n in lab.app._notifications)
        await pilot.press("o")  # fix: lock ordering
        await until(pilot, lambda: lab.config.fix == "order")
        await until(pilot, lambda: "finished" in result(lab), 20)
        assert "rounds 400 of 400" in result(lab)
    assert not agent_processes()  # and the leak check after each test sees no board or lock


async def test_pausing_the_consumer_blocks_the_producer_on_empty():
    lab = ContendScreen("buffer")
    async with LabApp(lab).run_test(size=SIZE) as pilot:
        await pilot.press("l")  # sem
        await until(pilot, lambda: lab.config.lock == "sem")
        await until(pilot, lambda: lab.run is not None and lab.run.state == "running", 10)
        await pilot.press("p")
        await until(pilot, lambda: lab.run.stats["empty"].value == 0, 5)
        producer = lab.run.workers[0]
        await until(pilot, lambda: producer.pid in lab.run.stats["empty"].waiting, 5)
        assert "‖" in timeline(lab)  # the consumer shown as paused
        await pilot.press("p")  # resume: the producer goes on
        await until(pilot, lambda: producer.pid not in lab.run.stats["empty"].waiting, 5)
        await pilot.press("x")
    assert not agent_processes()


def test_the_lab_screen_before_a_run(snap_compare):
    assert snap_compare(LabApp(ContendScreen("counter", autostart=False)), terminal_size=SIZE)


async def test_step_takes_the_deadlock_one_lock_operation_at_a_time_and_w_says_why():
    lab = ContendScreen("deadlock", autostart=False)
    async with LabApp(lab).run_test(size=SIZE) as pilot:
        await pilot.press("full_stop")  # a run held before its first lock operation
        await until(pilot, lambda: lab.run is not None and lab.run.stepping, 10)
        await until(pilot, lambda: len(lab.run.held_workers()) == 2, 10)
        notes = []
        for _ in range(4):
            await until(pilot, lambda: lab.run.held_workers(), 5)
            await pilot.pause(0.1)
            await pilot.press("full_stop")
            notes.append(lab.step_note)
        assert [n.split(": ", 1)[1] for n in notes] == [
            "acquire L0",
            "acquire L1",
            "acquire L1",
            "acquire L0",
        ]
        await until(pilot, lambda: lab.run.state == "deadlocked", 10)
        await until(pilot, lambda: "cycle after" in result(lab), 5)
    assert not agent_processes()


async def test_w_shows_each_worker_blocked_on_its_semaphore():
    lab = ContendScreen("deadlock", autostart=False)
    async with LabApp(lab).run_test(size=SIZE) as pilot:
        await pilot.press("full_stop")
        await until(pilot, lambda: lab.run is not None and len(lab.run.held_workers()) == 2, 10)
        for _ in range(2):  # each takes its own lock; both are then held before the next
            await until(pilot, lambda: lab.run.held_workers(), 5)
            await pilot.pause(0.1)
            await pilot.press("full_stop")
        await until(pilot, lambda: len(lab.run.held_workers()) == 2, 5)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(lab.app.screen, WhyScreen), 5)
        why = text_of(lab.app.screen.query_one("#why-body", Static))
        assert why.count("contender (pid") == 2
        assert "held before acquire" in why and "self-reported" in why
        await pilot.press("escape")
        await pilot.press("space")  # let go: both ask for the other's lock: the deadlock
        await until(pilot, lambda: lab.run.state == "deadlocked", 10)
    assert not agent_processes()
