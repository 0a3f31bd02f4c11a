"""MessagePack: packed and unpacked by the ``msgpack`` library, explained by a walker of our own.

The library is fast but reports errors without offsets, so on an error, and for ``annotate``,
``_MsgpackReader`` walks the bytes itself. It never trusts a declared length: a str, bin or
ext longer than the bytes that remain, or an array/map declaring more items than remaining
bytes could hold, is a DecodeError before anything is allocated (the library's own limits
default to ``len(data)``, so its allocations stay proportional to the input too). Containers
may nest at most ``MAX_DEPTH`` deep and nothing may follow the value.

Decoded values are what ``msgpack.unpackb(raw=False, strict_map_key=False)`` returns: JSON-like
values, plus ``bytes`` for bin, ``msgpack.Timestamp`` for ext type -1, ``msgpack.ExtType`` for
other ext types, and any hashable scalar as a map key.

Spans: the type byte is a ``header`` span (``fixmap 4 entries``, ``str8``, ``uint16``), length
bytes a ``length`` span, the payload a value span (``string``, ``int``, ``float``, ``bytes``;
``key`` for map keys). One-byte values (fixint, nil, true, false) are a single value span.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

import msgpack

from ipc_explorer.codecs import register
from ipc_explorer.codecs.base import Codec, EncodeError, Span
from ipc_explorer.codecs.tree import (
    MAX_DEPTH,
    SpanReader,
    item_path,
    member_path,
    short_text,
    too_deep,
)

# Type bytes that start an array or a map (they may also sit inside strings: an upper bound).
_NOT_CONTAINER_BYTES = bytes(
    byte for byte in range(256) if not (0x80 <= byte <= 0x9F or 0xDC <= byte <= 0xDF)
)


def _container_bytes(data: bytes) -> int:
    return len(data.translate(None, _NOT_CONTAINER_BYTES))


@register
class MsgpackCodec(Codec):
    """MessagePack with the str/bin distinction (``use_bin_type``)."""

    name = "msgpack"
    title = "MessagePack"
    content_type = "application/msgpack"

    def __init__(self) -> None:
        # A reused Packer is ~2.5x faster than packb; it is not thread-safe: one per thread.
        self._local = threading.local()

    def encode(self, value: Any) -> bytes:
        packer = getattr(self._local, "packer", None)
        if packer is None:
            packer = self._local.packer = msgpack.Packer(use_bin_type=True)
        try:
            data = packer.pack(value)
        except OverflowError:
            raise EncodeError("int outside the 64-bit range MessagePack can carry") from None
        except UnicodeEncodeError as exc:
            char = exc.object[exc.start] if isinstance(exc.object, str) else "?"
            raise EncodeError(
                f"string contains a lone surrogate U+{ord(char):04X}, which UTF-8 cannot carry"
            ) from None
        except ValueError as exc:
            if "recursion" in str(exc):
                raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels") from None
            raise EncodeError(f"cannot write MessagePack: {exc}") from None
        except TypeError as exc:
            raise EncodeError(f"cannot write MessagePack: {exc}") from None
        if too_deep(value, data, 1, _container_bytes):
            raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels")
        return data

    def decode(self, data: bytes) -> Any:
        try:
            value = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception:
            # The library says what, not where: the walker finds the offset (and returns the
            # value should it disagree, which it should not).
            return _MsgpackReader(data).read()
        if too_deep(value, data, 1, _container_bytes):
            return _MsgpackReader(data).read()  # raises the depth error with its offset
        return value

    def annotate(self, data: bytes) -> list[Span]:
        reader = _MsgpackReader(data)
        reader.read()
        return reader.spans


# Type byte -> (name, category, width). Width is the size of the length field for str, bin,
# ext, array and map; of the payload for numbers and fixext.
_FORMATS: dict[int, tuple[str, str, int]] = {
    0xC0: ("nil", "nil", 0),
    0xC2: ("false", "false", 0),
    0xC3: ("true", "true", 0),
    0xC4: ("bin8", "bin", 1),
    0xC5: ("bin16", "bin", 2),
    0xC6: ("bin32", "bin", 4),
    0xC7: ("ext8", "ext", 1),
    0xC8: ("ext16", "ext", 2),
    0xC9: ("ext32", "ext", 4),
    0xCA: ("float32", "float", 4),
    0xCB: ("float64", "float", 8),
    0xCC: ("uint8", "uint", 1),
    0xCD: ("uint16", "uint", 2),
    0xCE: ("uint32", "uint", 4),
    0xCF: ("uint64", "uint", 8),
    0xD0: ("int8", "int", 1),
    0xD1: ("int16", "int", 2),
    0xD2: ("int32", "int", 4),
    0xD3: ("int64", "int", 8),
    0xD4: ("fixext1", "fixext", 1),
    0xD5: ("fixext2", "fixext", 2),
    0xD6: ("fixext4", "fixext", 4),
    0xD7: ("fixext8", "fixext", 8),
    0xD8: ("fixext16", "fixext", 16),
    0xD9: ("str8", "str", 1),
    0xDA: ("str16", "str", 2),
    0xDB: ("str32", "str", 4),
    0xDC: ("array16", "array", 2),
    0xDD: ("array32", "array", 4),
    0xDE: ("map16", "map", 2),
    0xDF: ("map32", "map", 4),
}
_FLOAT_FORMATS = {4: struct.Struct(">f"), 8: struct.Struct(">d")}
_TIMESTAMP_EXT = -1
_CONSTANTS = {"nil": None, "false": False, "true": True}


def _bytes(length: int) -> str:
    return "1 byte" if length == 1 else f"{length} bytes"


def _count(count: int, is_map: bool) -> str:
    if is_map:
        return f"{count} {'entry' if count == 1 else 'entries'}"
    return f"{count} {'item' if count == 1 else 'items'}"


class _Frame:
    """An open array or map: how many items (keys and values count apart) are still to come."""

    __slots__ = ("container", "path", "remaining", "is_map", "key", "expect_key")

    def __init__(self, container: Any, path: str, remaining: int) -> None:
        self.container = container
        self.path = path
        self.remaining = remaining
        self.is_map = isinstance(container, dict)
        self.key: Any = None
        self.expect_key = self.is_map


class _MsgpackReader(SpanReader):
    """Iterative MessagePack walker recording a span for every byte it reads."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.stack: list[_Frame] = []

    def read(self) -> Any:
        data, stack = self.data, self.stack
        if not data:
            self.fail(0, "empty input: a MessagePack value needs at least one byte")
        pos = 0
        while True:
            if not stack:
                pos = self.read_item(pos, "$", is_key=False)
            else:
                frame = stack[-1]
                frame.remaining -= 1
                if frame.expect_key:
                    pos = self.read_item(pos, frame.path, is_key=True)
                elif frame.is_map:
                    pos = self.read_item(pos, member_path(frame.path, frame.key), is_key=False)
                else:
                    path = item_path(frame.path, len(frame.container))
                    pos = self.read_item(pos, path, is_key=False)
            while stack and stack[-1].remaining == 0:
                stack.pop()
            if not stack:
                break
        if pos < len(data):
            extra = len(data) - pos
            self.fail(pos, f"{extra} trailing byte{'s' * (extra != 1)} after the value")
        return self.root

    def attach(self, value: Any, offset: int) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if not frame.is_map:
            frame.container.append(value)
        elif frame.expect_key:
            try:
                hash(value)
            except TypeError:
                self.fail(offset, f"map key of type {type(value).__name__} cannot be a dict key")
            frame.key = value
            frame.expect_key = False
        else:
            frame.container[frame.key] = value
            frame.expect_key = True

    def need(self, pos: int, count: int, what: str) -> None:
        remaining = len(self.data) - pos
        if count > remaining:
            self.fail(pos, f"{what} needs {count} more bytes, only {remaining} remain")

    def read_item(self, pos: int, path: str, is_key: bool) -> int:
        """Read one item at ``pos``; a container is pushed, not read. Returns the next offset."""
        data = self.data
        if pos >= len(data):
            what = f"a key of {path}" if is_key else f"the value of {path}"
            self.fail(pos, f"input ends where {what} was expected")
        byte = data[pos]
        if byte <= 0x7F or byte >= 0xE0:
            value = byte if byte <= 0x7F else byte - 0x100
            self.attach(value, pos)
            path = member_path(path, value) if is_key else path
            self.span(pos, pos + 1, path, "key" if is_key else "int", f"fixint {value}")
            return pos + 1
        if byte <= 0x9F:
            count = byte & 0x0F
            is_map = byte <= 0x8F
            name = "fixmap" if is_map else "fixarray"
            self.check_container(pos, path, is_key, name)
            self.span(pos, pos + 1, path, "header", f"{name} {_count(count, is_map)}")
            return self.fill_container(pos + 1, path, {} if is_map else [], count, name)
        first_span = len(self.spans)
        if byte <= 0xBF:
            length = byte & 0x1F
            self.span(pos, pos + 1, path, "header", f"fixstr len={length}")
            return self.read_text(first_span, pos + 1, length, path, is_key, "fixstr")
        if byte not in _FORMATS:
            self.fail(pos, f"0x{byte:02x} is not a MessagePack type byte (it is never used)")
        name, category, width = _FORMATS[byte]
        if category in _CONSTANTS:
            value = _CONSTANTS[category]
            self.attach(value, pos)
            path = member_path(path, value) if is_key else path
            kind = "key" if is_key else "null" if value is None else "bool"
            self.span(pos, pos + 1, path, kind, name)
            return pos + 1
        if category in ("array", "map"):
            self.check_container(pos, path, is_key, name)
        self.span(pos, pos + 1, path, "header", name)
        start = pos + 1
        if category in ("uint", "int", "float"):
            return self.read_number(first_span, start, width, path, is_key, name)
        if category == "fixext":
            return self.read_ext(first_span, start, width, path, is_key)
        self.need(start, width, f"{name} length")
        length = int.from_bytes(data[start : start + width], "big")
        body = start + width
        if category in ("array", "map"):
            is_map = category == "map"
            self.span(start, body, path, "length", _count(length, is_map))
            return self.fill_container(body, path, {} if is_map else [], length, name)
        self.span(start, body, path, "length", f"len={length}")
        if category == "str":
            return self.read_text(first_span, body, length, path, is_key, name)
        if category == "bin":
            return self.read_blob(first_span, body, length, path, is_key, name)
        return self.read_ext(first_span, body, length, path, is_key)

    def check_container(self, pos: int, path: str, is_key: bool, name: str) -> None:
        if is_key:
            self.fail(pos, f"map key in {path} is a container ({name}): keys must be scalars")
        if len(self.stack) >= MAX_DEPTH:
            self.fail(pos, f"containers nest deeper than {MAX_DEPTH} levels")

    def fill_container(self, body: int, path: str, container: Any, count: int, name: str) -> int:
        """Attach a new array/map and push it, unless its count cannot fit what remains."""
        minimum = count * 2 if isinstance(container, dict) else count
        remaining = len(self.data) - body
        if minimum > remaining:
            noun = _count(count, isinstance(container, dict))
            self.fail(body, f"{name} declares {noun} but only {remaining} bytes remain")
        self.attach(container, body)
        if count:
            self.stack.append(_Frame(container, path, minimum))
        return body

    def read_number(
        self, first_span: int, start: int, width: int, path: str, is_key: bool, name: str
    ) -> int:
        self.need(start, width, name)
        category = _FORMATS[self.data[start - 1]][1]
        field = self.data[start : start + width]
        value: Any
        if category == "float":
            value = _FLOAT_FORMATS[width].unpack(field)[0]
            kind, label = "float", f"float {value!r}"
        else:
            value = int.from_bytes(field, "big", signed=category == "int")
            kind, label = "int", f"int {value}"
        self.attach(value, start - 1)
        if is_key:
            path = self.repath(first_span, path, value)
        self.span(start, start + width, path, "key" if is_key else kind, label)
        return start + width

    def read_text(
        self, first_span: int, body: int, length: int, path: str, is_key: bool, name: str
    ) -> int:
        self.need(body, length, name)
        try:
            text = self.data[body : body + length].decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(body + exc.start, f"invalid UTF-8 in {name}: {exc.reason}")
        self.attach(text, self.spans[first_span].start)
        if is_key:
            path = self.repath(first_span, path, text)
        if length:
            self.span(body, body + length, path, "key" if is_key else "string", short_text(text))
        return body + length

    def read_blob(
        self, first_span: int, body: int, length: int, path: str, is_key: bool, name: str
    ) -> int:
        self.need(body, length, name)
        blob = self.data[body : body + length]
        self.attach(blob, self.spans[first_span].start)
        if is_key:
            path = self.repath(first_span, path, blob)
        if length:
            self.span(body, body + length, path, "key" if is_key else "bytes", _bytes(length))
        return body + length

    def read_ext(self, first_span: int, body: int, length: int, path: str, is_key: bool) -> int:
        """Ext and fixext: a signed type byte, then ``length`` bytes of payload."""
        self.need(body, 1, "ext type")
        code = int.from_bytes(self.data[body : body + 1], "big", signed=True)
        if code < 0 and code != _TIMESTAMP_EXT:
            self.fail(body, f"ext type {code} is reserved (only -1, timestamp, is defined)")
        self.span(body, body + 1, path, "header", f"ext type {code}")
        body += 1
        self.need(body, length, "ext payload")
        payload = self.data[body : body + length]
        value: Any
        if code == _TIMESTAMP_EXT:
            try:
                value = msgpack.Timestamp.from_bytes(payload)
            except ValueError as exc:
                self.fail(body, f"bad timestamp: {exc}")
            label = f"timestamp {value.seconds}s {value.nanoseconds}ns"
        else:
            value = msgpack.ExtType(code, payload)
            label = _bytes(length)
        self.attach(value, self.spans[first_span].start)
        if is_key:
            path = self.repath(first_span, path, value)
        if length:
            self.span(body, body + length, path, "key" if is_key else "bytes", label)
        return body + length

    def repath(self, first_span: int, parent: str, key: Any) -> str:
        """Move the spans of a key, written before the key was known, to the key's path."""
        path = member_path(parent, key)
        for index in range(first_span, len(self.spans)):
            old = self.spans[index]
            self.spans[index] = Span(old.start, old.end, path, old.kind, old.label)
        return path
