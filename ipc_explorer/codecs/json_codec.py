"""JSON: compact UTF-8 text, written and read by the stdlib, explained by a byte-exact parser.

``encode`` and ``decode`` use the stdlib (C accelerated) because they run once per message.
The stdlib reports errors by *character*, so on an error, and for ``annotate``, a small parser
of our own walks the bytes and reports byte offsets, the spans read so far and the value built
so far. Reading accepts exactly what Python's json accepts: RFC 8259 plus the literals NaN,
Infinity and -Infinity (annotated as such, since other parsers refuse them); writing stays
strict RFC 8259 (NaN and Infinity are refused). Containers nest at most ``MAX_DEPTH`` deep.

"""

from __future__ import annotations

import json
import re
from typing import Any

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


def _brackets(data: bytes) -> int:
    return data.count(b"[") + data.count(b"{")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder()


@register
class JsonCodec(Codec):
    """Compact JSON (no spaces), UTF-8, NaN/Infinity refused."""

    name = "json"
    title = "JSON"
    content_type = "application/json"

    def encode(self, value: Any) -> bytes:
        try:
            text = _ENCODER.encode(value)
        except ValueError as exc:
            if "Out of range float" in str(exc):
                raise EncodeError("JSON cannot carry NaN or Infinity") from None
            raise EncodeError(f"cannot write JSON: {exc}") from None
        except TypeError as exc:
            raise EncodeError(f"cannot write JSON: {exc}") from None
        except RecursionError:
            raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels") from None
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(
                f"string contains a lone surrogate U+{ord(text[exc.start]):04X}, "
                "which UTF-8 cannot carry"
            ) from None
        if too_deep(value, data, 2, _brackets):
            raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels")
        return data

    def decode(self, data: bytes) -> Any:
        try:
            # Not json.loads(bytes): it guesses UTF-16/32 and lets encoded surrogates through,
            # which the byte parser (and RFC 8259) would refuse. Decoding first is also faster.
            value = _DECODER.decode(data.decode("utf-8"))
        except Exception:
            # Slow path only to locate the error in bytes; returns if it disagrees (it should not).
            return _JsonReader(data).read()
        if too_deep(value, data, 2, _brackets):
            return _JsonReader(data).read()  # raises the depth error with its offset
        return value

    def annotate(self, data: bytes) -> list[Span]:
        reader = _JsonReader(data)
        reader.read()
        return reader.spans


_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_PLAIN_RUN = re.compile(rb'[^"\\\x00-\x1f]*')
_ESCAPE = re.compile(rb'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})')
_STRING = re.compile(rb'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"')
_LITERALS = ((b"true", True, "bool"), (b"false", False, "bool"), (b"null", None, "null"))
_NOT_JSON = (b"NaN", b"Infinity", b"-Infinity")
_OPEN, _CLOSE, _COMMA, _COLON, _QUOTE = 0x7B, 0x7D, 0x2C, 0x3A, 0x22
_OPEN_LIST, _CLOSE_LIST = 0x5B, 0x5D


class _Frame:
    """An open container: where it is, and the key its next value goes under."""

    __slots__ = ("container", "path", "open_index", "is_dict", "key")

    def __init__(self, container: Any, path: str, open_index: int) -> None:
        self.container = container
        self.path = path
        self.open_index = open_index
        self.is_dict = isinstance(container, dict)
        self.key: str | None = None


class _JsonReader(SpanReader):
    """Iterative byte-level JSON parser that records a span for every byte it reads."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.stack: list[_Frame] = []

    def skip_whitespace(self, pos: int, path: str) -> int:
        end = _WHITESPACE.match(self.data, pos).end()
        if end > pos:
            self.span(pos, end, path, "whitespace", "whitespace")
        return end

    def attach(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if frame.is_dict:
            frame.container[frame.key] = value
        else:
            frame.container.append(value)

    def read(self) -> Any:
        data, stack = self.data, self.stack
        size = len(data)
        pos = self.skip_whitespace(0, "$")
        path = "$"
        while True:
            pos, first_child = self.read_value(pos, path)
            if first_child is not None:
                path = first_child
                continue
            # After a value: close finished containers until a comma asks for the next value.
            while True:
                if not stack:
                    pos = self.skip_whitespace(pos, "$")
                    if pos < size:
                        self.fail(pos, f"unexpected {_describe(data, pos)} after the JSON value")
                    return self.root
                frame = stack[-1]
                pos = self.skip_whitespace(pos, frame.path)
                closer = _CLOSE if frame.is_dict else _CLOSE_LIST
                if pos >= size:
                    self.fail(pos, f"input ends inside the {_kind_name(frame)} at {frame.path}")
                byte = data[pos]
                if byte == closer:
                    self.close(pos, frame)
                    pos += 1
                    continue
                if byte != _COMMA:
                    self.fail(pos, f"expected ',' or '{chr(closer)}', found {_describe(data, pos)}")
                self.span(pos, pos + 1, frame.path, "punct", ",")
                pos = self.skip_whitespace(pos + 1, frame.path)
                if frame.is_dict:
                    pos, path = self.read_key(pos, frame)
                else:
                    path = item_path(frame.path, len(frame.container))
                break

    def close(self, pos: int, frame: _Frame) -> None:
        count = len(frame.container)
        if frame.is_dict:
            opener = f"{{ object, {count} {'entry' if count == 1 else 'entries'}"
            closer = "} end of object"
        else:
            opener = f"[ array, {count} {'item' if count == 1 else 'items'}"
            closer = "] end of array"
        old = self.spans[frame.open_index]
        self.spans[frame.open_index] = Span(old.start, old.end, old.path, old.kind, opener)
        self.span(pos, pos + 1, frame.path, "punct", closer)
        self.stack.pop()

    def read_value(self, pos: int, path: str) -> tuple[int, str | None]:
        """Read one value at ``pos``.

        A container is only opened (pushed, never recursed into): the result then names the
        path of its first child, or None when it is empty or the value was a scalar.
        """
        data = self.data
        if pos >= len(data):
            self.fail(pos, f"expected a value for {path}, input ends")
        byte = data[pos]
        if byte == _OPEN or byte == _OPEN_LIST:
            if len(self.stack) >= MAX_DEPTH:
                self.fail(pos, f"containers nest deeper than {MAX_DEPTH} levels")
            container: Any = {} if byte == _OPEN else []
            self.attach(container)
            frame = _Frame(container, path, len(self.spans))
            self.span(pos, pos + 1, path, "punct", "{ object" if byte == _OPEN else "[ array")
            self.stack.append(frame)
            pos = self.skip_whitespace(pos + 1, path)
            if pos < len(data) and data[pos] == (_CLOSE if byte == _OPEN else _CLOSE_LIST):
                return pos, None  # empty: the caller's loop closes it
            if byte == _OPEN:
                return self.read_key(pos, frame, first=True)
            return pos, item_path(path, 0)
        if byte == _QUOTE:
            text, end = self.read_string(pos)
            self.string_spans(pos, end, path, "string", short_text(text))
            self.attach(text)
            return end, None
        if byte == 0x2D or 0x30 <= byte <= 0x39:
            return self.read_number(pos, path), None
        for literal, value, kind in _LITERALS:
            if data.startswith(literal, pos):
                self.span(pos, pos + len(literal), path, kind, literal.decode())
                self.attach(value)
                return pos + len(literal), None
        end = self.read_constant(pos, path)
        if end is not None:
            return end, None
        self.fail(pos, f"expected a value for {path}, found {_describe(data, pos)}")

    def read_constant(self, pos: int, path: str) -> int | None:
        """NaN, Infinity, -Infinity: Python's json reads them, RFC 8259 does not have them."""
        for word in _NOT_JSON:
            if self.data.startswith(word, pos):
                value = float(word.decode())
                self.span(
                    pos, pos + len(word), path, "float", f"{word.decode()} (Python JSON, not RFC)"
                )
                self.attach(value)
                return pos + len(word)
        return None

    def read_number(self, pos: int, path: str) -> int:
        data = self.data
        end = self.read_constant(pos, path)  # -Infinity starts like a number
        if end is not None:
            return end
        match = _NUMBER.match(data, pos)
        if match is None:
            self.fail(pos, f"expected a digit, found {_describe(data, pos + 1)}")
        token = match.group()
        if match.group(1) or match.group(2):
            value: Any = float(token)
            self.span(pos, match.end(), path, "float", f"float {value!r}")
        else:
            try:
                value = int(token)
            except ValueError:
                self.fail(pos, f"integer with {len(token)} digits is too long")
            self.span(pos, match.end(), path, "int", f"int {value}")
        self.attach(value)
        return match.end()

    def read_key(self, pos: int, frame: _Frame, first: bool = False) -> tuple[int, str]:
        """Read ``"key" :`` and the whitespace after it; return where the value starts."""
        data = self.data
        if pos >= len(data) or data[pos] != _QUOTE:
            expected = "'\"' to start a key or '}'" if first else "'\"' to start a key"
            if pos >= len(data):
                self.fail(pos, f"expected {expected}, input ends")
            self.fail(pos, f"expected {expected}, found {_describe(data, pos)}")
        key, end = self.read_string(pos)
        child = member_path(frame.path, key)
        self.string_spans(pos, end, child, "key", short_text(key))
        pos = self.skip_whitespace(end, frame.path)
        if pos >= len(data) or data[pos] != _COLON:
            found = "input ends" if pos >= len(data) else f"found {_describe(data, pos)}"
            self.fail(pos, f"expected ':' after key {short_text(key)}, {found}")
        self.span(pos, pos + 1, frame.path, "punct", ":")
        frame.key = key
        return self.skip_whitespace(pos + 1, frame.path), child

    def string_spans(self, start: int, end: int, path: str, kind: str, label: str) -> None:
        self.span(start, start + 1, path, "punct", "opening quote")
        if end - start > 2:
            self.span(start + 1, end - 1, path, kind, label)
        self.span(end - 1, end, path, "punct", "closing quote")

    def read_string(self, pos: int) -> tuple[str, int]:
        """Decode the string token at ``pos`` (which is a quote); return it and its end."""
        data = self.data
        match = _STRING.match(data, pos)
        if match is None:
            self.string_error(pos)
        end = match.end()
        raw = data[pos + 1 : end - 1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(pos + 1 + exc.start, f"invalid UTF-8 in string: {exc.reason}")
        if "\\" in text:
            text = json.loads(f'"{text}"')
        return text, end

    def string_error(self, pos: int) -> None:
        data = self.data
        index = pos + 1
        while True:
            index = _PLAIN_RUN.match(data, index).end()
            if index >= len(data):
                self.check_utf8(pos + 1, index)
                self.fail(index, "unterminated string, input ends")
            byte = data[index]
            if byte == 0x5C:
                escape = _ESCAPE.match(data, index)
                if escape is None:
                    self.check_utf8(pos + 1, index)
                    self.fail(index, f"invalid escape {data[index : index + 2]!r} in string")
                index = escape.end()
            else:
                self.check_utf8(pos + 1, index)
                self.fail(index, f"control character 0x{byte:02x} must be escaped in a string")

    def check_utf8(self, start: int, end: int) -> None:
        try:
            self.data[start:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(start + exc.start, f"invalid UTF-8 in string: {exc.reason}")


def _kind_name(frame: _Frame) -> str:
    return "object" if frame.is_dict else "array"


def _describe(data: bytes, pos: int) -> str:
    if pos >= len(data):
        return "end of input"
    byte = data[pos]
    if 0x20 < byte < 0x7F:
        return f"'{chr(byte)}'"
    return f"byte 0x{byte:02x}"
