"""Sender and receiver on different hosts: two network namespaces made by the test itself, a
veth pair between them, addresses from the documentation range 192.0.2.0/24 inside them only.
The receiver's host runs `ipc-explorer remote`; the sender's host runs `run --remote`.

What an agent does with a driving side that misbehaves (malformed requests, a wrong token, too
many connections, silence) is tested on this machine's loopback, with a client by hand; what a
driving side does with an agent that misbehaves, with a fake agent in a thread of the test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipc_explorer.session.agent import BROKER_NEEDED, MAX_PENDING
from ipc_explorer.session.remote import HANDSHAKE_TIMEOUT_S, PROTOCOL, new_nonce, proof
from ipc_explorer.transports import ChannelPlan, TransportOptions, get_transport

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


def sender_link() -> str:
    """The veth end in host A (named by the hosts fixture)."""
    return f"va{os.getpid()}"


def env(token: str = TOKEN) -> dict[str, str]:
    environment = dict(os.environ, IPC_EXPLORER_TOKEN=token)
    environment["PYTHONPATH"] = str(ROOT)
    return environment


@dataclass
class RunningAgent:
    address: str
    port: int
    proc: subprocess.Popen
    log: Path

    def said(self) -> str:
        return self.log.read_text()


def start_agent(command: list[str], log: Path) -> subprocess.Popen:
    """An agent process whose stderr goes to ``log``, once it listens."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=out)
    assert wait_until(lambda: proc.poll() is not None or "listening on" in log.read_text(), 15)
    assert proc.poll() is None, log.read_text()
    return proc


def stop_agent(agent: RunningAgent) -> None:
    """SIGTERM, as a service manager stops it: a clean stop, never a traceback."""
    agent.proc.send_signal(signal.SIGTERM)
    try:
        agent.proc.wait(10)
    except subprocess.TimeoutExpired:
        agent.proc.kill()
        agent.proc.wait()
    assert "Traceback" not in agent.said(), agent.said()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def agent(hosts, tmp_path):
    """`ipc-explorer remote` on host B, listening on its veth address."""
    _, b = hosts
    port = 17000 + os.getpid() % 1000
    log = tmp_path / "agent.log"
    proc = start_agent(in_host(b, "remote", "--listen", f"{RECEIVER_ADDR}:{port}"), log)
    running = RunningAgent(f"{RECEIVER_ADDR}:{port}", port, proc, log)
    yield running
    stop_agent(running)


def local_agent_at(tmp_path: Path, *args: str) -> RunningAgent:
    """An agent on this machine's loopback (no namespaces needed)."""
    port = free_port()
    log = tmp_path / f"agent-{port}.log"
    command = [sys.executable, "-m", "ipc_explorer", "remote", "--listen", f"127.0.0.1:{port}"]
    proc = start_agent(command + list(args), log)
    return RunningAgent(f"127.0.0.1:{port}", port, proc, log)


@pytest.fixture(scope="module")
def local_agent(tmp_path_factory):
    running = local_agent_at(tmp_path_factory.mktemp("agent"))
    yield running
    stop_agent(running)


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
    address = agent.address
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
    address = agent.address
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
    address = agent.address
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
    address = agent.address
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


# -- what an agent does with a driving side that misbehaves ------------------------------


class AgentClient:
    """A driving side by hand, to send what a real one never would."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.lines = self.sock.makefile("rb")

    def line(self) -> dict | None:
        raw = self.lines.readline()
        return json.loads(raw) if raw else None

    def send(self, message: dict) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def authenticate(self, token: str = TOKEN) -> None:
        challenge = self.line()
        assert challenge is not None and challenge["op"] == "challenge"
        nonce = new_nonce()
        self.send(
            {
                "op": "hello",
                "protocol": PROTOCOL,
                "nonce": nonce,
                "proof": proof(token, "driver", challenge["nonce"], nonce),
            }
        )
        welcome = self.line()
        assert welcome is not None and welcome["op"] == "welcome", welcome
        assert welcome["proof"] == proof(token, "agent", challenge["nonce"], nonce)

    def request(self, message: dict) -> dict | None:
        self.send(message)
        return self.line()

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


OPEN_TCP = {"op": "open", "mechanism": "tcp", "options": {}}
RECEIVER_CONFIG = {"format": "msgpack", "pattern": "stream", "size": 64, "count": 10}

#: Each: requests the agent takes first, then one it must refuse in one error line.
MALFORMED_REQUESTS = {
    "options a list": ([], {"op": "open", "mechanism": "tcp", "options": []}),
    "port not a number": ([], {"op": "open", "mechanism": "tcp", "options": {"port": "abc"}}),
    "port out of range": ([], {"op": "open", "mechanism": "tcp", "options": {"port": 99999}}),
    "nagle not a bool": ([], {"op": "open", "mechanism": "tcp", "options": {"nagle": "yes"}}),
    "an unknown option": ([], {"op": "open", "mechanism": "tcp", "options": {"exec": "sh"}}),
    "mechanism a list": ([], {"op": "open", "mechanism": ["tcp"]}),
    "a local mechanism": ([], {"op": "open", "mechanism": "pipe"}),
    "duplex a string": ([], {"op": "open", "mechanism": "tcp", "duplex": "yes"}),
    "secrets a list": ([], {"op": "open", "mechanism": "tcp", "secrets": []}),
    "secrets for tcp": ([], {"op": "open", "mechanism": "tcp", "secrets": {"PYTHONPATH": "/x"}}),
    "secrets beside the broker's": (
        [],
        {
            "op": "open",
            "mechanism": "amqp",
            "secrets": {"IPCX_AMQP_URL": "amqp://u:p@192.0.2.9/", "LD_PRELOAD": "/x.so"},
        },
    ),
    "a broker URL that is not amqp": (
        [],
        {"op": "open", "mechanism": "amqp", "secrets": {"IPCX_AMQP_URL": "http://192.0.2.9/"}},
    ),
    "config a list": ([OPEN_TCP], {"op": "start", "config": []}),
    "format a list": ([OPEN_TCP], {"op": "start", "config": {**RECEIVER_CONFIG, "format": []}}),
    "size too large": ([OPEN_TCP], {"op": "start", "config": {**RECEIVER_CONFIG, "size": 2**40}}),
    "count a string": ([OPEN_TCP], {"op": "start", "config": {**RECEIVER_CONFIG, "count": "1"}}),
    "a start before an open": ([], {"op": "start", "config": RECEIVER_CONFIG}),
    "a second open": ([OPEN_TCP], OPEN_TCP),
    "an unknown request": ([], {"op": "exec", "argv": ["sh"]}),
    "an op that is a number": ([], {"op": 5}),
    "a control line before a start": ([], {"op": "control", "line": {"op": "stop"}}),
}


@pytest.mark.parametrize("name", list(MALFORMED_REQUESTS))
def test_a_malformed_request_gets_one_error_line_and_no_traceback(local_agent, name):
    before, bad = MALFORMED_REQUESTS[name]
    sessions_over = local_agent.said().count("session over")
    client = AgentClient(local_agent.port)
    try:
        client.authenticate()
        for request in before:
            answer = client.request(request)
            assert answer is not None and answer["op"] == "opened", answer
        answer = client.request(bad)
        assert answer is not None and answer["op"] == "error", answer
        assert answer["message"] and "\n" not in answer["message"]
        client.send({"op": "bye"})
        assert client.line() is None  # nothing more: the one line was all
    finally:
        client.close()
    assert wait_until(lambda: local_agent.said().count("session over") > sessions_over, 5)
    assert not agent_processes()
    assert "Traceback" not in local_agent.said(), local_agent.said()


@pytest.mark.parametrize(
    "raw",
    [
        b"{nope\n",
        b'{"op": "\xff\xfe"}\n',
        b"[" * 3000 + b"]" * 3000 + b"\n",
        b"x" * 20000 + b"\n",
    ],
    ids=["not JSON", "not UTF-8", "nested too deep", "a line too long"],
)
def test_a_line_that_is_no_request_gets_one_error_line(local_agent, raw):
    client = AgentClient(local_agent.port)
    try:
        client.authenticate()
        client.send_raw(raw)
        answer = client.line()
        assert answer is not None and answer["op"] == "error", answer
        assert answer["message"].startswith("the agent received a")
        assert client.request({"op": "clock"})["op"] == "clock"  # and the session goes on
    finally:
        client.close()
    assert "Traceback" not in local_agent.said()


@pytest.mark.parametrize(
    "hello",
    [
        b'{"op": "hello", "protocol": 2, "nonce": "' + b"0" * 32 + b'", "proof": "\\ud800"}\n',
        b'{"op": "hello", "protocol": 2, "nonce": "' + b"0" * 32 + b'", "proof": [1]}\n',
        b'{"op": "hello", "protocol": 2, "nonce": ["x"], "proof": "00"}\n',
        b'{"op": "hello", "protocol": 2, "token": "test-token-7f3a"}\n',
        b'{"op": "hello"',
        b"\xff\xfe\n",
        b"[]\n",
        b"x" * 20000,
    ],
    ids=[
        "a lone surrogate",
        "a proof that is a list",
        "a nonce that is a list",
        "the token in clear",
        "half a line",
        "not UTF-8",
        "not an object",
        "a line too long",
    ],
)
def test_a_bad_hello_is_refused_in_one_line(local_agent, hello):
    client = AgentClient(local_agent.port)
    started = time.monotonic()
    try:
        assert client.line()["op"] == "challenge"
        client.send_raw(hello)
        if not hello.endswith(b"\n") and len(hello) < 8192:
            client.sock.shutdown(socket.SHUT_WR)  # half a line, then the end
        answer = client.line()
        assert answer == {"op": "refused", "reason": "wrong or missing token"}
        assert client.line() is None
    finally:
        client.close()
    assert time.monotonic() - started < HANDSHAKE_TIMEOUT_S / 2  # said at once, not timed out
    assert "Traceback" not in local_agent.said()


def test_a_connection_reset_before_its_hello_costs_the_agent_nothing(local_agent):
    raw = socket.create_connection(("127.0.0.1", local_agent.port), timeout=10)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.close()  # RST
    client = AgentClient(local_agent.port)
    try:
        client.authenticate()
    finally:
        client.close()
    time.sleep(0.2)
    assert "Traceback" not in local_agent.said()


def test_an_open_with_secrets_for_the_environment_is_refused_and_nothing_runs(
    local_agent, tmp_path
):
    """PYTHONPATH (or LD_PRELOAD) in the receiver's environment would run the driving side's
    code: refused, for amqp too, and nothing starts."""
    marker = tmp_path / "ran"
    (tmp_path / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    url = "amqp://u:p@127.0.0.1:1/"
    for mechanism, given in [
        ("tcp", {"PYTHONPATH": str(tmp_path)}),
        ("amqp", {"IPCX_AMQP_URL": url, "PYTHONPATH": str(tmp_path)}),
    ]:
        client = AgentClient(local_agent.port)
        try:
            client.authenticate()
            answer = client.request({"op": "open", "mechanism": mechanism, "secrets": given})
            assert answer["op"] == "error" and "PYTHONPATH" in answer["message"], answer
            answer = client.request({"op": "start", "config": RECEIVER_CONFIG})
            assert answer["op"] == "error" and "open the channel first" in answer["message"]
            client.send({"op": "bye"})
            assert client.line() is None
        finally:
            client.close()
    assert not agent_processes() and not marker.exists()


def test_amqp_without_a_broker_is_refused_and_no_broker_starts(local_agent):
    before = set(os.listdir(TEST_TMP))
    client = AgentClient(local_agent.port)
    try:
        client.authenticate()
        answer = client.request({"op": "open", "mechanism": "amqp", "options": {}})
        assert answer == {"op": "error", "message": BROKER_NEEDED}
    finally:
        client.close()
    assert set(os.listdir(TEST_TMP)) - before == set()  # no private node's directory
    assert "Traceback" not in local_agent.said()


def test_unauthenticated_connections_are_bounded_in_number_and_time(local_agent):
    silent = [AgentClient(local_agent.port) for _ in range(MAX_PENDING)]
    try:
        for client in silent:
            assert client.line()["op"] == "challenge"
            client.sock.settimeout(HANDSHAKE_TIMEOUT_S + 5)
        one_more = AgentClient(local_agent.port)
        try:
            answer = one_more.line()
            assert answer["op"] == "refused" and "waiting to authenticate" in answer["reason"]
        finally:
            one_more.close()
        started = time.monotonic()
        for client in silent:  # each one given up on after the handshake's bound
            answer = client.line()
            assert answer["op"] == "refused" and "no hello within" in answer["reason"]
            assert client.line() is None
        assert time.monotonic() - started < HANDSHAKE_TIMEOUT_S + 3
    finally:
        for client in silent:
            client.close()
    client = AgentClient(local_agent.port)  # and a driving side is served again
    try:
        client.authenticate()
    finally:
        client.close()


# -- what a driving side does with an agent that misbehaves ------------------------------


class FakeAgent:
    """A listener on 127.0.0.1 that plays an agent (badly): ``script`` does what it does
    with the one connection, in a thread of the test."""

    def __init__(self, script: Callable[[FakeAgent], None]) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.script = script
        self.heard = bytearray()  # every line the driving side sent
        self.pending: list[dict] = []  # a request read ahead of its turn
        self.channel_end: ChannelPlan | None = None
        self.conn: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.conn, _ = self.server.accept()
            self.conn.settimeout(30)
            self.lines = self.conn.makefile("rb")
            self.script(self)
        except OSError:
            pass

    def send_raw(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def send(self, message: dict) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def request(self) -> dict:
        """The driving side's next request, pings skipped."""
        if self.pending:
            return self.pending.pop(0)
        while True:
            raw = self.lines.readline()
            self.heard += raw
            message = json.loads(raw) if raw else {"op": "<closed>"}
            if message["op"] != "ping":
                return message

    def handshake(self, agent_proof: str | None = None) -> None:
        nonce = new_nonce()
        self.send({"op": "challenge", "protocol": PROTOCOL, "nonce": nonce})
        hello = self.request()
        self.send(
            {
                "op": "welcome",
                "host": "fake",
                "proof": agent_proof or proof(TOKEN, "agent", nonce, hello["nonce"]),
            }
        )

    def clocks(self) -> None:
        """Answer the clock exchange; the request after it is kept for its turn."""
        request = self.request()
        while request["op"] == "clock":
            self.send({"op": "clock", "t": time.monotonic_ns()})
            request = self.request()
        self.pending.append(request)

    def real_tcp_end(self) -> dict:
        """A plan with a real listening socket, for a driving side that gets as far as
        starting its sender."""
        workdir = Path(tempfile.mkdtemp(prefix="fake-agent-"))
        self.channel_end = get_transport("tcp").create(TransportOptions(), workdir, "fake", False)
        return self.channel_end.to_json()

    def hold(self) -> None:
        """Keep the connection open, answering nothing, until the other side closes it."""
        while self.request()["op"] != "<closed>":
            pass

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()
        self.thread.join(5)
        if self.channel_end is not None:
            self.channel_end.close_fds()
            shutil.rmtree(self.channel_end.workdir, ignore_errors=True)


def run_against(fake: FakeAgent, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "ipc_explorer", "run", "-m", "tcp", "-n", "10"]
        + ["--remote", f"127.0.0.1:{fake.port}", *extra],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - started


def test_an_agent_that_never_answers_ends_the_run_in_one_line_within_a_bound():
    fake = FakeAgent(FakeAgent.hold)
    try:
        result, took = run_against(fake)
    finally:
        fake.close()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: the agent at 127.0.0.1:{fake.port} did not answer the connection within "
        f"{HANDSHAKE_TIMEOUT_S:g} s"
    ]
    assert took < HANDSHAKE_TIMEOUT_S + 10


def _after_handshake(then: Callable[[FakeAgent], None]) -> Callable[[FakeAgent], None]:
    def script(fake: FakeAgent) -> None:
        fake.handshake()
        fake.clocks()
        then(fake)

    return script


def _opened_then(*lines: bytes) -> Callable[[FakeAgent], None]:
    def then(fake: FakeAgent) -> None:
        assert fake.request()["op"] == "open"
        fake.send({"op": "opened", "plan": fake.real_tcp_end()})
        assert fake.request()["op"] == "start"
        for line in lines:
            fake.send_raw(line)

    return then


GARBAGE_AGENTS = {
    "not JSON": (lambda f: f.send_raw(b"<html>\n"), "sent a line that is not JSON"),
    "not UTF-8": (lambda f: f.send_raw(b"\xff\xfe\n"), "sent a line that is not JSON"),
    "not an object": (lambda f: f.send_raw(b"[1, 2]\n"), "sent a message without an op"),
    "a challenge without a nonce": (
        lambda f: f.send({"op": "challenge", "protocol": PROTOCOL, "nonce": 7}),
        "sent a challenge without a nonce",
    ),
    "another protocol": (
        lambda f: f.send({"op": "challenge", "protocol": 99, "nonce": new_nonce()}),
        "speaks protocol 99",
    ),
    "an agent without the token": (
        lambda f: f.handshake(agent_proof="00" * 32),
        "does not hold the shared token",
    ),
    "a clock that is not a number": (
        lambda f: (f.handshake(), f.request(), f.send({"op": "clock", "t": "noon"})),
        "did not answer the clock exchange",
    ),
    "a plan that does not fit": (
        _after_handshake(lambda f: f.send({"op": "opened", "plan": ["x"]})),
        "sent a channel plan that does not fit",
    ),
    "an error with markup": (
        _after_handshake(lambda f: f.send({"op": "error", "message": "[/bold] no [red]"})),
        "could not open the channel: (/bold) no (red)",
    ),
    "a start without a pid": (
        _after_handshake(_opened_then(b'{"op": "started", "pid": "one"}\n')),
        "started a receiver without a pid",
    ),
    "telemetry that is not base64": (
        _after_handshake(
            _opened_then(
                b'{"op": "started", "pid": 4242}\n', b'{"op": "telemetry", "data": "%%%"}\n'
            )
        ),
        "went away: it sent telemetry that is not base64",
    ),
}


@pytest.mark.parametrize("name", list(GARBAGE_AGENTS))
def test_an_agent_answering_garbage_ends_the_run_in_one_clear_line(name):
    script, expected = GARBAGE_AGENTS[name]

    def play(fake: FakeAgent) -> None:
        script(fake)
        fake.hold()

    fake = FakeAgent(play)
    try:
        result, took = run_against(fake)
    finally:
        fake.close()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert took < 30


def test_the_token_never_crosses_the_wire():
    fake = FakeAgent(lambda f: (f.handshake(), f.request(), f.conn.shutdown(socket.SHUT_RDWR)))
    try:
        run_against(fake)
    finally:
        fake.close()
    assert b'"hello"' in fake.heard and TOKEN.encode() not in fake.heard


# -- the agent's own command line and lifetime --------------------------------------------


def test_a_token_file_that_is_not_text_is_refused_in_one_line(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xff\xfe\x00binary")
    for args, status in [
        (["remote", "--token-file", str(token_file)], 2),
        (["run", "-m", "tcp", "--remote", "127.0.0.1:1", "--token-file", str(token_file)], 1),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "ipc_explorer", *args],
            env=env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == status
        assert result.stderr.strip().splitlines() == [
            f"error: the token file {token_file} is not UTF-8 text"
        ]


def test_an_ipv6_listen_address_is_refused_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "ipc_explorer", "remote", "--listen", "[::1]:7878"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: '[::1]:7878' is an IPv6 address: two hosts talk over IPv4 only"
    ]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=str)
def test_a_stopped_agent_says_so_and_exits_0(tmp_path, stop):
    running = local_agent_at(tmp_path)
    running.proc.send_signal(stop)
    assert running.proc.wait(10) == 0
    said = running.said()
    assert "agent stopped" in said and "Traceback" not in said, said


def _receivers() -> list:
    return [p for p in agent_processes() if "receiver" in p.cmdline()]


def _driver(address: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ipc_explorer", "run", "-m", "tcp", "-r", "100", "-n", "100000"]
        + ["--remote", address, "--json", *extra],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_token_is_in_no_child_environment(tmp_path):
    running = local_agent_at(tmp_path)
    driver = _driver(running.address)
    try:
        assert wait_until(lambda: len(agent_processes()) >= 2, 15)
        for child in agent_processes():  # the sender (driver's) and the receiver (agent's)
            environment = Path(f"/proc/{child.pid}/environ").read_bytes()
            assert b"IPC_EXPLORER_TOKEN" not in environment and TOKEN.encode() not in environment
    finally:
        driver.send_signal(signal.SIGINT)
        driver.communicate(timeout=15)
        stop_agent(running)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=str)
def test_when_the_agent_goes_the_run_says_so_and_nothing_is_left(tmp_path, stop):
    running = local_agent_at(tmp_path)
    driver = _driver(running.address)
    try:
        assert wait_until(lambda: len(_receivers()) == 1, 15)
        time.sleep(1)  # mid-run
        running.proc.send_signal(stop)
        out, err = driver.communicate(timeout=30)
        status = running.proc.wait(15)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait()
    assert status == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
    assert "Traceback" not in running.said() + err
    # Said as a problem of the run's summary, or as the error that ended its start.
    said = "\n".join(json.loads(out)["problems"]) if out else err
    assert f"the agent at {running.address} went away" in said, said
    # the receiver's end is the agent's going, not a signal or an exit code of its own (the
    # sender may fail after it, writing to a receiver that is gone: that is its own line)
    assert "SIGKILL" not in said and "receiver failed (exit code" not in said, said
    assert wait_until(lambda: not agent_processes(), 10)


def test_the_agent_ends_a_session_whose_driving_side_vanished_without_a_word(hosts, agent):
    """The link goes down and the driving side dies: no FIN, no RST ever reaches the agent;
    its silence ends the session within the idle bound."""
    a, _ = hosts
    driver = subprocess.Popen(
        in_host(a, "run", "-m", "tcp", "-r", "100", "-n", "100000", "--remote", agent.address),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: len(_receivers()) == 1, 15)
        time.sleep(0.5)
        assert ip("-n", a, "link", "set", sender_link(), "down").returncode == 0
        driver.kill()
        driver.wait(5)
        gone_by = time.monotonic() + 25
        assert wait_until(lambda: not _receivers(), 25), "the receiver outlived its driver"
        assert time.monotonic() < gone_by
        assert wait_until(lambda: not list(Path(TEST_TMP).glob("ipcx-agent-*")), 5)
        assert wait_until(lambda: "session over" in agent.said(), 5)
    finally:
        if driver.poll() is None:
            driver.kill()
        ip("-n", a, "link", "set", sender_link(), "up")


def test_across_hosts_throughput_uses_the_clock_offset(hosts, tmp_path):
    """The agent's CLOCK_MONOTONIC a day ahead (a time namespace): elapsed time and
    throughput still read on one clock."""
    a, b = hosts
    probe = subprocess.run(
        ["ip", "netns", "exec", b, "unshare", "--time", "--monotonic", "86400", "true"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if probe.returncode:
        pytest.skip(f"cannot make a time namespace here: {probe.stderr.strip()}")
    port = 19000 + os.getpid() % 1000
    command = ["ip", "netns", "exec", b, "unshare", "--time", "--monotonic", "86400"]
    command += [sys.executable, "-m", "ipc_explorer", "remote"]
    command += ["--listen", f"{RECEIVER_ADDR}:{port}"]
    log = tmp_path / "agent.log"
    running = RunningAgent(f"{RECEIVER_ADDR}:{port}", port, start_agent(command, log), log)
    try:
        result = run_from_a(hosts, "-m", "tcp", "-n", "2000", "--remote", running.address, "--json")
    finally:
        stop_agent(running)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["received"] == 2000
    assert abs(data["clock"]["offset_us"] / 1e6 - 86400) < 5
    assert 0 < data["elapsed_s"] < 60 and data["msgs_per_s"] > 0
