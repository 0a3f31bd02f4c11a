"""The command line as a user meets it: help, version, errors, JSON, exit codes."""

from __future__ import annotations

import json

import pytest

from ipc_explorer import __version__

from .conftest import broker_args, run_cli

pytestmark = pytest.mark.timeout(60)

JSON_KEYS = {
    "mechanism",
    "format",
    "pattern",
    "count",
    "size",
    "sent",
    "received",
    "lost",
    "duplicated",
    "reordered",
    "corrupt",
    "wire_bytes",
    "payload_bytes",
    "elapsed_s",
    "msgs_per_s",
    "mb_per_s",
    "latency_us",
    "stages_us",
}


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for word in ("run", "bench", "--version"):
        assert word in result.stdout


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_unknown_mechanism_lists_the_valid_ones():
    result = run_cli("run", "-m", "carrier-pigeon")
    assert result.returncode == 2
    assert "unknown mechanism 'carrier-pigeon'" in result.stderr
    for name in ("pipe", "fifo", "unix-stream", "unix-dgram", "tcp", "udp", "shm", "mq", "http"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_format_lists_the_valid_ones():
    result = run_cli("run", "-f", "yaml")
    assert result.returncode == 2
    assert "unknown format 'yaml'" in result.stderr
    for name in ("json", "xml", "msgpack", "struct"):
        assert name in result.stderr


def test_bad_number_is_a_usage_error():
    result = run_cli("run", "--count", "many")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_run_json_has_every_key():
    result = run_cli(
        "run", "-m", "unix-stream", "-f", "json", "-p", "ping-pong", "-n", "200", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert JSON_KEYS <= set(data)
    assert data["sent"] == data["received"] == 200
    assert set(data["latency_us"]) == {"p50", "p90", "p99", "max"}
    assert set(data["stages_us"]) == {"serialize", "transmit", "deserialize", "sync_wait"}
    assert data["latency_kind"] == "round trip"


def test_run_prints_a_summary_table():
    result = run_cli("run", "-m", "tcp", "-n", "300")
    assert result.returncode == 0, result.stderr
    for text in ("tcp", "300 sent, 300 received", "lost 0", "latency", "serialize", "127.0.0.1:"):
        assert text in result.stdout


def test_the_app_refuses_an_unknown_mechanism_before_opening():
    result = run_cli("--mechanism", "smoke-signals")
    assert result.returncode == 2
    assert "unknown mechanism 'smoke-signals'" in result.stderr and "Traceback" not in result.stderr


def test_corruption_on_a_reliable_mechanism_exits_1():
    result = run_cli("run", "-m", "pipe", "-n", "500", "--corrupt-every", "100", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["corrupt"] == 5
    assert data["received"] == 500


def test_port_in_use_is_a_clear_error():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("run", "-m", "tcp", "--port", str(port), "-n", "10")
    assert result.returncode == 1
    assert "already in use" in result.stderr and "Traceback" not in result.stderr


def test_udp_loss_is_reported_not_hidden():
    result = run_cli("run", "-m", "udp", "-n", "20000", "-s", "1000", "--json")
    data = json.loads(result.stdout)
    assert data["received"] + data["lost"] == data["sent"] == 20000
    assert data["lost"] == data["kernel_drops"]
    assert result.returncode == 0  # loss on UDP is not an integrity failure


@pytest.mark.amqp
def test_bench_compares_every_mechanism_sorted_by_latency():
    result = run_cli(
        "bench",
        "--sizes",
        "64",
        "--count",
        "300",
        "--round-trips",
        "100",
        "--json",
        *broker_args(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert {row["mechanism"] for row in rows} == {
        "pipe",
        "fifo",
        "unix-stream",
        "unix-dgram",
        "tcp",
        "udp",
        "shm",
        "mq",
        "http",
        "http-close",
        "https",
        "https-close",
        "amqp",
    }
    latencies = [row["rtt_p50_us"] for row in rows]
    assert latencies == sorted(latencies)


def test_rate_paces_the_sender():
    result = run_cli("run", "-m", "unix-stream", "-n", "60", "--rate", "200", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["received"] == 60
    # 60 messages at 200/s: the last leaves about 0.3 s after the first.
    assert 0.25 <= data["elapsed_s"] <= 0.6
    assert 100 <= data["msgs_per_s"] <= 240


def test_count_zero_sends_nothing_and_ends():
    result = run_cli("run", "-m", "pipe", "-n", "0", "--json", timeout=20)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 0
