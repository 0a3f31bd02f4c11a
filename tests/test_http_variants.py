"""HTTP side by side: keep-alive, a connection per request, TLS 1.3 with and without keep-alive.
Real processes, real sockets, a real certificate; the endpoints answer a real HTTP client."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
import trustme

from ipc_explorer.session import Session, SessionConfig, SessionError, run_once
from ipc_explorer.teach.step import ROUND_TRIP, Stepper
from ipc_explorer.transports.https import HttpsTransport
from ipc_explorer.transports.tls import make_certificates
from ipc_explorer.tui.app import IpcExplorerApp

from .conftest import run_cli
from .test_tui import SIZE, diagram, until

pytestmark = pytest.mark.timeout(60)

VARIANTS = ["http", "http-close", "https", "https-close"]
#: A TLS 1.3 record's overhead: 5-byte header, 16-byte AEAD tag, 1 content-type byte.
TLS13_RECORD_OVERHEAD = 22


@pytest.mark.parametrize("pattern", ["stream", "ping-pong"])
@pytest.mark.parametrize("mechanism", VARIANTS)
async def test_every_variant_delivers_every_message_intact(mechanism, pattern):
    config = SessionConfig(mechanism=mechanism, pattern=pattern, count=300, size=200)
    _, summary = await run_once(config)
    assert summary["ok"], summary["problems"]
    assert summary["sent"] == summary["received"] == 300
    assert summary["lost"] == summary["corrupt"] == summary["duplicated"] == 0
    split = summary["wire_split"]
    assert sum(split.values()) == summary["wire_bytes"], "the split adds up to the socket's count"
    assert split["body"] == summary["payload_bytes"]


@pytest.mark.parametrize("mechanism", VARIANTS)
def test_run_json_counts_connections_handshakes_and_the_split(mechanism):
    count = 200
    result = run_cli("run", "-m", mechanism, "-n", str(count), "-s", "100", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["received"] == count and summary["ok"]
    split = summary["wire_split"]
    assert sum(split.values()) == summary["wire_bytes"]
    assert split["body"] == summary["payload_bytes"]
    assert split["headers"] > 150 * count, "a request head is a couple of hundred bytes"
    per_request = mechanism.endswith("-close")
    assert summary["connections"] == (count if per_request else 1)
    stages = summary["stages_us"]
    assert (stages.get("connect", 0) > 0) == per_request
    if not mechanism.startswith("https"):
        assert split["tls"] == 0
        assert "handshakes" not in summary and "tls_version" not in summary
        return
    assert summary["tls_version"] == "TLSv1.3"
    # one handshake per connection: once with keep-alive, per request without
    assert summary["handshakes"] == summary["connections"]
    if per_request:
        assert stages["handshake"] > 0
        # each connection offers the session of the one before, and the server resumes it
        assert summary["resumptions"] == count - 1
        assert split["tls"] > TLS13_RECORD_OVERHEAD * count, "handshakes are on the wire too"
    else:
        assert summary["resumptions"] == 0
        # one record per request, measured at the socket: exactly the record layer's overhead
        assert split["tls"] == TLS13_RECORD_OVERHEAD * count


def _with_foreign_ca(cls, workdir: Path, host: str) -> dict[str, str]:
    files = make_certificates(workdir, host)
    trustme.CA().cert_pem.write_to_path(files["ca_file"])  # the client trusts another CA
    return files


def _for_another_name(cls, workdir: Path, host: str) -> dict[str, str]:
    return make_certificates(workdir, "localhost")  # no IP SAN for 127.0.0.1


@pytest.mark.parametrize(
    "files, why",
    [
        (_with_foreign_ca, "unable to get local issuer certificate"),
        (_for_another_name, "IP address mismatch"),
    ],
)
@pytest.mark.parametrize("mechanism", ["https", "https-close"])
async def test_a_certificate_that_does_not_match_is_refused_in_one_clear_line(
    monkeypatch, mechanism, files, why
):
    monkeypatch.setattr(HttpsTransport, "channel_files", classmethod(files))
    config = SessionConfig(mechanism=mechanism, count=20)
    if mechanism == "https":  # keep-alive: the handshake is the channel's setup
        with pytest.raises(SessionError) as refused:
            await run_once(config)
        problems = str(refused.value)
    else:  # a connection per request: the first send fails
        _, summary = await run_once(config)
        assert not summary["ok"] and summary["received"] == 0
        problems = " ".join(summary["problems"])
    assert "certificate was refused" in problems and why in problems, problems
    assert "Traceback" not in problems


def _client_get(url: str, ca_file: str | None) -> tuple[int, str, str]:
    """GET ``url`` with curl where it is installed, else http.client: status, type, body."""
    if shutil.which("curl"):
        args = ["curl", "-sS", "--max-time", "5", "-w", "\n%{http_code} %{content_type}", url]
        if ca_file:
            args[1:1] = ["--cacert", ca_file]
        out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=True).stdout
        body, _, tail = out.rpartition("\n")
        status, _, content_type = tail.partition(" ")
        return int(status), content_type, body
    host_port = url.split("/")[2]
    if ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host_port, timeout=5, context=context
        )
    else:
        conn = http.client.HTTPConnection(host_port, timeout=5)
    conn.request("GET", "/" + url.split("/", 3)[3])
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, response.getheader("Content-Type", ""), body


def _send_garbage(host: str, port: int, ca_file: str | None) -> bytes:
    """Bytes that are no HTTP request (inside TLS where the endpoint is https); the answer."""
    sock = socket.create_connection((host, port), timeout=5)
    if ca_file:
        sock = ssl.create_default_context(cafile=ca_file).wrap_socket(sock, server_hostname=host)
    with sock:
        sock.sendall(b"\x16\x03 this is not HTTP \x00\x01\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize("mechanism", VARIANTS)
async def test_the_endpoint_answers_a_real_client_and_a_bad_request_gets_400(mechanism):
    count = 800  # two seconds at the rate: the clients ask while it runs
    session = Session(SessionConfig(mechanism=mechanism, count=count, rate=400))
    try:
        await session.start()
        rcv = session.stats.receiver
        await session._until(lambda: rcv.count("received") > 20, 10, "flow")
        url = rcv.describe["kernel_object"].split()[0]
        names = session.plan.names
        ca_file = names.get("ca_file")
        if ca_file:
            assert ca_file in rcv.describe["kernel_object"], "the CA file is printed"
            assert stat.S_IMODE(os.stat(names["server_pem"]).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(session.workdir).st_mode) == 0o700
        assert url == f"{mechanism.split('-')[0]}://{names['host']}:{names['port']}/messages"

        status, content_type, body = await asyncio.to_thread(_client_get, url, ca_file)
        assert status == 200 and content_type == "application/json"
        assert json.loads(body)["mechanism"] == mechanism

        answer = await asyncio.to_thread(_send_garbage, names["host"], names["port"], ca_file)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
        summary = await session.run_to_completion()
    finally:
        await session.stop()
    assert summary["ok"], summary["problems"]
    assert summary["sent"] == summary["received"] == count, "the session went on, every message"
    assert rcv.live["other_clients_served"] == 1 and rcv.live["bad_requests"] == 1
    if not mechanism.endswith("-close"):
        assert summary["connections"] == 1, "the sender's connection is the one measured"


@pytest.mark.parametrize("mechanism", ["http-close", "https-close"])
async def test_a_round_trip_on_a_new_connection_steps_through_the_echo(mechanism):
    config = SessionConfig(mechanism=mechanism, pattern="ping-pong", count=None, step=True)
    session = Session(config)
    await session.start()
    try:
        stepper = Stepper(session)
        await stepper.enter()
        for _ in range(2):
            reports = await stepper.one_message()
            assert [r.stage for r in reports] == list(ROUND_TRIP)
            assert reports[-1].reported["rtt_ns"] > 0
    finally:
        await session.stop(drain=False)


async def test_the_app_shows_connections_handshakes_and_the_timing_stages():
    app = IpcExplorerApp(SessionConfig(mechanism="https-close", rate=200))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "handshakes" in diagram(app))
        assert "connections" in diagram(app)
        # the timing panel lists the connection's stages beside the message's path
        await until(pilot, lambda: app.session.stats.stage_medians_us(False).get("handshake"))
        await app.action_quit()


def test_raw_tcp_splits_its_wire_bytes_the_same_way():
    result = run_cli("run", "-m", "tcp", "-n", "200", "-s", "100", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    split = summary["wire_split"]
    assert split == {
        "headers": 28 * 200,  # a u32 length prefix and the 24-byte envelope per frame
        "body": summary["payload_bytes"],
        "tls": 0,
    }
    assert sum(split.values()) == summary["wire_bytes"]


async def test_the_senders_kept_alive_connection_closing_is_the_peer_gone():
    session = Session(SessionConfig(mechanism="https", count=None, rate=2000))
    try:
        await session.start()
        rcv = session.stats.receiver
        await session._until(lambda: rcv.count("received") > 50, 5, "flow")
        session.kill("sender")
        await session._until(lambda: rcv.state == "peer-closed", 5, "eof")
    finally:
        await session.stop()
