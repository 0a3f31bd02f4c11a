"""The contention lab, headless, as a user runs it: races that show, locks that hold, a deadlock
found and cleaned up, and nothing left behind on any path."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ipc_explorer.lab.config import ContendConfig
from ipc_explorer.lab.run import ContendRun

from .conftest import ROOT, agent_processes, run_cli, shm_entries, sysv_semaphores, wait_until

pytestmark = pytest.mark.timeout(60)

JSON_KEYS = {
    "scenario",
    "lock",
    "workers",
    "iterations",
    "expected",
    "actual",
    "lost_updates",
    "torn_reads",
    "deadlock_detected",
    "elapsed_s",
}


def contend(*args: str) -> tuple[int, dict]:
    result = run_cli("contend", *args, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_without_a_lock_the_shared_counter_loses_updates():
    code, r = contend("--scenario", "counter", "--lock", "none")
    assert code == 0  # a race that shows is what the lab was asked for
    assert JSON_KEYS <= r.keys()
    assert r["expected"] == 4 * 20_000
    assert r["actual"] < r["expected"]
    assert r["lost_updates"] == r["expected"] - r["actual"] > 0


@pytest.mark.parametrize("lock", ["sem", "sysv"])
def test_with_a_lock_the_counter_is_exact(lock):
    code, r = contend("--scenario", "counter", "--lock", lock, "-k", "3", "-n", "5000")
    assert code == 0
    assert r["expected"] == r["actual"] == 15_000
    assert r["lost_updates"] == 0
    stats = r["locks"]["counter"]
    assert stats["acquisitions"] == 15_000
    assert stats["value_min"] in (0, 1) and stats["value_max"] == 1
    assert stats["wait"]["max_us"] >= stats["wait"]["p99_us"] >= 0
    assert stats["hold"]["mean_us"] > 0


def test_without_a_lock_readers_see_torn_records_and_one_is_shown():
    code, r = contend("--scenario", "torn", "--lock", "none")
    assert code == 0
    assert r["torn_reads"] > 0
    ex = r["torn_example"]
    seq = ex["seq"]
    consistent = (
        ex["a"] == 3 * seq and ex["b"] == 7 * seq and ex["check"] == seq ^ ex["a"] ^ ex["b"]
    )
    assert not consistent  # the example shown really is a record whose fields disagree


@pytest.mark.parametrize("lock", ["sem", "seqlock"])
def test_with_a_lock_or_a_seqlock_no_torn_record_is_ever_seen(lock):
    code, r = contend("--scenario", "torn", "--lock", lock, "-n", "10000")
    assert code == 0
    assert r["reads"] > 0
    assert r["torn_reads"] == 0 and r["actual"] == r["expected"] == r["reads"]


def test_a_buffer_without_semaphores_overwrites_and_duplicates_items():
    code, r = contend("--scenario", "buffer", "--lock", "none")
    assert code == 0
    assert r["overwritten"] > 0 or r["duplicated"] > 0
    assert r["actual"] < r["expected"]


@pytest.mark.parametrize("lock", ["sem", "sysv", "condvar"])
def test_a_buffer_with_semaphores_delivers_every_item_once(lock):
    code, r = contend("--scenario", "buffer", "--lock", lock, "-k", "3", "-n", "5000")
    assert code == 0
    assert r["actual"] == r["expected"] == r["received"] == 5000
    assert r["overwritten"] == r["duplicated"] == 0
    if lock == "condvar":  # waits happened on the condition variables, and each was woken
        waits = r["locks"]["not_empty.sleep"]["acquisitions"]
        assert waits == r["locks"]["not_empty.woken"]["acquisitions"]
    else:
        assert r["locks"]["empty"]["value_max"] <= 8  # never more free slots than the ring has


@pytest.mark.parametrize("lock,workers", [("sem", 2), ("sysv", 3)])
def test_a_deadlock_is_detected_within_two_seconds_and_cleaned_up(lock, workers):
    before = sysv_semaphores()
    started = time.monotonic()
    code, r = contend("--scenario", "deadlock", "--lock", lock, "-k", str(workers))
    assert code == 0
    assert r["deadlock_detected"] is True
    assert r["detected_after_s"] < 2.0
    assert time.monotonic() - started < 10
    cycle = r["cycle"]
    assert len(cycle) == workers
    # every process waits for a lock the next one in the cycle holds
    assert {e["worker"] for e in cycle} == {e["held_by_worker"] for e in cycle}
    assert not agent_processes()
    assert sysv_semaphores() <= before


@pytest.mark.parametrize("fix", ["order", "timeout"])
def test_the_deadlock_fixes_run_clean(fix):
    code, r = contend("--scenario", "deadlock", "--lock", "sem", "--fix", fix, "-k", "3")
    assert code == 0
    assert r["deadlock_detected"] is False
    assert r["actual"] == r["expected"] == 3 * 50


def test_the_table_says_what_happened():
    result = run_cli("contend", "--scenario", "counter", "--lock", "sem", "-n", "2000")
    assert result.returncode == 0
    assert "expected 8,000" in result.stdout and "lost updates 0" in result.stdout
    assert "wait µs mean / p99 / max" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--scenario", "nope"], "unknown scenario"),
        (["--lock", "seqlock"], "--lock seqlock is not for counter"),
        (["--workers", "1"], "--workers must be 2..16"),
        (["--workers", "17"], "--workers must be 2..16"),
        (["--scenario", "deadlock"], "needs locks"),
        (["--fix", "order"], "--fix is for the deadlock scenario"),
        (["--iterations", "0"], "--iterations must be"),
        (["--slots", "1", "--scenario", "buffer"], "--slots must be"),
    ],
)
def test_bad_arguments_get_one_clear_line_and_exit_2(args, message):
    result = run_cli("contend", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("lock", ["sem", "sysv"])
def test_sigkill_of_the_parent_leaves_no_worker_and_no_semaphore(lock):
    shm_before, sysv_before = shm_entries(), sysv_semaphores()
    parent = subprocess.Popen(
        [sys.executable, "-m", "ipc_explorer", "contend", "--lock", lock, "-n", "100000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert wait_until(lambda: len(agent_processes()) == 4, 10), "the workers did not start"
        assert wait_until(lambda: sysv_semaphores() - sysv_before or shm_entries() - shm_before, 5)
        time.sleep(0.3)  # mid-run: the workers are contending for the lock
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        assert wait_until(lambda: not agent_processes(), 2.0), "workers outlived their parent"
        assert wait_until(lambda: shm_entries() - shm_before == set(), 2.0), "left in /dev/shm"
        assert wait_until(lambda: sysv_semaphores() - sysv_before == set(), 2.0)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


async def test_step_mode_moves_one_lock_operation_at_a_time_into_the_deadlock():
    run = ContendRun(ContendConfig(scenario="deadlock", lock="sem", workers=2, iterations=5))
    run.set_step_mode(True)  # held from the first lock operation (once started, one may be past)
    await run.start()
    try:
        taken = []
        for _ in range(6):
            for _ in range(100):  # until a worker is at the barrier, or none can get there
                if run.held_workers() or run.state != "running":
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            chosen = run.step()
            if chosen is None:
                break
            taken.append((chosen["worker"], chosen["operation"], chosen["lock"]))
        # Each takes its own lock, then asks for the other's: four steps, then nobody can move.
        assert taken == [
            (0, "acquire", "L0"),
            (1, "acquire", "L1"),
            (0, "acquire", "L1"),
            (1, "acquire", "L0"),
        ]
        for _ in range(100):
            if run.state == "deadlocked":
                break
            await asyncio.sleep(0.05)
        assert run.state == "deadlocked" and len(run.cycle) == 2
    finally:
        await run.stop()


async def test_step_mode_without_a_lock_shows_the_lost_update_read_and_write_at_a_time():
    run = ContendRun(ContendConfig(scenario="counter", lock="none", workers=2, iterations=3))
    run.set_step_mode(True)
    await run.start()
    try:

        async def next_held() -> dict:
            for _ in range(100):
                held = run.held_workers()
                if held:
                    return held
                await asyncio.sleep(0.02)
            raise AssertionError("no worker at the barrier")

        # Both read 0, then both write 1: one increment is lost, before our eyes.
        taken = []
        for _ in range(4):
            await next_held()
            chosen = run.step()
            taken.append((chosen["worker"], chosen["operation"]))
            await asyncio.sleep(0.05)
        assert taken == [(0, "read"), (1, "read"), (0, "write"), (1, "write")]
        await asyncio.sleep(0.1)
        assert run.counter_value() == 1  # two increments, one counted
        run.set_step_mode(False)
        await run.wait()
        assert run.outcome()["lost_updates"] >= 1
    finally:
        await run.stop()
