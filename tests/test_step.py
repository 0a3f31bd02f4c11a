"""Step mode on real children: one stage at a time, and between the send and the receive the
kernel holds exactly the message, on every mechanism."""

from __future__ import annotations

import asyncio
import json

import pytest

from ipc_explorer.session import Session, SessionConfig
from ipc_explorer.teach.step import ONE_WAY, ROUND_TRIP, Stepper
from ipc_explorer.transports import MECHANISMS

from .conftest import run_cli

pytestmark = pytest.mark.timeout(60)

#: The kernel fact that holds the message between send and receive, and its value then.
HELD_BY = {
    "pipe": ("queued_bytes", "wire"),
    "fifo": ("queued_bytes", "wire"),
    "unix-stream": ("queued_bytes", "wire"),
    "tcp": ("queued_bytes", "wire"),
    "http": ("queued_bytes", "wire"),
    "http-close": ("queued_bytes", "wire"),
    "https": ("queued_bytes", "wire"),  # the request's TLS records, byte for byte
    # the send's bytes include the ClientHello, which the held server answered (so that the
    # handshake could finish): its socket holds the client's Finished and the request
    "https-close": ("queued_bytes", "some"),
    "udp": ("next_datagram_bytes", "wire"),
    "unix-dgram": ("next_datagram_bytes", "wire"),
    "mq": ("queue_depth", 1),
    "shm": ("full", 1),
    # the broker pushes a delivery (prefetch) into the consumer's socket at once
    "amqp": ("consumer_queued_bytes", "some"),
}


async def stepped(config: SessionConfig, messages: int) -> list[list]:
    session = Session(config)
    await session.start()
    try:
        stepper = Stepper(session)
        await stepper.enter()
        return [await stepper.one_message() for _ in range(messages)]
    finally:
        await session.stop(drain=False)


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_the_kernel_holds_exactly_the_message_between_send_and_receive(mechanism):
    config = SessionConfig(mechanism=mechanism, format="msgpack", count=None, step=True)
    for reports in await stepped(config, 2):
        assert [r.stage for r in reports] == list(ONE_WAY)
        by_stage = {r.stage: r for r in reports}
        wire = by_stage["send"].reported["wire_bytes"]
        fact, held = HELD_BY[mechanism]
        expected = wire if held == "wire" else held
        assert by_stage["build"].kernel.get(fact) == 0, "nothing in the kernel before the send"
        if held == "some":
            assert by_stage["send"].kernel.get(fact) > 0
            assert by_stage["kernel"].kernel.get(fact) == by_stage["send"].kernel.get(fact)
        else:
            assert by_stage["send"].kernel.get(fact) == expected
            assert by_stage["kernel"].kernel.get(fact) == expected
        assert by_stage["receive"].kernel.get(fact) == 0, "the receive took it out"
        assert by_stage["verified"].reported["in_order"]
        assert by_stage["verified"].reported["intact"]
        assert by_stage["kernel"].kernel.sources()[fact], "every fact says where it came from"
        assert str(wire) in by_stage["send"].narration or mechanism == "shm"


async def test_a_round_trip_steps_through_the_echo_too():
    config = SessionConfig(mechanism="unix-stream", pattern="ping-pong", count=None, step=True)
    (reports,) = await stepped(config, 1)
    assert [r.stage for r in reports] == list(ROUND_TRIP)
    assert reports[-1].reported["rtt_ns"] > 0


async def test_step_mode_entered_while_the_flow_runs_holds_then_resumes_at_the_rate():
    session = Session(SessionConfig(mechanism="pipe", count=None, rate=200))
    await session.start()
    try:
        await asyncio.sleep(0.5)
        stepper = Stepper(session)
        await stepper.enter()
        sent = session.stats.sender.count("sent")
        await asyncio.sleep(0.4)
        session.send_control("sender", {"op": "report"})
        await asyncio.sleep(0.1)
        assert session.stats.sender.count("sent") == sent, "held: nothing moves by itself"
        reports = await stepper.one_message()
        by_stage = {r.stage: r for r in reports}
        assert (
            by_stage["kernel"].kernel.get("queued_bytes") == by_stage["send"].reported["wire_bytes"]
        )
        await stepper.leave()
        await asyncio.sleep(0.6)
        assert session.stats.sender.count("sent") > sent + 20, "the flow goes on at its rate"
        assert session.stats.receiver.count("unique") > sent
    finally:
        await session.stop(drain=False)
    assert not session.problems


def test_the_step_command_prints_each_message_with_its_stages_and_the_kernel_facts():
    result = run_cli("step", "--mechanism", "mq", "--format", "json", "--count", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] and [m["seq"] for m in data["messages"]] == [0, 1]
    for message in data["messages"]:
        assert message["wire_bytes"] > message["payload_bytes"] > 0
        kernel = {s["stage"]: s["kernel"] for s in message["stages"]}
        assert kernel["kernel"]["queue_depth"] == 1
        assert kernel["verified"]["queue_depth"] == 0


def test_the_step_command_says_as_text_what_happens():
    result = run_cli("step", "--mechanism", "pipe")
    assert result.returncode == 0, result.stderr
    assert "the pipe's kernel buffer" in result.stdout
    assert "queued_bytes 131" in result.stdout


@pytest.mark.parametrize(
    "args",
    [("--count", "0"), ("--mechanism", "nope"), ("--format", "yaml"), ("--pattern", "x")],
)
def test_bad_step_usage_is_one_line_and_exit_2(args):
    result = run_cli("step", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


async def test_entering_step_mode_on_a_full_pipe_drains_it_first():
    """A paused receiver left a full pipe and a writer blocked in write(2): step mode lets the
    receiver drain it, then holds both with nothing between them."""
    session = Session(SessionConfig(mechanism="pipe", count=None, size=512))
    await session.start()
    try:
        await asyncio.sleep(0.2)
        session.pause("receiver")
        await asyncio.sleep(0.5)  # the pipe fills within a fraction of that
        stepper = Stepper(session)
        await stepper.enter()
        reports = {r.stage: r for r in await stepper.one_message()}
        wire = reports["send"].reported["wire_bytes"]
        assert reports["kernel"].kernel.get("queued_bytes") == wire
        assert reports["receive"].reported["seq"] == reports["build"].seq
        assert "not " not in reports["receive"].narration.split(":")[0]
    finally:
        await session.stop(drain=False)


async def test_a_udp_round_trip_waits_for_its_echo_while_the_receiver_is_stepped():
    config = SessionConfig(mechanism="udp", pattern="ping-pong", count=None, step=True)
    session = Session(config)
    await session.start()
    try:
        stepper = Stepper(session)
        await stepper.enter()
        for _ in range(len(ROUND_TRIP) - 1):
            report = await stepper.advance()
            await asyncio.sleep(0.25)  # slower than the lossy timeout (0.5 s) in all
        report = await stepper.advance()
        assert report.stage == "echo" and report.reported["rtt_ns"] > 0
        session.send_control("sender", {"op": "report"})
        await asyncio.sleep(0.2)
        assert session.stats.sender.count("timeouts") == 0
    finally:
        await session.stop(drain=False)
