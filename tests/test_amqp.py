"""AMQP through a real RabbitMQ: the run's private node, a private node of a command's own,
the machine's running broker, and the faults that tell a broker from a pipe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipc_explorer.inspector.annotated import annotate_sample
from ipc_explorer.session import Session, SessionConfig
from ipc_explorer.transports import TransportError, amqp, rabbitmq
from ipc_explorer.transports.amqp import AmqpTransport
from ipc_explorer.transports.base import seconds_from_env

from .conftest import ROOT, TEST_TMP, broker_args, run_cli, wait_until

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
    result = run_cli("run", "-m", "amqp", "-n", "1000", "--json", *broker_args())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sent"] == data["received"] == 1000 and data["ok"]
    assert (data["lost"], data["duplicated"], data["reordered"], data["corrupt"]) == (0, 0, 0, 0)
    broker = data["broker"]
    assert broker["product"] == "RabbitMQ" and broker["version"].startswith("3.")
    assert broker["where"].startswith("127.0.0.1:") and broker["acks"] == "manual"
    assert broker["url"].startswith("amqp://ipcx:***@")  # the private node's own user
    assert amqp._private.password not in result.stdout + result.stderr  # never printed
    assert set(data["stages_us"]) >= {"confirm", "ack"}


def test_without_a_broker_a_private_node_serves_the_run_and_dies_with_it():
    """The default: the command starts a node of its own (said on stderr while it starts);
    when that node dies mid-run the run ends at once with a clear problem, and nothing of the
    node is left behind."""
    before = set(os.listdir(TEST_TMP))
    run = subprocess.Popen(
        [sys.executable, "-m", "ipc_explorer", "run", "-m", "amqp", "-n", "10000000"]
        + ["-r", "2000", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        said = [run.stderr.readline()]
        assert "starting a private RabbitMQ node" in said[0]
        while "private RabbitMQ node ready" not in said[-1]:  # said each second until then
            said.append(run.stderr.readline())
            assert said[-1], f"the run ended before its node was ready: {said}"
        nodes = _new_nodes(before)
        time.sleep(1.5)  # messages flow through the node
        for pid in node_processes(str(nodes[0])):
            with contextlib.suppress(ProcessLookupError):  # a helper of the node may be done
                os.kill(pid, signal.SIGKILL)  # the broker dies under both children
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1 and "Traceback" not in err
    assert "broker" in " ".join(json.loads(out)["problems"])
    assert wait_until(lambda: not _new_nodes(before), 5)
    assert not node_processes(str(nodes[0]))


def _new_nodes(before: set[str]) -> list[Path]:
    return [
        Path(TEST_TMP) / name
        for name in set(os.listdir(TEST_TMP)) - before
        if name.startswith(rabbitmq.DIR_PREFIX)
    ]


def test_the_machines_running_broker_can_be_given():
    if not reachable(5672):
        pytest.skip("no RabbitMQ listens on 127.0.0.1:5672 here")
    result = run_cli("run", "-m", "amqp", "-n", "500", "--json", "--broker", SYSTEM_BROKER)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert not data["broker"]["private"] and data["broker"]["where"] == "127.0.0.1:5672"
    assert data["received"] == 500
    assert data["broker"]["url"].startswith("amqp://guest:***@")
    assert "guest:guest" not in result.stdout + result.stderr  # the given password neither


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
    args = ["run", "-m", "amqp", "-n", "2000", "--kill-receiver-at", "500", "--json"]
    result = run_cli(*args, *(["--auto-ack"] if auto_ack else []), *broker_args())
    data = json.loads(result.stdout)
    assert data["receivers"] == 2
    if auto_ack:  # the broker forgot what it had delivered: lost, and said
        assert data["lost"] > 0 and result.returncode == 1 and not data["ok"]
    else:  # redelivered to the new consumer: nothing lost
        assert data["lost"] == 0 and data["redelivered"] > 0 and data["ok"], data["problems"]
        assert data["duplicated"] <= data["redelivered"]
        assert result.returncode == 0


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
    # Without an owner record: one just made by a run starting now, one long abandoned.
    starting = tmp_path / f"{rabbitmq.DIR_PREFIX}starting"
    starting.mkdir()
    abandoned = tmp_path / f"{rabbitmq.DIR_PREFIX}abandoned"
    abandoned.mkdir()
    long_ago = time.time() - 2 * rabbitmq.OWNERLESS_GRACE_S
    os.utime(abandoned, (long_ago, long_ago))
    assert rabbitmq.sweep_stale(tmp_path) == 2
    assert not stale.exists() and not abandoned.exists()
    assert live.exists() and starting.exists()


def test_step_mode_shows_the_delivery_waiting_in_the_consumers_socket():
    result = run_cli("step", "-m", "amqp", "--json", *broker_args())
    assert result.returncode == 0, result.stderr
    stages = {s["stage"]: s for s in json.loads(result.stdout)["messages"][0]["stages"]}
    assert stages["send"]["kernel"].get("consumer_queued_bytes", 0) > 0, stages["send"]
    assert stages["receive"]["kernel"]["consumer_queued_bytes"] == 0
    assert "queue.declare" in stages["kernel"]["sources"]["queue_depth"]


def test_the_transport_explains_itself():
    assert AmqpTransport.reconnectable and not AmqpTransport.children_destroy


async def test_k_in_the_app_replaces_the_consumer_and_the_broker_redelivers():
    from textual.widgets import Static

    from ipc_explorer.tui.app import IpcExplorerApp

    from .test_tui import SIZE, diagram, notifications, text_of, until

    app = IpcExplorerApp(SessionConfig(mechanism="amqp", rate=200))
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot, lambda: "received 50" in diagram(app) or "received 5" in diagram(app), 20
        )
        first = app.session.stats.receiver.pid
        # The receiver paused, the broker fills its prefetch window: deliveries it holds
        # unacknowledged when it is killed.
        await pilot.press("p")
        await pilot.pause(0.6)
        await pilot.press("k")
        await until(pilot, lambda: app.session.receivers == 2, 15)
        assert app.session.stats.receiver.pid != first
        await until(pilot, lambda: "a new one took over" in notifications(app), 10)
        received = app.session.stats.receiver.count("unique")
        await until(pilot, lambda: app.session.stats.receiver.count("unique") > received + 20, 10)
        await until(pilot, lambda: "queue depth" in diagram(app), 5)  # the broker's count
        await until(pilot, lambda: "redelivered" in diagram(app), 5)
        assert "lost 0" in diagram(app)
        # The broker's confirm and ack are listed beside the path, not stacked into its bar.
        stages = text_of(app.query_one("#stages", Static))
        assert "beside the path" in stages and "ack" in stages.split("beside the path")[1]
        await app.action_quit()


def test_a_frozen_broker_ends_the_run_with_a_clear_problem(broker):
    """A broker that stops answering without closing anything (SIGSTOP: a hung VM, a host
    cut off) is noticed by its missing heartbeats: the run ends, it does not hang."""
    run = subprocess.Popen(
        [sys.executable, "-m", "ipc_explorer", "run", "-m", "amqp", "-n", "10000000"]
        + ["-r", "500", "--json", *broker_args()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # the shortest heartbeat a user may ask for: a frozen broker noticed sooner
        env=dict(os.environ, PYTHONPATH=str(ROOT), IPCX_AMQP_HEARTBEAT_S="2"),
    )
    frozen = node_processes(str(broker.directory))
    try:
        time.sleep(2)  # messages flow through the node
        assert run.poll() is None, run.communicate()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        out, err = run.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1 and "Traceback" not in err
    problems = " ".join(json.loads(out)["problems"])
    assert "stopped answering (no heartbeat for over 2 s)" in problems, problems
    assert took < 30, f"took {took:.0f} s to notice"


def test_a_listener_that_is_no_broker_is_one_clear_line(monkeypatch):
    """A port that accepts connections and never speaks AMQP: refused in seconds, not hung."""
    monkeypatch.setenv("IPCX_AMQP_CONNECT_S", "2")  # the default waits 8 s for an answer
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        result = run_cli(
            "run", "-m", "amqp", "-n", "10", "--broker", f"amqp://u:pw@127.0.0.1:{port}/"
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no AMQP answer" in result.stderr and ":pw@" not in result.stderr


@pytest.mark.parametrize(
    "args, said",
    [
        (["-n", "100", "--kill-receiver-at", "500"], "must be below --count 100"),
        (["-n", "0", "--kill-receiver-at", "1"], "must be below --count 0"),
        (["--prefetch", "-1"], "--prefetch must be 0"),
        (["--prefetch", "70000"], "--prefetch must be 0"),
        (["--broker", "amqp://u:secret@127.0.0.1:99999/"], "is not a URL"),
        (["--broker", "amqp://u:secret@[::1/"], "is not a URL"),
        (["--broker", "http://u:secret@127.0.0.1/"], "amqp:// or amqps://"),
    ],
)
def test_impossible_amqp_settings_are_refused_before_anything_starts(args, said):
    result = run_cli("run", "-m", "amqp", *args, timeout=20)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert "secret" not in result.stderr


async def test_a_receiver_paused_past_the_heartbeats_keeps_its_connection(monkeypatch):
    """Heartbeats go through pika's loop only while it runs: a child that holds (paused,
    stepping) keeps them going, so a pause longer than the broker's patience loses nothing."""
    monkeypatch.setenv("IPCX_AMQP_HEARTBEAT_S", "2")  # the children's heartbeat: 2 s
    monkeypatch.setattr(amqp, "HEARTBEAT_S", 2)
    session = Session(SessionConfig(mechanism="amqp", count=None, rate=200))

    async def received(count: int) -> None:
        for _ in range(200):
            if session.stats.receiver.count("unique") >= count:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{count} messages did not arrive: {session.problems}")

    await session.start()
    try:
        await received(50)
        session.pause("receiver")
        # Long enough that a connection without heartbeats is closed by the broker meanwhile.
        await asyncio.sleep(4 * amqp.HEARTBEAT_S)
        session.resume("receiver")
        await received(session.stats.sender.count("sent") + 50)
        assert not session.problems and session.alive("receiver")
        # every message in order: no gap, nothing twice (the connection was never lost)
        assert session.stats.receiver.count("missing") == 0
        assert session.stats.receiver.count("duplicated") == 0
    finally:
        await session.stop()


@pytest.mark.parametrize("text", ["abc", "0", "-3", "nan", "1e9"])
def test_a_tuned_timing_that_is_no_number_of_seconds_is_said_and_the_default_kept(
    text, monkeypatch, capsys
):
    monkeypatch.setenv("IPCX_AMQP_HEARTBEAT_S", text)
    assert seconds_from_env("IPCX_AMQP_HEARTBEAT_S", 5, 1) == 5
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and f"IPCX_AMQP_HEARTBEAT_S={text!r}" in said and "using 5" in said


def test_a_tuned_timing_is_taken(monkeypatch):
    monkeypatch.setenv("IPCX_REMOTE_IDLE_S", "7.5")
    assert seconds_from_env("IPCX_REMOTE_IDLE_S", 15, 3) == 7.5
