"""Struct: a fixed little-endian binary layout, the way a C program would send the sample payload.

It carries exactly ``{"id": int, "kind": str, "value": float, "data": str}`` (the shape of
``sample_payload``) and nothing else, so it shows what a schema-less format spends on keys and
type tags. Layout (n = length of ``kind``, m = length of ``data``, both in UTF-8 bytes)::

    offset   size  field         type
    0        2     magic         the bytes "IX"
    2        1     version       u8, always 1
    3        8     id            int64
    11       1     kind length   u8 (n, at most 255)
    12       n     kind          UTF-8
    12+n     8     value         float64 (IEEE 754, bit-exact)
    20+n     4     data length   u32 (m)
    24+n     m     data          UTF-8

Total 24 + n + m bytes; nothing may follow. Any value that does not fit (other or missing keys,
wrong types, an id outside int64, a kind over 255 bytes) raises EncodeError saying what; an int
is not accepted for ``value`` because it would come back as a float.
"""

from __future__ import annotations

import struct
from typing import Any, NoReturn

from ipc_explorer.codecs import register
from ipc_explorer.codecs.base import Codec, DecodeError, EncodeError, PartialDecode, Span
from ipc_explorer.codecs.tree import short_text

MAGIC = b"IX"
VERSION = 1
_HEAD = struct.Struct("<2sBqB")  # magic, version, id, kind length
_MIDDLE = struct.Struct("<dI")  # value, data length
_KEYS = ("id", "kind", "value", "data")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_KIND_BYTES = 255
_MAX_DATA_BYTES = 2**32 - 1


@register
class StructCodec(Codec):
    """The fixed layout in the module docstring."""

    name = "struct"
    title = "C struct (fixed layout)"
    content_type = "application/octet-stream"

    def encode(self, value: Any) -> bytes:
        # Fast path for exact types; anything else is checked field by field.
        if type(value) is dict and len(value) == 4:
            ident, kind, number, blob = (
                value.get("id"),
                value.get("kind"),
                value.get("value"),
                value.get("data"),
            )
            if (
                type(ident) is int
                and type(kind) is str
                and type(number) is float
                and type(blob) is str
                and _INT64_MIN <= ident <= _INT64_MAX
                and kind.isascii()
                and len(kind) <= _MAX_KIND_BYTES
                and blob.isascii()
            ):
                kind_bytes, data_bytes = kind.encode("ascii"), blob.encode("ascii")
                if len(data_bytes) <= _MAX_DATA_BYTES:
                    head = _HEAD.pack(MAGIC, VERSION, ident, len(kind_bytes))
                    return b"".join(
                        (head, kind_bytes, _MIDDLE.pack(number, len(data_bytes)), data_bytes)
                    )
        ident, kind_bytes, number, data_bytes = _fit(value)
        head = _HEAD.pack(MAGIC, VERSION, ident, len(kind_bytes))
        return b"".join((head, kind_bytes, _MIDDLE.pack(number, len(data_bytes)), data_bytes))

    def decode(self, data: bytes) -> Any:
        try:
            magic, version, ident, kind_length = _HEAD.unpack_from(data, 0)
            kind_end = _HEAD.size + kind_length
            number, data_length = _MIDDLE.unpack_from(data, kind_end)
            data_start = kind_end + _MIDDLE.size
            if magic == MAGIC and version == VERSION and data_start + data_length == len(data):
                return {
                    "id": ident,
                    "kind": data[_HEAD.size : kind_end].decode("utf-8"),
                    "value": number,
                    "data": data[data_start:].decode("utf-8"),
                }
        except (struct.error, UnicodeDecodeError):
            pass
        # The reader explains the error (or returns the value, should the two disagree).
        return _StructReader(data).read()

    def annotate(self, data: bytes) -> list[Span]:
        reader = _StructReader(data)
        reader.read()
        return reader.spans


def _fit(value: Any) -> tuple[int, bytes, float, bytes]:
    """The four fields ready to pack, or EncodeError naming what does not fit the layout."""
    if not isinstance(value, dict):
        raise EncodeError(
            f"the struct layout holds a map with keys {', '.join(_KEYS)}, "
            f"not a {type(value).__name__}"
        )
    missing = [key for key in _KEYS if key not in value]
    extra = [repr(key) for key in value if key not in _KEYS]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if extra:
            problems.append(f"no field for {', '.join(extra)}")
        raise EncodeError(
            f"the struct layout has exactly id, kind, value, data: {'; '.join(problems)}"
        )
    ident, kind, number, blob = (value[key] for key in _KEYS)
    if not isinstance(ident, int) or isinstance(ident, bool):
        raise EncodeError(f"id must be an int (int64), got {type(ident).__name__}")
    if not _INT64_MIN <= ident <= _INT64_MAX:
        raise EncodeError(f"id {ident} does not fit in int64")
    if not isinstance(number, float):
        raise EncodeError(f"value must be a float (float64), got {type(number).__name__}")
    kind_bytes = _utf8(kind, "kind")
    if len(kind_bytes) > _MAX_KIND_BYTES:
        raise EncodeError(f"kind is {len(kind_bytes)} bytes in UTF-8; its u8 length allows 255")
    data_bytes = _utf8(blob, "data")
    if len(data_bytes) > _MAX_DATA_BYTES:
        raise EncodeError(f"data is {len(data_bytes)} bytes in UTF-8; its u32 length is too small")
    return int(ident), kind_bytes, float(number), data_bytes


def _utf8(text: Any, field: str) -> bytes:
    if not isinstance(text, str):
        raise EncodeError(f"{field} must be a str, got {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(
            f"{field} contains a lone surrogate U+{ord(text[exc.start]):04X}, "
            "which UTF-8 cannot carry"
        ) from None


class _StructReader:
    """Reads the layout field by field, recording a span per field."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.spans: list[Span] = []
        self.value: dict[str, Any] = {}
        self.pos = 0

    def fail(self, offset: int, message: str) -> NoReturn:
        raise DecodeError(offset, message, PartialDecode(self.value, self.spans))

    def take(self, size: int, what: str) -> bytes:
        remaining = len(self.data) - self.pos
        if size > remaining:
            self.fail(self.pos, f"{what} needs {size} bytes, only {remaining} remain")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def span(self, size: int, path: str, kind: str, label: str) -> None:
        self.spans.append(Span(self.pos - size, self.pos, path, kind, label))

    def read(self) -> dict[str, Any]:
        magic = self.take(2, "magic")
        if magic != MAGIC:
            self.fail(0, f"magic is {magic!r}, expected {MAGIC!r}: not this layout")
        self.span(2, "$", "header", f"magic {MAGIC.decode()}")
        version = self.take(1, "version")[0]
        if version != VERSION:
            self.fail(2, f"layout version {version} is unknown (this is version {VERSION})")
        self.span(1, "$", "header", f"version {version}")
        ident = int.from_bytes(self.take(8, "id (int64)"), "little", signed=True)
        self.span(8, "$.id", "int", f"int64 {ident}")
        self.value["id"] = ident
        self.value["kind"] = self.read_text("kind", 1, "u8")
        number = struct.unpack("<d", self.take(8, "value (float64)"))[0]
        self.span(8, "$.value", "float", f"float64 {number!r}")
        self.value["value"] = number
        self.value["data"] = self.read_text("data", 4, "u32")
        if self.pos < len(self.data):
            extra = len(self.data) - self.pos
            self.fail(self.pos, f"{extra} trailing byte{'s' * (extra != 1)} after the layout")
        return self.value

    def read_text(self, field: str, width: int, width_name: str) -> str:
        path = f"$.{field}"
        length = int.from_bytes(self.take(width, f"{field} length ({width_name})"), "little")
        self.span(width, path, "length", f"{width_name} len={length}")
        start = self.pos
        raw = self.take(length, field)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(start + exc.start, f"invalid UTF-8 in {field}: {exc.reason}")
        if length:
            self.span(length, path, "string", short_text(text))
        return text
