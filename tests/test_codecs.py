"""The four codecs: exact round trips, spans that cover every byte once, and clean errors.

Malformed input of any kind must give a DecodeError with an offset inside the input and the
spans read so far, never another exception: the bytes panel shows whatever arrives.
"""

from __future__ import annotations

import math
import struct
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipc_explorer.codecs import (
    SPAN_KINDS,
    Codec,
    DecodeError,
    EncodeError,
    Span,
    codec_names,
    get_codec,
)
from ipc_explorer.codecs.sample import sample_payload
from ipc_explorer.codecs.tree import MAX_DEPTH

pytestmark = pytest.mark.timeout(60)

NAMES = ("json", "xml", "msgpack", "struct")
FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- strategies -----------------------------------------------------------------------------

_INTS = st.integers(-(2**63), 2**64 - 1)
_XML_UNSAFE = "".join(map(chr, [*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF]))
_XML_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters=_XML_UNSAFE))


def _json_like(floats: st.SearchStrategy, text: st.SearchStrategy) -> st.SearchStrategy:
    scalars = st.none() | st.booleans() | _INTS | floats | text
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4)
        ),
        max_leaves=12,
    )


_SAMPLE_SHAPED = st.fixed_dictionaries(
    {
        "id": st.integers(-(2**63), 2**63 - 1),
        "kind": st.text(max_size=40).filter(lambda kind: len(kind.encode()) <= 255),
        "value": st.floats(allow_nan=False),
        "data": st.text(),
    }
)

VALUES: dict[str, st.SearchStrategy] = {
    # JSON cannot write NaN or Infinity (they are read, as Python's json reads them).
    "json": _json_like(st.floats(allow_nan=False, allow_infinity=False), st.text()),
    "xml": _json_like(st.floats(allow_nan=False), _XML_TEXT),
    "msgpack": _json_like(st.floats(allow_nan=False), st.text()),
    "struct": _SAMPLE_SHAPED,
}


@st.composite
def _mutated(draw: st.DrawFn, name: str) -> bytes:
    """A valid encoding with one byte replaced, inserted or deleted, or cut short."""
    data = bytearray(get_codec(name).encode(draw(VALUES[name])))
    index = draw(st.integers(0, max(len(data) - 1, 0)))
    operation = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    byte = draw(st.integers(0, 255))
    if operation == "replace" and data:
        data[index] = byte
    elif operation == "insert":
        data.insert(index, byte)
    elif operation == "delete" and data:
        del data[index]
    else:
        del data[index:]
    return bytes(data)


# Fragments of each syntax, spliced into valid encodings to reach the rarer parser paths.
_FRAGMENTS = {
    "json": [
        b" ",
        b"\r\n",
        b",",
        b":",
        b"{}",
        b"[]",
        b'"\\u00e9"',
        b'"\\ud800"',
        b"1e5",
        b"-0",
        b"\\",
        b'"',
        b"NaN",
        b"\xc3",
        b"\xf0\x9f\x98\x80",
        b"]",
        b"}",
    ],
    "xml": [
        b"<!--x-->",
        b"<![CDATA[x]]>",
        b"&amp;",
        b"&#10;",
        b"&#xD;",
        b"<?pi x?>",
        b" ",
        b"\r\n",
        b"<a/>",
        b"</a>",
        b"<!DOCTYPE x>",
        b"\xef\xbb\xbf",
        b' type="int"',
        b' key="k"',
        b"<item>",
        b"</item>",
        b"]]>",
        b"&",
        b"<",
        b"\xc3",
    ],
    "msgpack": [
        b"\xc0",
        b"\x90",
        b"\x80",
        b"\xa1a",
        b"\xd9\x01",
        b"\xc7\x00\x01",
        b"\xd6\xff\x00\x00\x00\x00",
        b"\xdc\x00\x02",
        b"\xcb",
        b"\xc4\x00",
    ],
    "struct": [b"\x00", b"\xff", b"\xff\xff\xff\xff", b"IX\x01", b"\xc3"],
}


@st.composite
def _spliced(draw: st.DrawFn, name: str) -> bytes:
    """A valid encoding with a few syntax fragments inserted at random places."""
    data = get_codec(name).encode(draw(VALUES[name]))
    for fragment in draw(st.lists(st.sampled_from(_FRAGMENTS[name]), min_size=1, max_size=3)):
        index = draw(st.integers(0, len(data)))
        data = data[:index] + fragment + data[index:]
    return data


# --- helpers --------------------------------------------------------------------------------


def assert_same(expected: Any, actual: Any, path: str = "$") -> None:
    """Equal with exact types (1, 1.0 and True differ) and floats compared bit for bit."""
    assert type(actual) is type(expected), f"{path}: {actual!r} is not {expected!r}"
    if isinstance(expected, float):
        pack = struct.Struct("<d").pack
        assert pack(actual) == pack(expected), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys differ"
        for key in expected:
            assert_same(expected[key], actual[key], f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: lengths differ"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert_same(want, got, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def assert_contiguous(spans: list[Span], end: int | None = None) -> None:
    """Spans run from byte 0 without gaps or overlaps (to ``end`` when given)."""
    position = 0
    for span in spans:
        assert span.start == position, f"gap or overlap at {position}: {span}"
        assert span.end > span.start, f"empty span {span}"
        assert span.kind in SPAN_KINDS, span
        assert span.path.startswith("$") and span.label, span
        position = span.end
    if end is not None:
        assert position == end, f"spans end at {position}, data at {end}"


def decode_outcome(codec: Codec, data: bytes) -> tuple[str, Any]:
    """("ok", value) or ("error", offset); any other exception fails the test."""
    try:
        value = codec.decode(data)
    except DecodeError as error:
        assert 0 <= error.offset <= len(data), error
        assert_contiguous(error.partial.spans)
        assert not error.partial.spans or error.partial.spans[-1].end <= len(data)
        return "error", error.offset
    return "ok", value


def annotate_outcome(codec: Codec, data: bytes) -> tuple[str, Any]:
    try:
        spans = codec.annotate(data)
    except DecodeError as error:
        assert 0 <= error.offset <= len(data), error
        assert_contiguous(error.partial.spans)
        assert not error.partial.spans or error.partial.spans[-1].end <= len(data)
        return "error", error.offset
    assert_contiguous(spans, len(data))
    return "ok", spans


def check_bytes(codec: Codec, data: bytes) -> None:
    """Decode and annotate agree on whether ``data`` is valid, and where it is not."""
    decoded, annotated = decode_outcome(codec, data), annotate_outcome(codec, data)
    assert decoded[0] == annotated[0], (decoded, annotated)
    if decoded[0] == "error":
        assert decoded[1] == annotated[1]


def error_of(codec: Codec, data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    with pytest.raises(DecodeError) as annotated:
        codec.annotate(data)
    assert annotated.value.offset == info.value.offset
    assert 0 <= info.value.offset <= len(data)
    return info.value


def nested_list(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth - 1):
        value = [value]
    return [value] if depth else value


RICH = {
    "id": 17,
    "kind": "sample",
    "value": -0.0,
    "items": [1, -2, 2**63, 1.5e300, None, True, False, "", "ключ", {"a b": []}],
    "nested": {"x": {"y": [{}]}},
}

# --- registry -------------------------------------------------------------------------------


def test_registry_has_the_four_formats() -> None:
    assert set(codec_names()) >= set(NAMES)
    for name in NAMES:
        codec = get_codec(name)
        assert codec.name == name and codec.title and "/" in codec.content_type


# --- round trips and spans ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_round_trip_and_spans_cover_every_byte(name: str, data: st.DataObject) -> None:
    codec = get_codec(name)
    value = data.draw(VALUES[name])
    encoded = codec.encode(value)
    assert isinstance(encoded, bytes)
    if name == "struct":  # decoded in layout order
        value = {key: value[key] for key in ("id", "kind", "value", "data")}
    assert_same(value, codec.decode(encoded))
    assert_contiguous(codec.annotate(encoded), len(encoded))


@pytest.mark.parametrize("name", ["msgpack", "xml"])
@pytest.mark.parametrize("number", [math.inf, -math.inf])
def test_infinities_round_trip_where_the_format_has_them(name: str, number: float) -> None:
    codec = get_codec(name)
    assert_same([number], codec.decode(codec.encode([number])))


@pytest.mark.parametrize("name", ["msgpack", "xml"])
def test_nan_survives_as_nan(name: str) -> None:
    codec = get_codec(name)
    assert math.isnan(codec.decode(codec.encode(math.nan)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [0, 1, 100, 70000])
def test_sample_payload_in_every_format(name: str, size: int) -> None:
    codec = get_codec(name)
    payload = sample_payload(12345, size)
    encoded = codec.encode(payload)
    assert_same(payload, codec.decode(encoded))
    assert_contiguous(codec.annotate(encoded), len(encoded))


@pytest.mark.parametrize("name", NAMES)
def test_decode_gives_back_the_rich_value(name: str) -> None:
    codec = get_codec(name)
    value = sample_payload(3, 10) if name == "struct" else RICH
    assert_same(value, codec.decode(codec.encode(value)))


# --- hand-checked spans ---------------------------------------------------------------------


def test_msgpack_spans_of_a_one_entry_map() -> None:
    spans = get_codec("msgpack").annotate(b"\x81\xa1a\x01")
    assert [(s.start, s.end, s.path, s.kind) for s in spans] == [
        (0, 1, "$", "header"),
        (1, 2, "$.a", "header"),
        (2, 3, "$.a", "key"),
        (3, 4, "$.a", "int"),
    ]
    assert spans[0].label == "fixmap 1 entry"
    assert spans[1].label == "fixstr len=1"


def test_msgpack_spans_of_lengths_and_wide_ints() -> None:
    codec = get_codec("msgpack")
    encoded = codec.encode({"a b": ["x" * 40, 300]})
    spans = codec.annotate(encoded)
    assert [(s.start, s.end, s.path, s.kind, s.label) for s in spans[3:]] == [
        (5, 6, '$["a b"]', "header", "fixarray 2 items"),
        (6, 7, '$["a b"][0]', "header", "str8"),
        (7, 8, '$["a b"][0]', "length", "len=40"),
        (8, 48, '$["a b"][0]', "string", '"xxxxxxxxxxxxxxxxxxxxxxxx…" (40 chars)'),
        (48, 49, '$["a b"][1]', "header", "uint16"),
        (49, 51, '$["a b"][1]', "int", "int 300"),
    ]


def test_json_spans() -> None:
    spans = get_codec("json").annotate(b'{"id": 17, "a b": [true]}')
    assert [(s.start, s.end, s.path, s.kind) for s in spans] == [
        (0, 1, "$", "punct"),
        (1, 2, "$.id", "punct"),
        (2, 4, "$.id", "key"),
        (4, 5, "$.id", "punct"),
        (5, 6, "$", "punct"),
        (6, 7, "$", "whitespace"),
        (7, 9, "$.id", "int"),
        (9, 10, "$", "punct"),
        (10, 11, "$", "whitespace"),
        (11, 12, '$["a b"]', "punct"),
        (12, 15, '$["a b"]', "key"),
        (15, 16, '$["a b"]', "punct"),
        (16, 17, "$", "punct"),
        (17, 18, "$", "whitespace"),
        (18, 19, '$["a b"]', "punct"),
        (19, 23, '$["a b"][0]', "bool"),
        (23, 24, '$["a b"]', "punct"),
        (24, 25, "$", "punct"),
    ]
    assert spans[0].label == "{ object, 2 entries"
    assert spans[2].label == '"id"' and spans[6].label == "int 17"


def test_xml_spans() -> None:
    data = b'<message type="map"><n type="int">7</n><entry key="a&amp;b">x&lt;y</entry></message>'
    spans = get_codec("xml").annotate(data)
    assert_contiguous(spans, len(data))
    pieces = [(data[s.start : s.end], s.path, s.kind) for s in spans]
    assert pieces[:10] == [
        (b"<", "$", "punct"),
        (b"message", "$", "tag"),
        (b" ", "$", "whitespace"),
        (b"type", "$", "attr"),
        (b"=", "$", "punct"),
        (b'"', "$", "punct"),
        (b"map", "$", "header"),
        (b'"', "$", "punct"),
        (b">", "$", "punct"),
        (b"<", "$.n", "punct"),
    ]
    assert (b"7", "$.n", "int") in pieces
    assert (b"a&amp;b", '$["a&b"]', "key") in pieces
    assert (b"&lt;", '$["a&b"]', "string") in pieces
    assert [s.label for s in spans if data[s.start : s.end] == b"7"] == ["int 7"]


def test_struct_spans() -> None:
    codec = get_codec("struct")
    spans = codec.annotate(codec.encode({"id": 5, "kind": "ab", "value": 0.5, "data": "xyz"}))
    assert [(s.start, s.end, s.path, s.kind, s.label) for s in spans] == [
        (0, 2, "$", "header", "magic IX"),
        (2, 3, "$", "header", "version 1"),
        (3, 11, "$.id", "int", "int64 5"),
        (11, 12, "$.kind", "length", "u8 len=2"),
        (12, 14, "$.kind", "string", '"ab"'),
        (14, 22, "$.value", "float", "float64 0.5"),
        (22, 26, "$.data", "length", "u32 len=3"),
        (26, 29, "$.data", "string", '"xyz"'),
    ]


# --- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_truncation_is_a_decode_error(name: str) -> None:
    codec = get_codec(name)
    encoded = codec.encode(sample_payload(7, 20) if name == "struct" else RICH)
    for cut in range(len(encoded)):
        error = error_of(codec, encoded[:cut])
        assert_contiguous(error.partial.spans)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.binary(max_size=64))
def test_random_bytes_never_raise_anything_else(name: str, data: bytes) -> None:
    check_bytes(get_codec(name), data)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_mutated_encodings_never_raise_anything_else(name: str, data: st.DataObject) -> None:
    check_bytes(get_codec(name), data.draw(_mutated(name)))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_spliced_encodings_never_raise_anything_else(name: str, data: st.DataObject) -> None:
    check_bytes(get_codec(name), data.draw(_spliced(name)))


@pytest.mark.parametrize(
    "data",
    [
        b"\xdb\xff\xff\xff\xffabcde",  # str32 claiming 4 GiB
        b"\xc6\xff\xff\xff\xff\x00",  # bin32
        b"\xc9\xff\xff\xff\xff\x05ab",  # ext32
        b"\xdd\xff\xff\xff\xff\x00\x00",  # array32 of 4 G items
        b"\xdf\xff\xff\xff\xff\x00\x00",  # map32
        b"\x91\xdd\x7f\xff\xff\xff" + b"\x00" * 100,
    ],
)
def test_msgpack_huge_declared_lengths_allocate_nothing(data: bytes) -> None:
    codec = get_codec("msgpack")
    tracemalloc.start()
    try:
        error = error_of(codec, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    assert "remain" in error.message
    assert error.offset <= len(data)


def test_struct_huge_declared_length() -> None:
    codec = get_codec("struct")
    encoded = codec.encode({"id": 1, "kind": "k", "value": 1.0, "data": "abc"})
    broken = encoded[:-7] + b"\xff\xff\xff\xff" + b"abc"
    error = error_of(codec, broken)
    assert error.offset == len(broken) - 3
    assert error.partial.value == {"id": 1, "kind": "k", "value": 1.0}


DEEP = {
    "json": b"[" * 100_000,
    "msgpack": b"\x91" * 100_000,
    "xml": b'<message type="list">' + b'<item type="list">' * 100_000,
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nesting_is_a_decode_error(name: str) -> None:
    error = error_of(get_codec(name), DEEP[name])
    assert "deeper" in error.message


@pytest.mark.parametrize("name", sorted(DEEP))
def test_depth_limit_is_the_same_for_encode_and_decode(name: str) -> None:
    codec = get_codec(name)
    deepest = nested_list(MAX_DEPTH)
    assert codec.decode(codec.encode(deepest)) == deepest
    with pytest.raises(EncodeError):
        codec.encode(nested_list(MAX_DEPTH + 1))
    too_deep = {
        "json": b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
        "msgpack": b"\x91" * MAX_DEPTH + b"\x90",
        "xml": b'<message type="list">'
        + b'<item type="list">' * MAX_DEPTH
        + b"</item>" * MAX_DEPTH
        + b"</message>",
    }[name]
    assert "deeper" in error_of(codec, too_deep).message


@pytest.mark.parametrize(
    ("name", "data", "bad_byte"),
    [
        ("json", '{"ключ": "é'.encode() + b"\xff" + b'"}', b"\xff"),
        ("msgpack", b"\x81\xa1a\xa3\xc3\xa9\xff", b"\xff"),
        ("xml", "<message>ключ".encode() + b"\xc3(" + b"</message>", b"\xc3("),
        ("struct", b"IX\x01" + b"\x00" * 8 + b"\x03\xc3\xa9\xff", b"\xff"),
    ],
)
def test_invalid_utf8_is_reported_at_its_byte(name: str, data: bytes, bad_byte: bytes) -> None:
    assert error_of(get_codec(name), data).offset == data.index(bad_byte)


@pytest.mark.parametrize("name", NAMES)
def test_trailing_garbage_is_reported_where_it_starts(name: str) -> None:
    codec = get_codec(name)
    encoded = codec.encode(sample_payload(1, 3))
    error = error_of(codec, encoded + b"x!")
    assert error.offset == len(encoded)
    assert_same(sample_payload(1, 3), error.partial.value)
    assert_contiguous(error.partial.spans, len(encoded))


def test_json_offsets_are_bytes_not_characters() -> None:
    codec = get_codec("json")
    data = '{"ключ": "значение", "😀": [1, 2,, 3]}'.encode()
    error = error_of(codec, data)
    assert error.offset == data.index(b",,") + 1
    assert error.partial.value == {"ключ": "значение", "😀": [1, 2]}
    assert data[error.partial.spans[-1].end - 1 : error.partial.spans[-1].end] == b","


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"", 0),
        (b"   ", 3),
        (b"[1, 2", 5),
        (b'{"a" 1}', 5),
        (b'{"a": 1,}', 8),
        (b"[nan]", 1),
        (b"[-Inf]", 1),
        (b'"a\\qb"', 2),
        (b'"a\x01"', 2),
        (b"01", 1),
        (b"[1.]", 2),
    ],
)
def test_json_error_offsets(data: bytes, offset: int) -> None:
    assert error_of(get_codec("json"), data).offset == offset


@pytest.mark.parametrize(
    ("name", "data", "partial"),
    [
        ("json", b'{"a": [1, {"b": 2}, ', {"a": [1, {"b": 2}]}),
        ("msgpack", b"\x82\xa1a\x93\x01\x81\xa1b\x02", {"a": [1, {"b": 2}]}),
        (
            "xml",
            b'<message type="map"><a type="list"><item type="int">1</item><item>x</item>',
            {"a": [1, "x"]},
        ),
        ("struct", b"IX\x01\x03" + b"\x00" * 7 + b"\x05ab", {"id": 3}),
    ],
)
def test_partial_value_holds_what_was_read(name: str, data: bytes, partial: Any) -> None:
    assert error_of(get_codec(name), data).partial.value == partial


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE message [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<message>&lol4;</message>"""


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, b'<!DOCTYPE message SYSTEM "file:///etc/passwd"><message>&x;</message>'],
)
def test_xml_doctype_is_refused(data: bytes) -> None:
    error = error_of(get_codec("xml"), data)
    assert "DOCTYPE" in error.message
    assert error.offset == data.index(b"<!DOCTYPE")


@pytest.mark.parametrize(
    "data",
    [
        b"<other/>",
        b'<message type="bignum">1</message>',
        b'<message color="red">x</message>',
        b'<message type="int"> 1</message>',
        b'<message type="int">1_000</message>',
        '<message type="float">١٫٥</message>'.encode(),
        b'<message type="bool">yes</message>',
        b'<message type="null">x</message>',
        b'<message type="list"><entry/></message>',
        b'<message type="list">text</message>',
        b'<message type="int"><item/></message>',
        b"<message>&undefined;</message>",
        b"<message>",
        b"<message></message><message></message>",
    ],
)
def test_xml_outside_the_mapping_is_a_decode_error(data: bytes) -> None:
    error_of(get_codec("xml"), data)


def test_xml_accepts_comments_cdata_references_and_whitespace() -> None:
    data = (
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<message type="map">\n  <!-- note -->\n'
        b'  <s><![CDATA[a<b]]>&#65;&#x1F600;</s>\n  <entry key="a&#10;b" type="null"/>\n'
        b"</message>\n"
    )
    codec = get_codec("xml")
    assert codec.decode(data) == {"s": "a<bA😀", "a\nb": None}
    spans = codec.annotate(data)
    assert_contiguous(spans, len(data))
    kinds = {s.kind for s in spans}
    assert {"comment", "whitespace", "header", "tag", "attr", "key", "string"} <= kinds


# --- what each format cannot carry ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("json", math.nan),
        ("json", [math.inf]),
        ("json", "\ud800"),
        ("json", b"bytes"),
        ("msgpack", 2**64),
        ("msgpack", -(2**63) - 1),
        ("msgpack", "\udfff"),
        ("msgpack", object()),
        ("xml", "bell\x07"),
        ("xml", {"ok": ["nul\x00"]}),
        ("xml", {"key\x01": 1}),
        ("xml", "\ufffe"),
        ("xml", "\ud800"),
        ("xml", {1: "non-str key"}),
        ("xml", b"bytes"),
        ("struct", [1, 2]),
        ("struct", {"id": 1, "kind": "k", "value": 1.0}),
        ("struct", {"id": 1, "kind": "k", "value": 1.0, "data": "", "extra": 0}),
        ("struct", {"id": "1", "kind": "k", "value": 1.0, "data": ""}),
        ("struct", {"id": True, "kind": "k", "value": 1.0, "data": ""}),
        ("struct", {"id": 2**63, "kind": "k", "value": 1.0, "data": ""}),
        ("struct", {"id": 1, "kind": "k" * 256, "value": 1.0, "data": ""}),
        ("struct", {"id": 1, "kind": "k", "value": 1, "data": ""}),
        ("struct", {"id": 1, "kind": "k", "value": 1.0, "data": 5}),
        ("struct", {"id": 1, "kind": "k", "value": 1.0, "data": "\ud800"}),
    ],
)
def test_values_a_format_cannot_carry_raise_encode_error(name: str, value: Any) -> None:
    with pytest.raises(EncodeError) as info:
        get_codec(name).encode(value)
    assert str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_a_failed_encode_leaves_nothing_behind(name: str) -> None:
    codec = get_codec(name)
    good = sample_payload(2, 5)
    expected = codec.encode(good)
    with pytest.raises(EncodeError):
        codec.encode({"id": 2**64, "kind": "\ud800", "value": 1.0, "data": [object()]})
    assert codec.encode(good) == expected


def test_msgpack_encode_from_many_threads() -> None:
    codec = get_codec("msgpack")
    payloads = [sample_payload(seq, seq % 50) for seq in range(400)]
    expected = [codec.encode(payload) for payload in payloads]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(codec.encode, payloads)) == expected


def test_struct_encode_error_says_what_does_not_fit() -> None:
    codec = get_codec("struct")
    with pytest.raises(EncodeError, match="missing data"):
        codec.encode({"id": 1, "kind": "k", "value": 1.0})
    with pytest.raises(EncodeError, match="'extra'"):
        codec.encode({"id": 1, "kind": "k", "value": 1.0, "data": "", "extra": 0})
    with pytest.raises(EncodeError, match="int64"):
        codec.encode({"id": -(2**63) - 1, "kind": "k", "value": 1.0, "data": ""})
    with pytest.raises(EncodeError, match="255"):
        codec.encode({"id": 1, "kind": "é" * 128, "value": 1.0, "data": ""})


def test_xml_escapes_survive_the_parser() -> None:
    codec = get_codec("xml")
    value = {"t": "a\r\nb\rc]]>&<>\"'\t", 'k\r\t\n"&<': "v", "xmlish": 1, "entry": "e"}
    assert_same(value, codec.decode(codec.encode(value)))
