"""Nothing leaks on any exit path: SIGKILL or SIGTERM of the parent, a killed child."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import posix_ipc
import psutil
import pytest

from ipc_explorer.session import ChildReported, Session, SessionConfig

from .conftest import ROOT, agent_processes, shm_entries, temp_dirs, wait_until

pytestmark = pytest.mark.timeout(60)


def start_long_run(mechanism: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipc_explorer",
            "run",
            "-m",
            mechanism,
            "-n",
            "100000000",
            "--rate",
            "2000",
            "--json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def children_of(parent: subprocess.Popen) -> list[psutil.Process]:
    return [p for p in agent_processes() if p.ppid() == parent.pid]


def plan_names(child: psutil.Process) -> dict:
    """The kernel object names, read from the child's command line (its --config)."""
    cmdline = child.cmdline()
    return json.loads(cmdline[cmdline.index("--config") + 1])["plan"]["names"]


def assert_names_gone(names: dict) -> None:
    for key in ("forward", "back"):
        value = names.get(key)
        if isinstance(value, dict):
            with pytest.raises(posix_ipc.ExistentialError):
                posix_ipc.SharedMemory(value["shm"])
            for sem in ("empty", "full", "mutex"):
                with pytest.raises(posix_ipc.ExistentialError):
                    posix_ipc.Semaphore(value[sem])
        elif isinstance(value, str):
            with pytest.raises(posix_ipc.ExistentialError):
                posix_ipc.MessageQueue(value)


@pytest.mark.parametrize(
    "mechanism",
    ["shm", "mq", "fifo", "unix-stream", "unix-dgram", "pipe", "tcp", "udp", "http", "http-close"]
    + ["https", "https-close"],
)
def test_sigkill_of_the_parent_leaves_nothing_within_two_seconds(mechanism):
    shm_before, tmp_before = shm_entries(), temp_dirs()
    parent = start_long_run(mechanism)
    try:
        assert wait_until(lambda: len(children_of(parent)) == 2, 10), parent.stderr
        names = plan_names(children_of(parent)[0])
        time.sleep(0.5)  # messages flowing
        assert len(children_of(parent)) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        killed_at = time.monotonic()
        assert wait_until(lambda: not agent_processes(), 2.0), "children outlived the parent"
        assert wait_until(
            lambda: shm_entries() <= shm_before and temp_dirs() <= tmp_before,
            2.0 - (time.monotonic() - killed_at) + 0.05,
        )
        assert time.monotonic() - killed_at <= 2.0
        assert_names_gone(names)
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_clean_up_like_a_normal_end(sig):
    parent = start_long_run("shm")
    try:
        assert wait_until(lambda: len(children_of(parent)) == 2, 10)
        names = plan_names(children_of(parent)[0])
        time.sleep(0.3)
        parent.send_signal(sig)
        _, err = parent.communicate(timeout=10)
        assert parent.returncode == 130
        assert "interrupted" in err.decode() and "Traceback" not in err.decode()
        assert not agent_processes()
        assert_names_gone(names)
    finally:
        if parent.poll() is None:
            parent.kill()


async def test_killing_the_receiver_shows_the_senders_error():
    events = []
    session = Session(SessionConfig(mechanism="pipe", count=None, rate=2000), events.append)
    try:
        await session.start()
        await session._until(lambda: session.stats.receiver.count("received") > 50, 5, "flow")
        session.kill("receiver")
        await session._until(
            lambda: any(isinstance(e, ChildReported) and e.kind == "error" for e in events),
            5,
            "error",
        )
    finally:
        await session.stop()
    errors = [e for e in events if isinstance(e, ChildReported) and e.kind == "error"]
    assert errors[0].side == "sender" and errors[0].reason == "EPIPE"
    assert "receiver is gone" in errors[0].message
    assert any("receiver was killed by SIGKILL" in p for p in session.summary()["problems"])


async def test_killing_the_sender_shows_eof_at_the_receiver():
    events = []
    session = Session(SessionConfig(mechanism="unix-stream", count=None, rate=2000), events.append)
    try:
        await session.start()
        await session._until(lambda: session.stats.receiver.count("received") > 50, 5, "flow")
        session.kill("sender")
        await session._until(lambda: session.stats.receiver.state == "peer-closed", 5, "eof")
    finally:
        await session.stop()
    eof = [e for e in events if isinstance(e, ChildReported) and e.kind == "peer-closed"]
    assert eof and eof[0].reason == "EOF"


async def test_paused_receiver_blocks_the_pipe_writer():
    session = Session(SessionConfig(mechanism="pipe", count=None, size=1000))
    try:
        await session.start()
        await session._until(lambda: session.stats.receiver.count("received") > 100, 5, "flow")
        session.pause("receiver")
        await session._until(lambda: session.stats.receiver.state == "paused", 5, "pause")
        await session._until(
            lambda: session.stats.sender.stalled_ns > 300_000_000, 5, "a blocked writer"
        )
        sent = session.stats.sender.count("sent")
        await asyncio.sleep(0.3)
        assert session.stats.sender.count("sent") == sent, "the writer should be blocked"
        wire_size = session.stats.sender.count("wire_bytes") / sent
        in_flight = sent - session.stats.receiver.count("received")
        # In flight: what the pipe's 16 pages hold (a small write only joins a page it fits in
        # whole), plus what the receiver had read but not processed.
        assert 16 * (4096 // wire_size) <= in_flight <= (65536 + 262144) / wire_size + 1, in_flight
        session.resume("receiver")
        await session._until(lambda: session.stats.sender.count("sent") > sent + 100, 5, "resumed")
    finally:
        await session.stop()


async def test_injected_payload_is_sent_with_its_exact_bytes():
    session = Session(SessionConfig(mechanism="tcp", format="json", count=None, rate=500))
    try:
        await session.start()
        await session._until(lambda: session.stats.receiver.count("received") > 5, 5, "flow")
        session.inject({"hello": "world", "n": [1, 2, 3]})
        await session._until(
            lambda: any(s.get("injected") for s in session.stats.recent), 5, "inject"
        )
    finally:
        await session.stop()
    sample = next(s for s in session.stats.recent if s.get("injected"))
    body = b'{"hello":"world","n":[1,2,3]}'
    assert sample["wire"].endswith(body)
    assert sample["wire_size"] == len(body) + 28 and sample["framing_size"] == 28


ORPHAN_SCRIPT = """
import asyncio, os, sys, tempfile
from pathlib import Path
from ipc_explorer.session import Session, SessionConfig

async def main():
    session = Session(SessionConfig(mechanism=sys.argv[1]))
    session.workdir = Path(tempfile.mkdtemp(prefix="ipcx-"))
    create = session.transport_cls.create
    session.plan = create(session.config.options, session.workdir, "orphan01", False)
    await session._spawn("receiver")  # no sender ever comes: the receiver waits in open()
    print(session._procs["receiver"].pid, session.workdir, flush=True)
    await asyncio.sleep(1.0)
    os._exit(0)  # the parent dies without cleaning up, as if SIGKILLed

asyncio.run(main())
"""


@pytest.mark.parametrize("mechanism", ["fifo", "tcp"])
def test_a_child_still_opening_its_channel_dies_with_the_parent(mechanism):
    """The receiver is blocked in open()/accept() when its parent dies: it must not linger."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", ORPHAN_SCRIPT, mechanism],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
    ).stdout.split()
    pid, workdir = int(out[0]), out[1]
    assert wait_until(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 2.0
    )
    assert wait_until(lambda: not os.path.exists(workdir), 1.0)
