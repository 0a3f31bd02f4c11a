"""Struct conformance: the fixed layout of the module docstring, byte for byte, and every way
bytes can fail to fit it, each at its offset."""

from __future__ import annotations

import struct

import pytest

from ipc_explorer.codecs import DecodeError, get_codec

pytestmark = pytest.mark.timeout(60)

CODEC = get_codec("struct")
VALUE = {"id": 3, "kind": "ab", "value": 1.5, "data": "xyz"}
# Built by hand from the layout: magic, version, id, kind length, kind, value, data length, data.
BYTES = b"IX" + b"\x01" + struct.pack("<q", 3) + b"\x02ab" + struct.pack("<d", 1.5)
BYTES += struct.pack("<I", 3) + b"xyz"


def test_encoding_is_the_documented_layout_byte_for_byte():
    assert CODEC.encode(VALUE) == BYTES
    assert CODEC.decode(BYTES) == VALUE


def test_hand_checked_spans():
    spans = [(s.start, s.end, s.path, s.kind, s.label) for s in CODEC.annotate(BYTES)]
    assert spans == [
        (0, 2, "$", "header", "magic IX"),
        (2, 3, "$", "header", "version 1"),
        (3, 11, "$.id", "int", "int64 3"),
        (11, 12, "$.kind", "length", "u8 len=2"),
        (12, 14, "$.kind", "string", '"ab"'),
        (14, 22, "$.value", "float", "float64 1.5"),
        (22, 26, "$.data", "length", "u32 len=3"),
        (26, 29, "$.data", "string", '"xyz"'),
    ]


@pytest.mark.parametrize(
    "data,offset",
    [
        (b"IY" + BYTES[2:], 0),  # wrong magic
        (BYTES[:2] + b"\x02" + BYTES[3:], 2),  # unknown version
        (BYTES[:10], 3),  # id cut short
        (BYTES[:13], 12),  # kind cut short
        (BYTES[:22] + b"\xff\xff\xff\xff" + b"xyz", 26),  # 4 GiB declared where 3 bytes are
        (BYTES[:12] + b"\xc3" + BYTES[13:], 12),  # kind is not UTF-8
        (BYTES + b"!", 29),  # trailing garbage
    ],
)
def test_bytes_that_do_not_fit_fail_at_their_offset(data, offset):
    with pytest.raises(DecodeError) as error:
        CODEC.decode(data)
    assert error.value.offset == offset
