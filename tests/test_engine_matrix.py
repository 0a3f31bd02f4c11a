"""Every mechanism x every format, with real processes: every message accounted for."""

from __future__ import annotations

import posix_ipc
import pytest

from ipc_explorer.codecs import codec_names
from ipc_explorer.session import Session, SessionConfig, run_once
from ipc_explorer.transports import MECHANISMS

pytestmark = pytest.mark.timeout(60)

FORMATS = ["json", "xml", "msgpack", "struct"]


def test_every_format_is_registered():
    assert sorted(codec_names()) == sorted(FORMATS)


run_session = run_once


def assert_kernel_objects_gone(session: Session) -> None:
    """Reopen every named object the session created: each must be gone."""
    assert session.plan is not None
    names = session.plan.names
    for ring in ("forward", "back"):
        value = names.get(ring)
        if isinstance(value, dict):  # shm: a segment and three semaphores
            with pytest.raises(posix_ipc.ExistentialError):
                posix_ipc.SharedMemory(value["shm"])
            for key in ("empty", "full", "mutex"):
                with pytest.raises(posix_ipc.ExistentialError):
                    posix_ipc.Semaphore(value[key])
        elif isinstance(value, str) and value.startswith("/ipcx-"):  # mq
            with pytest.raises(posix_ipc.ExistentialError):
                posix_ipc.MessageQueue(value)
    assert session.workdir is not None and not session.workdir.exists()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_every_message_arrives_verified(mechanism, fmt):
    config = SessionConfig(mechanism=mechanism, format=fmt, pattern="stream", count=1000, size=100)
    session, summary = await run_session(config)
    assert summary["sent"] == 1000
    assert summary["duplicated"] == 0
    assert summary["corrupt"] == 0
    if mechanism == "udp":
        # Loss is allowed, but counted exactly: what the receiver misses is what the kernel dropped.
        assert summary["received"] + summary["lost"] == 1000
        assert summary["lost"] == summary["kernel_drops"]
    else:
        assert summary["received"] == 1000
        assert summary["lost"] == 0
        assert summary["reordered"] == 0
        assert summary["ok"], summary["problems"]
    assert summary["payload_bytes"] > 1000 * 100
    assert summary["wire_bytes"] > summary["payload_bytes"]
    assert_kernel_objects_gone(session)


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_ping_pong_echoes_every_message(mechanism):
    config = SessionConfig(
        mechanism=mechanism, format="msgpack", pattern="ping-pong", count=300, size=64
    )
    session, summary = await run_session(config)
    assert summary["sent"] == 300
    if mechanism != "udp":
        assert summary["received"] == 300 and summary["ok"], summary["problems"]
        assert summary["timeouts"] == 0
    lat = summary["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    stages = summary["stages_us"]
    assert stages["serialize"] > 0 and stages["transmit"] > 0 and stages["deserialize"] > 0
    assert_kernel_objects_gone(session)


async def test_shm_reports_semaphore_waits():
    config = SessionConfig(mechanism="shm", format="msgpack", pattern="stream", count=3000, size=64)
    session, summary = await run_session(config)
    assert summary["ok"]
    labels = {s["label"] for s in session.stats.receiver.sync} | {
        s["label"] for s in session.stats.sender.sync
    }
    assert {"forward empty", "forward full", "forward mutex"} <= labels
    acquisitions = sum(
        s["acquisitions"] for s in session.stats.sender.sync if s["label"] == "forward empty"
    )
    assert acquisitions == 3000
