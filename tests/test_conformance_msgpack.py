"""MessagePack conformance: every format family decodes as the reference msgpack library
decodes it, with its spans right; random valid messages too."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ipc_explorer.codecs import get_codec

pytestmark = pytest.mark.timeout(60)

CODEC = get_codec("msgpack")


def reference(data: bytes):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


# (family, bytes, the label of the first span (the type tag))
FAMILIES = [
    ("positive fixint", b"\x05", "fixint 5"),
    ("negative fixint", b"\xfb", "fixint -5"),
    ("nil", b"\xc0", "nil"),
    ("false", b"\xc2", "false"),
    ("true", b"\xc3", "true"),
    ("bin 8", b"\xc4\x02ab", "bin8"),
    ("bin 16", b"\xc5\x00\x02ab", "bin16"),
    ("bin 32", b"\xc6\x00\x00\x00\x02ab", "bin32"),
    ("ext 8", b"\xc7\x03\x07abc", "ext8"),
    ("ext 16", b"\xc8\x00\x03\x07abc", "ext16"),
    ("ext 32", b"\xc9\x00\x00\x00\x03\x07abc", "ext32"),
    ("float 32", b"\xca" + struct.pack(">f", 1.5), "float32"),
    ("float 64", b"\xcb" + struct.pack(">d", -2.25), "float64"),
    ("uint 8", b"\xcc\xff", "uint8"),
    ("uint 16", b"\xcd\xff\xff", "uint16"),
    ("uint 32", b"\xce\xff\xff\xff\xff", "uint32"),
    ("uint 64", b"\xcf" + struct.pack(">Q", 2**64 - 1), "uint64"),
    ("int 8", b"\xd0\x80", "int8"),
    ("int 16", b"\xd1\x80\x00", "int16"),
    ("int 32", b"\xd2\x80\x00\x00\x00", "int32"),
    ("int 64", b"\xd3" + struct.pack(">q", -(2**63)), "int64"),
    ("fixext 1", b"\xd4\x05\x01", "fixext1"),
    ("fixext 2", b"\xd5\x05\x01\x02", "fixext2"),
    ("fixext 4", b"\xd6\x05" + b"\x01" * 4, "fixext4"),
    ("fixext 8", b"\xd7\x05" + b"\x01" * 8, "fixext8"),
    ("fixext 16", b"\xd8\x05" + b"\x01" * 16, "fixext16"),
    ("timestamp 32", msgpack.packb(msgpack.Timestamp(1, 0)), "fixext4"),
    ("timestamp 64", msgpack.packb(msgpack.Timestamp(1, 5)), "fixext8"),
    ("timestamp 96", msgpack.packb(msgpack.Timestamp(-1, 5)), "ext8"),
    ("fixstr", b"\xa2hi", "fixstr len=2"),
    ("str 8", b"\xd9\x02hi", "str8"),
    ("str 16", b"\xda\x00\x02hi", "str16"),
    ("str 32", b"\xdb\x00\x00\x00\x02hi", "str32"),
    ("fixarray", b"\x92\x01\x02", "fixarray 2 items"),
    ("array 16", b"\xdc\x00\x01\x01", "array16"),
    ("array 32", b"\xdd\x00\x00\x00\x01\x01", "array32"),
    ("fixmap", b"\x81\xa1a\x01", "fixmap 1 entry"),
    ("map 16", b"\xde\x00\x01\xa1a\x01", "map16"),
    ("map 32", b"\xdf\x00\x00\x00\x01\xa1a\x01", "map32"),
]


@pytest.mark.parametrize("family,data,tag", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_decodes_as_the_reference_does(family, data, tag):
    assert CODEC.decode(data) == reference(data)
    spans = CODEC.annotate(data)
    assert spans[0].start == 0 and spans[0].label == tag
    # a one-byte value (fixint, nil, true, false) is its own span; anything else has a tag
    assert spans[0].kind == ("header" if len(data) > 1 else spans[0].kind)
    covered = [0] * len(data)
    for span in spans:
        for i in range(span.start, span.end):
            covered[i] += 1
    assert covered == [1] * len(data)  # every byte in exactly one leaf span


def test_hand_checked_spans_of_a_map():
    data = b"\x82\xa2id\xcd\x01\x2c\xa1v\x93\xc0\xc3\xcb" + struct.pack(">d", 0.5)
    spans = [(s.start, s.end, s.path, s.kind, s.label) for s in CODEC.annotate(data)]
    assert spans[:6] == [
        (0, 1, "$", "header", "fixmap 2 entries"),
        (1, 2, "$.id", "header", "fixstr len=2"),
        (2, 4, "$.id", "key", '"id"'),
        (4, 5, "$.id", "header", "uint16"),
        (5, 7, "$.id", "int", "int 300"),
        (7, 8, "$.v", "header", "fixstr len=1"),
    ]
    assert (9, 10, "$.v", "header", "fixarray 3 items") in spans
    assert (10, 11, "$.v[0]", "null", "nil") in spans
    assert (11, 12, "$.v[1]", "bool", "true") in spans
    assert (12, 13, "$.v[2]", "header", "float64") in spans
    assert (13, 21, "$.v[2]", "float", "float 0.5") in spans


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, single_float=st.booleans())
def test_random_valid_messages_decode_as_the_reference_does(value, single_float):
    try:
        data = msgpack.packb(value, use_bin_type=True, use_single_float=single_float)
    except OverflowError:  # a double that no float32 holds: the reference cannot write it
        assume(False)
    assert CODEC.decode(data) == reference(data)
    assert sum(len(s) for s in CODEC.annotate(data)) == len(data)
