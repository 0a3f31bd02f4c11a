"""Sender and receiver on different hosts: two network namespaces made by the test itself, a
veth pair between them, addresses from the documentation range 192.0.2.0/24 inside them only.
The receiver's host runs `ipc-explorer remote`; the sender's host runs `run --remote`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, TEST_TMP, agent_processes, wait_until

pytestmark = pytest.mark.timeout(90)

TOKEN = "test-token-7f3a"
SENDER_ADDR, RECEIVER_ADDR = "192.0.2.1", "192.0.2.2"


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture(scope="module")
def hosts():
    """Two namespaces, A (the sender's host) and B (the receiver's), joined by a veth pair."""
    suffix = str(os.getpid())
    a, b = f"ipcx-a-{suffix}", f"ipcx-b-{suffix}"
    made = ip("netns", "add", a)
    if made.returncode:
        pytest.skip(f"cannot make network namespaces here ({made.stderr.strip()}): needs root")
    try:
        ip("netns", "add", b)
        steps = [
            ("link", "add", f"va{suffix}", "type", "veth", "peer", "name", f"vb{suffix}"),
            ("link", "set", f"va{suffix}", "netns", a),
            ("link", "set", f"vb{suffix}", "netns", b),
            ("-n", a, "addr", "add", f"{SENDER_ADDR}/24", "dev", f"va{suffix}"),
            ("-n", b, "addr", "add", f"{RECEIVER_ADDR}/24", "dev", f"vb{suffix}"),
            ("-n", a, "link", "set", f"va{suffix}", "up"),
            ("-n", b, "link", "set", f"vb{suffix}", "up"),
            ("-n", a, "link", "set", "lo", "up"),
            ("-n", b, "link", "set", "lo", "up"),
        ]
        for step in steps:
            result = ip(*step)
            if result.returncode:
                pytest.skip(f"cannot set up the veth pair: {result.stderr.strip()}")
        yield a, b
    finally:
        ip("netns", "del", a)
        ip("netns", "del", b)


def in_host(namespace: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, sys.executable, "-m", "ipc_explorer", *args]


def env(token: str = TOKEN) -> dict[str, str]:
    environment = dict(os.environ, IPC_EXPLORER_TOKEN=token)
    environment["PYTHONPATH"] = str(ROOT)
    return environment


@pytest.fixture
def agent(hosts):
    """`ipc-explorer remote` on host B, listening on its veth address."""
    _, b = hosts
    port = 17000 + os.getpid() % 1000
    proc = subprocess.Popen(
        in_host(b, "remote", "--listen", f"{RECEIVER_ADDR}:{port}"),
        env=env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_until(lambda: proc.poll() is not None or _listening(b, port), 10)
    yield f"{RECEIVER_ADDR}:{port}", proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _listening(namespace: str, port: int, address: str = RECEIVER_ADDR) -> bool:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "ss", "-ltn"], capture_output=True, text=True
    )
    return f"{address}:{port}" in result.stdout


def run_from_a(hosts, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    a, _ = hosts
    return subprocess.run(
        in_host(a, "run", *args), env=env(token), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "mechanism, pattern", [("tcp", "stream"), ("udp", "ping-pong"), ("http", "stream")]
)
def test_the_receiver_runs_on_the_other_host_and_every_message_arrives(
    hosts, agent, mechanism, pattern
):
    address, _ = agent
    result = run_from_a(
        hosts, "-m", mechanism, "-p", pattern, "-n", "1000", "--remote", address, "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sent"] == data["received"] == 1000 and data["ok"]
    assert f"at {RECEIVER_ADDR} (remote agent)" in data["hosts"]["receiver"]
    assert "(local)" in data["hosts"]["sender"]
    assert data["clock"]["error_us"] >= 0 and "offset_us" in data["clock"]
    assert RECEIVER_ADDR in data["channel"]["kernel_object"]


def test_a_wrong_token_is_refused_in_one_line(hosts, agent):
    address, _ = agent
    result = run_from_a(hosts, "-m", "tcp", "-n", "10", "--remote", address, token="nope")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: the agent at {address} refused: wrong or missing token"
    ]


def test_the_agent_listens_on_its_loopback_unless_told(hosts):
    _, b = hosts
    proc = subprocess.Popen(in_host(b, "remote"), env=env(), stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _listening(b, 7878, "127.0.0.1"), 10)
        result = run_from_a(hosts, "-m", "tcp", "-n", "10", "--remote", f"{RECEIVER_ADDR}:7878")
        assert result.returncode == 1 and "cannot reach the agent" in result.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_the_agent_removes_everything_when_the_driving_side_disappears(hosts, agent):
    address, _ = agent
    a, _ = hosts
    driver = subprocess.Popen(
        in_host(a, "run", "-m", "tcp", "-r", "100", "-n", "100000", "--remote", address),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: len(agent_processes()) >= 2, 15)  # sender here, receiver there
        time.sleep(0.5)
        driver.kill()  # SIGKILL: no goodbye to the agent
        driver.wait(5)
        # The local sender dies with its parent; the agent sees the link close and stops the
        # remote receiver.
        assert wait_until(lambda: not agent_processes(), 10), "a child survived its driver"
        # ... and removes the channel's end it had opened (its private dir)
        assert wait_until(lambda: not list(Path(TEST_TMP).glob("ipcx-agent-*")), 10)
    finally:
        if driver.poll() is None:
            driver.kill()


def test_a_mechanism_that_stays_on_one_machine_is_refused_before_anything_starts():
    result = subprocess.run(
        [sys.executable, "-m", "ipc_explorer", "run", "-m", "pipe", "--remote", "127.0.0.1:1"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "stays on one machine" in result.stderr


BROKER_ON_HOST_A = """
import asyncio, sys
from ipc_explorer.transports.rabbitmq import PrivateBroker

async def main():
    node = await PrivateBroker.start(address=sys.argv[1])
    print(node.url, flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await node.stop()

asyncio.run(main())
"""


@pytest.mark.amqp
def test_amqp_across_hosts_through_a_broker_both_reach(hosts, agent):
    """The broker on A's address (a private node made for the test), the receiver on B."""
    a, _ = hosts
    address, _ = agent
    node = subprocess.Popen(
        ["ip", "netns", "exec", a, sys.executable, "-c", BROKER_ON_HOST_A, SENDER_ADDR],
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = node.stdout.readline().strip()
        assert url.startswith("amqp://"), "the broker did not start"
        args = ("-m", "amqp", "-n", "500", "--remote", address, "--broker", url, "--json")
        result = run_from_a(hosts, *args)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["received"] == 500 and data["ok"]
        assert data["broker"]["where"] == f"{SENDER_ADDR}:{url.rsplit(':', 1)[1].split('/')[0]}"
        assert f"at {RECEIVER_ADDR}" in data["hosts"]["receiver"]
        assert url.split(":")[2].split("@")[0] not in result.stdout  # the password never shown
    finally:
        node.stdin.close()
        node.wait(30)


def test_the_agent_serves_a_bounded_number_of_sessions(hosts):
    a, b = hosts
    port = 18000 + os.getpid() % 1000
    agent = subprocess.Popen(
        in_host(b, "remote", "--listen", f"{RECEIVER_ADDR}:{port}", "--max-sessions", "1"),
        env=env(),
        stderr=subprocess.DEVNULL,
    )
    first = None
    try:
        assert wait_until(lambda: _listening(b, port), 10)
        first = subprocess.Popen(
            in_host(a, "run", "-m", "tcp", "-r", "50", "-n", "100000", "--remote")
            + [f"{RECEIVER_ADDR}:{port}"],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(lambda: len(agent_processes()) >= 2, 15)
        second = run_from_a(hosts, "-m", "tcp", "-n", "10", "--remote", f"{RECEIVER_ADDR}:{port}")
        assert second.returncode == 1
        assert "runs 1 sessions already" in second.stderr
    finally:
        if first is not None:
            first.send_signal(signal.SIGINT)
            first.wait(15)
        agent.send_signal(signal.SIGTERM)
        agent.wait(10)
