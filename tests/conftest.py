"""Shared fixtures: every test runs under a leak check (processes, /dev/shm, temp dirs)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

# The suite's links between "hosts" are local and its agents fresh: shorter bounds on a silent
# peer (a handshake unanswered, a driving side gone quiet) keep the tests that wait them out
# short. Set before the package is imported; every child inherits them.
os.environ.setdefault("IPCX_REMOTE_HANDSHAKE_S", "4")
os.environ.setdefault("IPCX_REMOTE_IDLE_S", "6")
# Children size their output as a terminal of the test's choosing, not the one pytest (or an
# xdist worker, which sets 80x24) happens to have.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

from ipc_explorer.transports import amqp, rabbitmq  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Every session of this test run (and every child, through TMPDIR) works under one private
# directory, so that the leak checks see this run's processes and files and nobody else's.
TEST_TMP = tempfile.mkdtemp(prefix="ipcx-tests-")
os.environ["TMPDIR"] = TEST_TMP
tempfile.tempdir = TEST_TMP


def shm_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


def mqueue_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/mqueue"))
    except FileNotFoundError:
        return set()


def sysv_semaphores() -> set[str]:
    """System V semaphore sets by key (they live outside /dev/shm)."""
    try:
        lines = Path("/proc/sysvipc/sem").read_text().splitlines()[1:]
    except FileNotFoundError:
        return set()
    return {line.split()[0] for line in lines if line.strip()}


def temp_dirs() -> set[str]:
    """Sessions' temp dirs (the run's shared private broker lives for the whole run)."""
    return {
        name
        for name in os.listdir(TEST_TMP)
        if name.startswith("ipcx-") and not name.startswith(rabbitmq.DIR_PREFIX)
    }


def agent_processes() -> list[psutil.Process]:
    """This run's ipc-explorer children, orphans included (a SIGKILLed parent's children are
    re-parented, so they are found by their temp directory in TEST_TMP, not by ancestry)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "ipc_explorer.children" not in cmdline:
            continue
        if any(TEST_TMP in arg for arg in cmdline):
            found.append(proc)
            continue
        try:  # a contention-lab worker has no temp dir: it is ours if it has our TMPDIR
            if proc.environ().get("TMPDIR") == TEST_TMP:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


# -- two workers: the tests that talk to the network and the broker beside all the others ---
#
# The suite runs on two pytest-xdist workers (pyproject's addopts: -n 2 --dist loadgroup). The
# tests of the broker and of two hosts spend their time waiting (a node starting, a heartbeat
# missed, a silent peer), so they run on one worker while the other runs everything else. Each
# worker has its own TEST_TMP, so processes and temp dirs stay checked per test on both. Kernel
# objects (/dev/shm, /dev/mqueue, System V) are shared by the workers, so only the "local"
# worker, which makes them all, checks them per test (the network side makes none: sockets and
# a broker; the socket mechanisms' parametrized tests go there too, to share the time out);
# the controller checks that the whole run left none behind.
NETWORK_FILES = {"test_amqp.py", "test_remote.py", "test_http_variants.py"}
#: A test of one of these mechanisms makes sockets only (and a broker's queue): no /dev/shm,
#: /dev/mqueue or System V object, so it can run beside the worker that checks those.
NETWORK_MECHANISMS = {"amqp", "tcp", "udp", "http", "http-close", "https", "https-close"}


def on_the_network_side(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return item.path.name in NETWORK_FILES or params.get("mechanism") in NETWORK_MECHANISMS


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = "network" if on_the_network_side(item) else "local"
        item.add_marker(pytest.mark.xdist_group(group))


def ipcx_objects() -> set[str]:
    """This project's kernel objects by name, and every System V semaphore set by key."""
    named = {n for n in shm_entries() | mqueue_entries() if "ipcx" in n or "ipcfloor" in n}
    return named | {f"sysv:{key}" for key in sysv_semaphores()}


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or a run without workers)
        config.stash[_OBJECTS_AT_START] = ipcx_objects()


_OBJECTS_AT_START = pytest.StashKey[set]()


def pytest_sessionfinish(session, exitstatus):
    before = session.config.stash.get(_OBJECTS_AT_START, None)
    if before is None:
        return
    wait_until(lambda: not ipcx_objects() - before, 5.0)
    left = ipcx_objects() - before
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nkernel objects left behind by the run: {sorted(left)}", file=sys.stderr)


def pytest_unconfigure(config):
    # The leak checks have already failed any test that left something here.
    shutil.rmtree(TEST_TMP, ignore_errors=True)


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="session")
def broker():
    """One private RabbitMQ node for the whole run (a node takes seconds to start): in-process
    sessions use it as their private node, commands get it with --broker. Tests that need it
    are skipped with the reason where RabbitMQ is not installed, except under .ci/run
    (IPCX_REQUIRE_BROKER), where that is a failure."""
    if not rabbitmq.installed():
        if os.environ.get("IPCX_REQUIRE_BROKER"):
            pytest.fail(f"RabbitMQ is required here: {rabbitmq.INSTALL_HINT}")
        pytest.skip(f"RabbitMQ is not installed: {rabbitmq.INSTALL_HINT}")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="broker", daemon=True)
    thread.start()
    node = asyncio.run_coroutine_threadsafe(rabbitmq.PrivateBroker.start(), loop).result(120)
    amqp.adopt_private_broker(node)
    yield node
    asyncio.run_coroutine_threadsafe(node.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture(autouse=True)
def _broker_for_amqp(request):
    """A test about the amqp mechanism (a parameter, or the amqp mark) gets the run's broker."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if params.get("mechanism") == "amqp" or request.node.get_closest_marker("amqp"):
        request.getfixturevalue("broker")


def broker_args() -> list[str]:
    """--broker for a command run as a separate process: the run's broker."""
    node = amqp._private
    return ["--broker", node.url] if node is not None else []


@pytest.fixture(autouse=True)
def no_leaks(request):
    """After each test: no new /dev/shm entry, queue, System V semaphore, ipcx temp dir, or
    agent process (kernel objects on the "local" worker, or everywhere without workers)."""
    shm, mq, tmp, sysv = shm_entries(), mqueue_entries(), temp_dirs(), sysv_semaphores()
    yield
    wait_until(lambda: not agent_processes(), 3.0)
    left = agent_processes()
    for proc in left:
        proc.kill()
    assert not left, f"child processes left running: {[p.pid for p in left]}"
    assert temp_dirs() - tmp == set(), "temp dirs left behind"
    if os.environ.get("PYTEST_XDIST_WORKER") and on_the_network_side(request.node):
        return  # the other worker's objects come and go here: the run's end checks these
    assert shm_entries() - shm == set(), "objects left in /dev/shm"
    assert mqueue_entries() - mq == set(), "message queues left in /dev/mqueue"
    assert sysv_semaphores() - sysv == set(), "System V semaphores left behind"


def run_cli(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    """``ipc-explorer ARGS`` as a user runs it, in a separate process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["COLUMNS"] = "120"
    return subprocess.run(
        [sys.executable, "-m", "ipc_explorer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )
