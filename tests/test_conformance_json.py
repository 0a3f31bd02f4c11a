"""JSON conformance: the byte parser accepts exactly what Python's json accepts and rejects the
rest with a byte offset (multi-byte UTF-8 never shifts it), with hand-checked spans."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipc_explorer.codecs import DecodeError, get_codec

pytestmark = pytest.mark.timeout(60)

CODEC = get_codec("json")


def stdlib_accepts(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return True


def ours_accepts(data: bytes) -> bool:
    try:
        CODEC.annotate(data)
        CODEC.decode(data)
    except DecodeError:
        return False
    return True


CASES = [
    b"1",
    b"-0",
    b"1.5e3",
    b"1E-2",
    b"123456789012345678901234567890",
    b"1e400",
    b'"a"',
    b'"\\u00e9"',
    b'"\\ud800"',
    b'"\\/"',
    b'"\xc3\xa9"',
    b"true",
    b"false",
    b"null",
    b"[]",
    b"{}",
    b"[1,2]",
    b'{"a":1,"a":2}',
    b" \t\r\n1 \n",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"[NaN,-Infinity]",
    # rejected
    b"",
    b" ",
    b"01",
    b"1.",
    b".5",
    b"1e",
    b"+1",
    b"-",
    b"[1,]",
    b'{"a":1,}',
    b"[1 2]",
    b'{"a" 1}',
    b"{1:2}",
    b"tru",
    b"nul",
    b"nan",
    b"inf",
    b'"\\x41"',
    b'"\\u12"',
    b'"a',
    b'"\t"',
    b'"\x01"',
    b"\xef\xbb\xbf1",
    b'"\xff"',
    b'"\xc3"',
    b"[1]x",
    b"1 2",
    b"'a'",
]


@pytest.mark.parametrize("data", CASES)
def test_accepts_exactly_what_the_standard_library_accepts(data):
    assert ours_accepts(data) == stdlib_accepts(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet='{}[],:" 0123456789.-+eEtrufalsnNIiy\\u\t\né', max_size=24))
def test_random_near_json_is_judged_as_the_standard_library_judges_it(text):
    data = text.encode("utf-8")
    assert ours_accepts(data) == stdlib_accepts(data)


@pytest.mark.parametrize(
    "data,offset",
    [
        ('{"é": 1, "x": tru}'.encode(), 15),  # é is two bytes: byte 15, character 14
        ('["ü€", nul]'.encode(), 10),
        ('{"😀": [1,]}'.encode(), 12),
    ],
)
def test_error_offsets_are_bytes_not_characters(data, offset):
    with pytest.raises(DecodeError) as error:
        CODEC.decode(data)
    assert error.value.offset == offset


def test_hand_checked_spans():
    data = b'{"id": 7, "ok": [true, null], "f": 2.5}'
    spans = [(s.start, s.end, s.path, s.kind) for s in CODEC.annotate(data)]
    assert (1, 2, "$.id", "punct") in spans  # opening quote of the key
    assert (2, 4, "$.id", "key") in spans
    assert (7, 8, "$.id", "int") in spans
    assert (17, 21, "$.ok[0]", "bool") in spans
    assert (23, 27, "$.ok[1]", "null") in spans
    assert (35, 38, "$.f", "float") in spans
    covered = sorted((s[0], s[1]) for s in spans)
    assert covered[0][0] == 0 and covered[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))


def test_nan_and_infinity_are_read_but_never_written():
    assert str(CODEC.decode(b"[NaN]")[0]) == "nan"
    labels = [s.label for s in CODEC.annotate(b"-Infinity")]
    assert labels == ["-Infinity (Python JSON, not RFC)"]
    with pytest.raises(Exception, match="NaN or Infinity"):
        CODEC.encode(float("nan"))
