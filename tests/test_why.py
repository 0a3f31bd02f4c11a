"""Why a child is blocked, from the kernel's own account, on a paused reader."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from ipc_explorer.session import Session, SessionConfig
from ipc_explorer.teach.why import diagnose
from ipc_explorer.transports import TransportOptions

from .conftest import run_cli

pytestmark = pytest.mark.timeout(60)


async def paused_reader(mechanism: str, **extra) -> Session:
    """A session at full rate whose receiver is paused until the writer blocks."""
    session = Session(SessionConfig(mechanism=mechanism, count=None, size=512, **extra))
    await session.start()
    await asyncio.sleep(0.3)
    session.pause("receiver")
    for _ in range(100):  # until the writer has stopped making progress
        before = session.stats.sender.count("sent")
        await asyncio.sleep(0.1)
        session.send_control("sender", {"op": "report"})
        await asyncio.sleep(0.05)
        if session.stats.sender.count("sent") == before:
            break
    return session


async def test_a_writer_on_a_full_pipe_is_blocked_in_write_and_the_kernel_says_how_full():
    session = await paused_reader("pipe", options=TransportOptions(pipe_size=65536))
    try:
        pid = session.stats.sender.pid
        said = {"state": session.stats.receiver.state, "op": session.stats.receiver.op}
        why = diagnose(pid, peer_said=said)
        facts = why.facts.values()
        assert why.state == "blocked" and why.role == "sender"
        assert facts["syscall"] in ("write", "writev")
        assert facts["kind"] == "pipe" and facts["capacity_bytes"] == 65536
        # Pages of 4 KiB hold whole writes: the pipe is full before every byte is used.
        assert 65536 - 4096 < facts["queued_bytes"] <= 65536
        assert "blocked in writev(2) on the pipe" in why.sentence
        assert "the reader is paused (it says so)" in why.sentence
        assert why.facts.sources()["queued_bytes"].startswith("ioctl FIONREAD")
        reader = diagnose(session.stats.receiver.pid, said=said)
        assert "futex" in reader.facts.values()["syscall"]
        assert "nothing in the channel stops it" in reader.sentence
    finally:
        await session.stop(drain=False)


async def test_a_tcp_writer_is_blocked_with_its_bytes_in_the_send_queue():
    session = await paused_reader("tcp")
    try:
        why = diagnose(session.stats.sender.pid)
        facts = why.facts.values()
        assert why.state == "blocked"
        assert facts["syscall"] in ("sendmsg", "sendto", "write")
        assert facts["kind"] == "TCP socket" and facts["tcp_state"] == "ESTABLISHED"
        assert facts["unsent_bytes"] > 0 and facts["peer_rx_queue_bytes"] > 0
        assert "the reader is not taking anything" in why.sentence
    finally:
        await session.stop(drain=False)


async def test_an_mq_sender_is_blocked_on_a_full_queue():
    session = await paused_reader("mq")
    try:
        why = diagnose(session.stats.sender.pid)
        facts = why.facts.values()
        assert facts["syscall"] == "mq_timedsend"
        assert facts["queue_depth"] == facts["queue_max_messages"] > 0
        assert "blocked in mq_send(3)" in why.sentence
    finally:
        await session.stop(drain=False)


async def test_an_shm_sender_is_blocked_on_the_empty_semaphore_at_zero():
    session = await paused_reader("shm")
    try:
        why = diagnose(session.stats.sender.pid)
        facts = why.facts.values()
        assert facts["syscall"].startswith("futex")
        assert facts["semaphore"].endswith("-empty") and facts["semaphore_value"] == 0
        assert "/proc/" in why.facts.sources()["semaphore"]
        assert "sem_wait on the semaphore 'empty' (value 0)" in why.sentence
    finally:
        await session.stop(drain=False)


async def test_the_why_command_gives_the_same_facts_as_json():
    session = await paused_reader("pipe")
    try:
        result = await asyncio.to_thread(run_cli, "why", str(session.stats.sender.pid), "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["role"] == "sender" and data["mechanism"] == "pipe"
        assert data["state"] == "blocked" and data["facts"]["kind"] == "pipe"
        assert data["peer"]["pid"] == session.stats.receiver.pid
        assert set(data["facts"]) == set(data["sources"])
    finally:
        await session.stop(drain=False)


@pytest.mark.parametrize("pid", ["the test's own", "1", "4194999"])
def test_a_pid_that_is_not_a_child_of_ours_is_one_line_and_exit_2(pid):
    result = run_cli("why", str(os.getpid()) if pid == "the test's own" else pid)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
