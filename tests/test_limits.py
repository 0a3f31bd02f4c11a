"""Sizes from 0 B to each mechanism's limit work; one byte more is a clear error naming it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ipc_explorer.codecs import codec_names
from ipc_explorer.session import SessionConfig, largest_size, run_once
from ipc_explorer.session.limits import _largest_fitting, largest_message
from ipc_explorer.transports import MECHANISMS, MessageTooLarge

from .conftest import run_cli

pytestmark = pytest.mark.timeout(120)

LIMIT_TEXT = {
    "udp": "the UDP datagram limit is 65507 bytes",
    "mq": "this queue's msgsize is 8192 bytes",
    "shm": "this ring's slot size is 65536 bytes",
    "unix-dgram": "this Unix datagram socket's limit is",
    "pipe": "caps a message on a pipe at 16777216 bytes",
    "http": "caps an HTTP body at",
}


async def run(config: SessionConfig) -> dict:
    return (await run_once(config))[1]


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_empty_and_largest_messages_arrive(mechanism):
    fmt = "json"
    empty = await run(SessionConfig(mechanism=mechanism, format=fmt, count=50, size=0))
    assert empty["received"] == 50 or mechanism == "udp"
    largest = await largest_size(SessionConfig(mechanism=mechanism, format=fmt, count=2))
    assert largest > 1000
    # two of them: the second starts right where the first ends (16 MiB on a stream)
    summary = await run(SessionConfig(mechanism=mechanism, format=fmt, count=2, size=largest))
    assert summary["sent"] == 2
    if mechanism != "udp":
        assert summary["received"] == 2 and summary["ok"], summary["problems"]
    with pytest.raises(MessageTooLarge):
        await run(SessionConfig(mechanism=mechanism, format=fmt, count=3, size=largest + 1))


@pytest.mark.parametrize("mechanism", ["udp", "mq", "shm", "unix-dgram", "pipe", "http"])
async def test_one_byte_over_the_limit_is_a_clear_cli_error(mechanism):
    largest = await largest_size(SessionConfig(mechanism=mechanism, format="msgpack", count=10))
    result = run_cli("run", "-m", mechanism, "-f", "msgpack", "-n", "10", "-s", str(largest + 1))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "message too large" in result.stderr
    assert LIMIT_TEXT[mechanism] in " ".join(result.stderr.split())


def _bisected(config: SessionConfig, limit: int) -> int:
    """The plain search: one probe per halving."""
    low, high = 0, limit
    if largest_message(replace(config, size=0)) > limit:
        return -1
    while low < high:
        mid = (low + high + 1) // 2
        if largest_message(replace(config, size=mid)) <= limit:
            low = mid
        else:
            high = mid - 1
    return low


@pytest.mark.parametrize("fmt", codec_names())
def test_the_guided_search_finds_what_bisection_finds(fmt):
    for count in (1, 3, None, 1000):
        for limit in (10, 100, 8192, 65507, 65536, 1 << 20):
            config = SessionConfig(mechanism="pipe", format=fmt, count=count)
            assert _largest_fitting(config, limit) == _bisected(config, limit), (count, limit)
