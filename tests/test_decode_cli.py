"""``ipc-explorer decode``: any bytes, good or bad, as a user feeds them in."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipc_explorer.codecs import codec_names, get_codec
from ipc_explorer.codecs.sample import sample_payload
from ipc_explorer.inspector.decoder import decode, guess_format

from .conftest import run_cli

pytestmark = pytest.mark.timeout(60)

PAYLOAD = sample_payload(7, 16)


def covers_every_byte_once(spans: list[dict], size: int) -> bool:
    covered = [0] * size
    for s in spans:
        for i in range(s["start"], s["end"]):
            covered[i] += 1
    return covered == [1] * size


@pytest.mark.parametrize("fmt", codec_names())
def test_each_format_decodes_with_every_byte_in_one_span(tmp_path, fmt):
    data = get_codec(fmt).encode(PAYLOAD)
    path = tmp_path / f"message.{fmt}"
    path.write_bytes(data)
    result = run_cli("decode", str(path), "--format", fmt, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["format"] == fmt and out["size"] == len(data) and out["error"] is None
    assert covers_every_byte_once(out["spans"], len(data))


@pytest.mark.parametrize("fmt", codec_names())
def test_auto_finds_the_format_and_says_why(fmt):
    data = get_codec(fmt).encode(PAYLOAD)
    name, why = guess_format(data)
    assert name == fmt
    assert f"every byte decodes as {fmt}" in why


def test_hex_text_with_spaces_and_0x_is_read():
    hex_text = "0x82 a1 61 01  a1\t62 \\xc0\n"
    result = run_cli("decode", "-", "--hex", "--format", "msgpack", input=hex_text)
    assert result.returncode == 0, result.stderr
    assert "fixmap 2 entries" in result.stdout and "nil" in result.stdout
    assert "0x0006-0x0006" in result.stdout  # each tree line names its byte range


def test_malformed_input_shows_the_partial_tree_then_the_offset_and_exits_1(tmp_path):
    data = msgpack.packb({"id": 7, "name": "hello", "vals": [1, 2]})[:20]
    path = tmp_path / "cut.msgpack"
    path.write_bytes(data)
    result = run_cli("decode", str(path), "--format", "msgpack")
    assert result.returncode == 1
    assert "decoded (partial)" in result.stdout
    assert '"hello"' in result.stdout  # what decoded before the cut is shown
    assert "error at byte 17 (0x11)" in result.stdout
    assert "Traceback" not in result.stderr


def test_json_error_offsets_are_bytes_not_characters():
    data = '{"é": "ü", "x": tru}'.encode()
    result = decode(data, "json")
    assert result.error is not None
    # 'tru' starts at character 16 but byte 18: two 2-byte characters come before it
    assert data[result.error.offset : result.error.offset + 3] == b"tru"


def test_a_huge_declared_length_is_an_error_not_an_allocation():
    data = b"\xdb\xff\xff\xff\xff" + b"abcde"  # str32 of 4 GiB in a 10-byte input
    result = decode(data, "msgpack")
    assert result.error is not None and result.error.offset <= 5


def test_deep_nesting_is_an_error_not_a_crash():
    result = decode(b"[" * 100_000, "json")
    assert result.error is not None
    result = decode(b"\x91" * 100_000, "msgpack")
    assert result.error is not None


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        (["/no/such/file"], None, "cannot read /no/such/file"),
        (["-", "--hex"], "zz", "not hex"),
        (["-", "--hex"], "abc", "odd number of hex digits"),
        (["-", "--format", "yaml"], "{}", "unknown format 'yaml'"),
    ],
)
def test_bad_usage_gets_one_line_and_exit_2(args, stdin, message):
    result = run_cli("decode", *args, input=stdin)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200), fmt=st.sampled_from(["auto", *codec_names()]))
def test_any_bytes_decode_or_fail_cleanly_with_an_offset_inside_the_input(data, fmt):
    result = decode(data, fmt)
    if result.error is not None:
        assert 0 <= result.error.offset <= len(data)
    else:
        spans = [{"start": s.start, "end": s.end} for s in result.spans]
        assert covers_every_byte_once(spans, len(data))


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("fmt", ["json", "msgpack", "xml"])
def test_diff_names_every_change_by_path_with_its_bytes(tmp_path, fmt):
    codec = get_codec(fmt)
    old = codec.encode({"id": 7, "name": "hello", "vals": [1, 2], "x": 1})
    new = codec.encode({"id": 8, "name": "hello", "vals": [1, 2, 3], "y": "new"})
    result = run_cli(
        "diff", write(tmp_path, "a", old), write(tmp_path, "b", new), "-f", fmt, "--json"
    )
    assert result.returncode == 1, result.stderr  # they differ
    changes = {(c["kind"], c["path"]): c for c in json.loads(result.stdout)["changes"]}
    assert set(changes) == {
        ("changed", "$.id"),
        ("added", "$.vals[2]"),
        ("removed", "$.x"),
        ("added", "$.y"),
    }
    changed = changes[("changed", "$.id")]
    start, end = changed["new_bytes"]
    assert b"8" in new[start:end] or b"\x08" in new[start:end]  # the bytes of the change
    assert changes[("removed", "$.x")]["new_bytes"] is None


def test_diff_of_msgpack_sees_a_type_change(tmp_path):
    old = msgpack.packb({"v": 2.5})
    new = msgpack.packb({"v": "2.5"})
    result = run_cli("diff", write(tmp_path, "a", old), write(tmp_path, "b", new), "--json")
    changes = json.loads(result.stdout)["changes"]
    assert [(c["kind"], c["path"]) for c in changes] == [("type changed", "$.v")]


def test_diff_of_equal_messages_exits_0_and_of_a_broken_one_exits_2(tmp_path):
    data = msgpack.packb({"a": 1})
    a, b = write(tmp_path, "a", data), write(tmp_path, "b", data)
    assert run_cli("diff", a, b).returncode == 0
    broken = write(tmp_path, "c", data[:-1])
    result = run_cli("diff", a, broken, "-f", "msgpack")
    assert result.returncode == 2
    assert "error at byte" in result.stderr and "Traceback" not in result.stderr
