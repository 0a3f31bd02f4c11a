"""AMQP through a real RabbitMQ: the run's private node, a private node of a command's own,
the machine's running broker, and the faults that tell a broker from a pipe."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path

import pytest

from ipc_explorer.inspector.annotated import annotate_sample
from ipc_explorer.session import Session, SessionConfig
from ipc_explorer.transports import TransportError, TransportOptions, amqp, rabbitmq
from ipc_explorer.transports.amqp import AmqpTransport

from .conftest import TEST_TMP, broker_args, run_cli

pytestmark = [pytest.mark.timeout(90), pytest.mark.amqp]

SYSTEM_BROKER = "amqp://guest:guest@127.0.0.1:5672/%2F"


def node_processes(directory: str) -> list[int]:
    """Processes that run from a private node's directory (its VM, its epmd)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if directory.encode() in environ:
            found.append(int(name))
    return found


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def test_a_run_through_the_broker_delivers_every_message_and_says_which_broker():
    result = run_cli("run", "-m", "amqp", "-n", "2000", "--json", *broker_args())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sent"] == data["received"] == 2000 and data["ok"]
    assert (data["lost"], data["duplicated"], data["reordered"], data["corrupt"]) == (0, 0, 0, 0)
    broker = data["broker"]
    assert broker["product"] == "RabbitMQ" and broker["version"].startswith("3.")
    assert broker["where"].startswith("127.0.0.1:") and broker["acks"] == "manual"
    assert broker["url"].startswith("amqp://ipcx:***@")  # the private node's own user
    assert amqp._private.password not in result.stdout + result.stderr  # never printed
    assert set(data["stages_us"]) >= {"confirm", "ack"}


def test_without_a_broker_a_private_node_is_started_and_nothing_is_left_after():
    before = set(os.listdir(TEST_TMP))
    result = run_cli("run", "-m", "amqp", "-n", "300", "-p", "ping-pong", "--json", timeout=90)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["broker"]["private"] and data["received"] == 300
    assert "private RabbitMQ node" in result.stderr  # its start is said while it happens
    left = set(os.listdir(TEST_TMP)) - before
    assert not [name for name in left if name.startswith(rabbitmq.DIR_PREFIX)]
    assert not any(node_processes(os.path.join(TEST_TMP, n)) for n in left)


def test_the_machines_running_broker_can_be_given():
    if not reachable(5672):
        pytest.skip("no RabbitMQ listens on 127.0.0.1:5672 here")
    result = run_cli("run", "-m", "amqp", "-n", "500", "--json", "--broker", SYSTEM_BROKER)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert not data["broker"]["private"] and data["broker"]["where"] == "127.0.0.1:5672"
    assert data["received"] == 500


@pytest.mark.parametrize(
    "broker, said",
    [
        ("amqp://ipcx:wrong@127.0.0.1:{port}/%2F", "refused the credentials"),
        ("amqp://guest:guest@127.0.0.1:1/%2F", "cannot reach the AMQP broker"),
    ],
)
def test_a_bad_broker_is_one_clear_line(broker, said):
    port = amqp._private.amqp_port if amqp._private else 5672
    result = run_cli("run", "-m", "amqp", "-n", "10", "--broker", broker.format(port=port))
    assert result.returncode == 1
    assert said in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert ":wrong@" not in result.stderr  # credentials never printed


async def test_without_rabbitmq_installed_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(rabbitmq, "SERVER", "/nonexistent/rabbitmq-server")
    with pytest.raises(TransportError, match="apt-get install rabbitmq-server"):
        await rabbitmq.PrivateBroker.start()


@pytest.mark.parametrize("auto_ack", [False, True])
def test_a_killed_consumer_is_replaced_and_acks_decide_what_is_lost(auto_ack):
    args = ["run", "-m", "amqp", "-n", "3000", "--kill-receiver-at", "600", "--json"]
    result = run_cli(*args, *(["--auto-ack"] if auto_ack else []), *broker_args())
    data = json.loads(result.stdout)
    assert data["receivers"] == 2
    if auto_ack:  # the broker forgot what it had delivered: lost, and said
        assert data["lost"] > 0 and result.returncode == 1 and not data["ok"]
    else:  # redelivered to the new consumer: nothing lost
        assert data["lost"] == 0 and data["redelivered"] > 0 and data["ok"], data["problems"]
        assert data["duplicated"] <= data["redelivered"]
        assert result.returncode == 0


async def test_a_broker_that_stops_mid_run_ends_the_run_with_a_clear_problem():
    node = await rabbitmq.PrivateBroker.start()
    try:
        options = TransportOptions(broker=node.url)
        session = Session(SessionConfig(mechanism="amqp", count=None, rate=500, options=options))
        await session.start()
        try:
            await asyncio.sleep(0.5)
            for proc in node.processes:
                proc.kill()  # the broker dies under both children
            started = time.monotonic()
            while session.alive("sender") and session.stats.sender.state != "error":
                assert time.monotonic() - started < 15, "the sender hangs on a dead broker"
                await asyncio.sleep(0.1)
            problems = " ".join(session.problems)
            assert "broker" in problems
        finally:
            await session.stop(drain=False)
    finally:
        await node.stop()


async def test_the_bytes_panel_shows_the_amqp_frames_around_the_payload():
    session = Session(SessionConfig(mechanism="amqp", count=None, rate=200, format="json"))
    await session.start()
    try:
        for _ in range(50):
            await asyncio.sleep(0.1)
            if session.stats.recent:
                break
        sample = session.stats.recent[-1]
        message = annotate_sample(sample, session.codec)
        assert message.error is None
        paths = [s.path for s in message.spans]
        assert paths[0] == "amqp.method.frame" and "amqp.header" in paths
        assert "amqp.body.frame" in paths and paths[-1] == "amqp.body.end"
        assert message.wire[-1] == 0xCE  # AMQP's frame-end octet after the payload
        assert any(s.kind == "key" for s in message.spans)  # the JSON payload, decoded
    finally:
        await session.stop(drain=False)


def test_a_stale_private_node_of_a_killed_run_is_removed_at_the_next_start(tmp_path):
    stale = tmp_path / f"{rabbitmq.DIR_PREFIX}stale"
    stale.mkdir()
    (stale / rabbitmq.OWNER_FILE).write_text(json.dumps({"pid": 2**22 - 3, "start_time": 1}))
    live = tmp_path / f"{rabbitmq.DIR_PREFIX}live"
    live.mkdir()
    me = {"pid": os.getpid(), "start_time": rabbitmq._start_time(os.getpid())}
    (live / rabbitmq.OWNER_FILE).write_text(json.dumps(me))
    assert rabbitmq.sweep_stale(tmp_path) == 1
    assert not stale.exists() and live.exists()


def test_step_mode_shows_the_delivery_waiting_in_the_consumers_socket():
    result = run_cli("step", "-m", "amqp", "--json", *broker_args())
    assert result.returncode == 0, result.stderr
    stages = {s["stage"]: s for s in json.loads(result.stdout)["messages"][0]["stages"]}
    assert stages["send"]["kernel"]["consumer_queued_bytes"] > 0
    assert stages["receive"]["kernel"]["consumer_queued_bytes"] == 0
    assert "queue.declare" in stages["kernel"]["sources"]["queue_depth"]


def test_the_transport_explains_itself():
    assert AmqpTransport.reconnectable and not AmqpTransport.children_destroy
