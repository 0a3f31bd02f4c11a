"""XML: one element per value, read with expat so that every offset is expat's own.

The mapping (``encode`` writes exactly this, compact, with the declaration)::

    <?xml version="1.0" encoding="UTF-8"?>         optional when decoding
    <message type="map">                           the root element is always <message>
      <id type="int">17</id>                       a key that is an XML name: the element name
      <kind>sample</kind>                          str is the default type: no attribute
      <value type="float">8.5</value>              Python repr: also inf, -inf, nan
      <entry key="a b">x</entry>                   any other key: <entry key="...">
      <ok type="bool">true</ok>                    true / false
      <nothing type="null"/>                       null elements are empty
      <tags type="list"><item>a</item><item type="int">2</item></tags>
      <empty/>                                     the empty string
    </message>

* Types: ``str`` (default; ``type="str"`` is accepted), ``int``, ``float``, ``bool``, ``null``,
  ``list`` (children are ``<item>``), ``map`` (children named by key).
* A key is written as the element name when it matches ``[A-Za-z_][A-Za-z0-9_.-]*`` and does not
  start with ``xml`` (reserved); otherwise as ``<entry key="...">``. An element ``<entry>``
  without ``key`` is the key "entry".
* Escapes: ``& < >`` as entities, and ``\\r`` as ``&#13;`` so end-of-line normalisation keeps it;
  in the key attribute also ``"`` and ``\\t \\n \\r`` as character references.
* Strings XML 1.0 cannot carry (control characters other than tab, newline and carriage return,
  U+FFFE, U+FFFF, lone surrogates) raise EncodeError.

Decoding is strict: a DOCTYPE is refused (so no entity can ever expand), as are unknown
attributes or types, text other than whitespace inside a list or map, elements inside a scalar,
and numbers not written the way ``encode`` writes them. Comments, processing instructions, CDATA
sections and character references are accepted. Containers nest at most ``MAX_DEPTH`` deep.

``decode`` runs expat with small closures that only build the value; on any error it parses
again with ``_XmlReader``, which tracks every event (as ``annotate`` does) to report the offset,
the spans and the partial value.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn
from xml.parsers import expat

from ipc_explorer.codecs import register
from ipc_explorer.codecs.base import Codec, DecodeError, EncodeError, PartialDecode, Span
from ipc_explorer.codecs.tree import MAX_DEPTH, item_path, member_path, short_text

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
# Anything outside this class needs a closer look: escaping, or a character XML cannot carry.
_NEEDS_CARE = re.compile(
    "[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_ATTR_ESCAPES = {**_TEXT_ESCAPES, '"': "&quot;", "\t": "&#9;", "\n": "&#10;"}
_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTR_SPECIAL = re.compile('[&<>\r"\t\n]')
_key_tags: dict[str, tuple[str, str]] = {}


def _check_text(text: str, where: str) -> None:
    bad = _NOT_XML_CHAR.search(text)
    if bad is not None:
        raise EncodeError(
            f"{where} contains U+{ord(bad.group()):04X} at index {bad.start()}, "
            "which XML 1.0 cannot carry"
        )


def _escape_text(text: str, where: str) -> str:
    if _NEEDS_CARE.search(text) is None:
        return text
    _check_text(text, where)
    return _TEXT_SPECIAL.sub(lambda match: _TEXT_ESCAPES[match.group()], text)


def _key_tag(key: str) -> tuple[str, str]:
    """(start tag body, end tag name) for a map key, cached: keys repeat in every message."""
    tags = _key_tags.get(key)
    if tags is None:
        if _KEY_NAME.match(key) and not key[:3].lower() == "xml":
            tags = (key, key)
        else:
            _check_text(key, f"key {short_text(key)}")
            escaped = _ATTR_SPECIAL.sub(lambda match: _ATTR_ESCAPES[match.group()], key)
            tags = (f'entry key="{escaped}"', "entry")
        if len(_key_tags) > 4096:
            _key_tags.clear()
        _key_tags[key] = tags
    return tags


def _write(out: list[str], value: Any, tag: str, end: str, depth: int) -> None:
    if isinstance(value, str):
        if value:
            out.append(f"<{tag}>{_escape_text(value, 'string')}</{end}>")
        else:
            out.append(f"<{tag}/>")
    elif isinstance(value, bool):
        out.append(f'<{tag} type="bool">{"true" if value else "false"}</{end}>')
    elif isinstance(value, int):
        out.append(f'<{tag} type="int">{int(value)}</{end}>')
    elif isinstance(value, float):
        out.append(f'<{tag} type="float">{float(value)!r}</{end}>')
    elif value is None:
        out.append(f'<{tag} type="null"/>')
    elif isinstance(value, (dict, list, tuple)):
        if depth >= MAX_DEPTH:
            raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels")
        is_map = isinstance(value, dict)
        kind = "map" if is_map else "list"
        if not value:
            out.append(f'<{tag} type="{kind}"/>')
            return
        out.append(f'<{tag} type="{kind}">')
        if is_map:
            for key, child in value.items():
                if not isinstance(key, str):
                    raise EncodeError(f"map key {key!r} is not a string")
                child_tag, child_end = _key_tag(key)
                _write(out, child, child_tag, child_end, depth + 1)
        else:
            for child in value:
                _write(out, child, "item", "item", depth + 1)
        out.append(f"</{end}>")
    else:
        raise EncodeError(f"XML mapping has no type for {type(value).__name__}")


@register
class XmlCodec(Codec):
    """The element-per-value XML mapping described in the module docstring."""

    name = "xml"
    title = "XML"
    content_type = "application/xml"

    def encode(self, value: Any) -> bytes:
        out = [_DECLARATION]
        try:
            _write(out, value, "message", "message", 0)
        except ValueError as exc:  # an int too long for str()
            raise EncodeError(f"cannot write XML: {exc}") from None
        # Every string went through _check_text, so no lone surrogate can reach the encoder.
        return "".join(out).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        try:
            return _decode_fast(data)
        except Exception:
            # Parse again, tracking every position, to report where (or, should the two
            # disagree, which they should not, to return the value).
            return _XmlReader(data).read()

    def annotate(self, data: bytes) -> list[Span]:
        reader = _XmlReader(data)
        reader.read()
        return reader.spans


_TYPES = ("str", "int", "float", "bool", "null", "list", "map")
_TEXT_KINDS = {"str": "string", "int": "int", "float": "float", "bool": "bool", "null": "null"}
_INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|inf|nan)\Z")
_BOOLS = {"true": True, "false": False}
_EXPECTED_TEXT = {"int": "an int", "float": "a float", "bool": "true or false", "null": "empty"}
_PLAIN_ATTRS = frozenset({"type"})
_ENTRY_ATTRS = frozenset({"type", "key"})
_XML_WHITESPACE = " \t\r\n"
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
_WHITESPACE_RUN = re.compile(rb"[ \t\r\n]*")
# Pieces of a start or end tag, once expat has said the tag is well formed.
_TAG_PIECE = re.compile(rb"""\s+|/?>|</|<|=|"[^"]*"|'[^']*'|[^\s=/<>"']+""")


class _Rejected(Exception):
    """The fast decoder gives up; ``_XmlReader`` then says where and why."""


def _to_int(text: str) -> int:
    if _INT_TEXT.match(text):
        return int(text)
    raise _Rejected


def _to_float(text: str) -> float:
    if _FLOAT_TEXT.match(text):
        return float(text)
    raise _Rejected


def _to_null(text: str) -> None:
    if text:
        raise _Rejected


def _text(text: str) -> str:
    return text


_CONVERTERS = {
    "str": _text,
    "int": _to_int,
    "float": _to_float,
    "bool": _BOOLS.__getitem__,
    "null": _to_null,
}


def _decode_fast(data: bytes) -> Any:
    """The same mapping as ``_XmlReader`` with as little work per event as possible.

    It raises on anything unusual, without saying where: the caller then runs the reader.
    """
    parser = expat.ParserCreate("UTF-8")
    parser.buffer_text = True
    # One entry per open element: (container, key) for lists and maps, (text pieces, key, type)
    # for scalars. The root's parent is a one-item list.
    root: list[Any] = []
    stack: list[tuple[Any, ...]] = [(root, None)]

    def start(name: str, attrs: dict[str, str]) -> None:
        if attrs:
            kind = attrs.get("type", "str")
            key = attrs.get("key") if name == "entry" else None
            if len(attrs) != ("type" in attrs) + (key is not None):
                raise _Rejected
        else:
            kind, key = "str", None
        parent = stack[-1]
        holder = parent[0]
        if len(parent) == 3:  # a scalar holds no elements
            raise _Rejected
        if holder.__class__ is dict:
            if key is None:
                key = name
        elif name != ("message" if holder is root else "item"):
            raise _Rejected
        if kind == "list" or kind == "map":
            if len(stack) > MAX_DEPTH:
                raise _Rejected
            container: Any = [] if kind == "list" else {}
            if holder.__class__ is dict:
                holder[key] = container
            else:
                holder.append(container)
            stack.append((container, key))
        elif kind in _CONVERTERS:
            stack.append(([], key, kind))
        else:
            raise _Rejected

    def end(_name: str) -> None:
        element = stack.pop()
        if len(element) == 3:
            held, key, kind = element
            value = _CONVERTERS[kind]("".join(held))
            holder = stack[-1][0]
            if holder.__class__ is dict:
                holder[key] = value
            else:
                holder.append(value)

    def chars(text: str) -> None:
        element = stack[-1]
        if len(element) == 3:
            element[0].append(text)
        elif text.strip(_XML_WHITESPACE):
            raise _Rejected

    def doctype(*_: Any) -> None:
        raise _Rejected

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = doctype
    parser.Parse(data, True)
    return root[0]


class _Element:
    """An open element: its type, where its value goes, and its text so far."""

    __slots__ = ("kind", "container", "path", "key", "text", "text_start", "text_spans")

    def __init__(self, kind: str, container: Any, path: str, key: Any) -> None:
        self.kind = kind
        self.container = container
        self.path = path
        self.key = key
        self.text: list[str] = []
        self.text_start = -1
        self.text_spans: list[int] = []


class _XmlReader:
    """Builds the value from expat events and turns every event into spans.

    Expat reports each event at its start (``CurrentByteIndex``), so an event's bytes run to
    where the next event starts; the pending event is written out when the next one arrives.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.spans: list[Span] = []
        self.root: Any = None
        self.stack: list[_Element] = []
        self.pending: tuple[int, str, Any] | None = None
        self.covered = 0
        self.in_cdata = False
        self.root_closed = False
        parser = expat.ParserCreate("UTF-8")
        parser.buffer_text = False  # one event per piece, each with its own offset
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.chars
        parser.StartDoctypeDeclHandler = self.doctype
        parser.XmlDeclHandler = lambda *_: self.event("declaration", None)
        parser.CommentHandler = lambda _text: self.event("comment", None)
        parser.ProcessingInstructionHandler = lambda target, _data: self.event("pi", target)
        parser.StartCdataSectionHandler = self.start_cdata
        parser.EndCdataSectionHandler = self.end_cdata
        parser.DefaultHandler = lambda _text: self.event("other", None)
        self.parser = parser

    def read(self) -> Any:
        try:
            self.parser.Parse(self.data, True)
        except expat.ExpatError as exc:
            offset = min(max(self.parser.ErrorByteIndex, 0), len(self.data))
            if self.root_closed and self.pending is not None:
                # After the root expat may point into the junk; it starts where good XML ends.
                offset = min(offset, self.token_end(*self.pending[:2]))
            self.fail(offset, f"malformed XML: {expat.ErrorString(exc.code)}")
        self.flush(len(self.data))
        return self.root

    def token_end(self, start: int, kind: str) -> int:
        """Where the token of an event that may follow the root element ends."""
        data = self.data
        if kind == "end":
            is_end_tag = data.startswith(b"</", start)  # else the end of an empty element
            return data.find(b">", start) + 1 if is_end_tag else start
        closer = {"comment": b"-->", "pi": b"?>"}.get(kind)
        if closer is not None:
            return data.find(closer, start) + len(closer)
        return _WHITESPACE_RUN.match(data, start).end()

    def fail(self, offset: int, message: str) -> NoReturn:
        self.flush(offset)
        raise DecodeError(offset, message, PartialDecode(self.root, self.spans))

    # --- expat handlers -------------------------------------------------------------------

    def doctype(self, *_: Any) -> None:
        here = self.parser.CurrentByteIndex
        start = self.data.rfind(b"<!DOCTYPE", 0, here + 1)
        self.fail(start if start >= 0 else here, "DOCTYPE is not accepted (no entity expansion)")

    def start(self, name: str, attrs: dict[str, str]) -> None:
        stack = self.stack
        key: Any = None
        allowed = _PLAIN_ATTRS
        if not stack:
            if name != "message":
                self.fail(self.parser.CurrentByteIndex, f"root must be <message>, not <{name}>")
            path = "$"
        else:
            parent = stack[-1]
            if parent.kind == "map":
                if name == "entry" and "key" in attrs:
                    key = attrs["key"]
                    allowed = _ENTRY_ATTRS
                else:
                    key = name
                path = member_path(parent.path, key)
            elif parent.kind == "list":
                if name != "item":
                    self.fail(
                        self.parser.CurrentByteIndex,
                        f"items of the list {parent.path} must be <item>, not <{name}>",
                    )
                path = item_path(parent.path, len(parent.container))
            else:
                self.fail(
                    self.parser.CurrentByteIndex,
                    f"<{name}> inside {parent.path}, which holds a {parent.kind}",
                )
        kind = attrs.get("type", "str")
        # Only containers count: every open element is one, as scalars cannot hold elements.
        if len(stack) >= MAX_DEPTH and (kind == "list" or kind == "map"):
            self.fail(self.parser.CurrentByteIndex, f"containers nest deeper than {MAX_DEPTH}")
        self.event("start", path)
        for attr in attrs:
            if attr == "xmlns" or attr.startswith("xmlns:"):
                continue  # a namespace declaration: annotated, and the names keep their prefix
            if attr not in allowed:
                self.fail(self.parser.CurrentByteIndex, f"unexpected attribute {attr!r}")
        if kind not in _TYPES:
            self.fail(self.parser.CurrentByteIndex, f"unknown type {kind!r}")
        container: Any = [] if kind == "list" else {} if kind == "map" else None
        if container is not None:
            self.attach(container, key)
        stack.append(_Element(kind, container, path, key))

    def end(self, _name: str) -> None:
        self.event("end", self.stack[-1].path)
        element = self.stack.pop()
        self.root_closed = not self.stack
        if element.container is not None:
            return
        text = "".join(element.text)
        value = self.convert(element, text)
        label = _value_label(element.kind, value)
        for index in element.text_spans:
            old = self.spans[index]
            self.spans[index] = Span(old.start, old.end, old.path, old.kind, label)
        self.attach(value, element.key)

    def chars(self, text: str) -> None:
        element = self.stack[-1]
        self.event("text", (element, text))
        if element.text_start < 0:
            element.text_start = self.parser.CurrentByteIndex
        if element.container is None:
            element.text.append(text)
        elif text.strip(_XML_WHITESPACE):
            self.fail(
                self.parser.CurrentByteIndex,
                f"text {short_text(text)} inside {element.path}, which holds a {element.kind}",
            )

    def start_cdata(self) -> None:
        self.event("cdata start", None)
        self.in_cdata = True

    def end_cdata(self) -> None:
        self.event("cdata end", None)
        self.in_cdata = False

    # --- values ---------------------------------------------------------------------------

    def attach(self, value: Any, key: Any) -> None:
        if not self.stack:
            self.root = value
            return
        parent = self.stack[-1].container
        if isinstance(parent, list):
            parent.append(value)
        else:
            parent[key] = value

    def convert(self, element: _Element, text: str) -> Any:
        kind = element.kind
        if kind == "str":
            return text
        try:
            if kind == "int" and _INT_TEXT.match(text):
                return int(text)
            if kind == "float" and _FLOAT_TEXT.match(text):
                return float(text)
        except ValueError:
            pass
        if kind == "bool" and text in _BOOLS:
            return _BOOLS[text]
        if kind == "null" and not text:
            return None
        offset = element.text_start if element.text_start >= 0 else self.parser.CurrentByteIndex
        expected = _EXPECTED_TEXT.get(kind, kind)
        self.fail(offset, f"{short_text(text)} in {element.path} is not {expected}")

    # --- spans ----------------------------------------------------------------------------

    def event(self, kind: str, info: Any) -> None:
        here = self.parser.CurrentByteIndex
        self.flush(here)
        self.pending = (here, kind, info)

    def flush(self, end: int) -> None:
        """Write out the pending event, which ends at ``end`` (where the next one starts)."""
        pending, self.pending = self.pending, None
        if pending is None:
            if end > self.covered:
                self.gap(self.covered, end)
            return
        start, kind, info = pending
        if end <= start:
            return
        if start > self.covered:
            self.gap(self.covered, start)
        if kind == "start" or kind == "end":
            self.tag_spans(start, end, info)
        elif kind == "text":
            self.text_spans(start, end, *info)
        else:
            self.markup_span(start, end, kind, info)
        self.covered = end

    def gap(self, start: int, end: int) -> None:
        chunk = self.data[start:end]
        if chunk == _BYTE_ORDER_MARK:
            self.span(start, end, "$", "header", "UTF-8 byte order mark")
        elif not chunk.strip(b" \t\r\n"):
            self.span(start, end, "$", "whitespace", "whitespace")
        else:
            self.span(start, end, "$", "punct", "markup")
        self.covered = end

    def span(self, start: int, end: int, path: str, kind: str, label: str) -> None:
        self.spans.append(Span(start, end, path, kind, label))

    def markup_span(self, start: int, end: int, kind: str, info: Any) -> None:
        path = self.stack[-1].path if self.stack else "$"
        if kind == "declaration":
            self.span(start, end, "$", "header", "XML declaration")
        elif kind == "comment":
            self.span(start, end, path, "comment", "comment")
        elif kind == "pi":
            self.span(start, end, path, "comment", f"processing instruction {info}")
        elif kind == "cdata start":
            self.span(start, end, path, "punct", "CDATA start")
        elif kind == "cdata end":
            self.span(start, end, path, "punct", "CDATA end")
        else:
            self.gap(start, end)

    def text_spans(self, start: int, end: int, element: _Element, text: str) -> None:
        if element.container is not None:
            self.span(start, end, element.path, "whitespace", "whitespace")
            return
        kind = _TEXT_KINDS[element.kind]
        raw = self.data[start:end]
        if raw.startswith(b"&") and not self.in_cdata:
            label = f"{raw.decode('utf-8', 'replace')} = {short_text(text)}"
        else:
            # Expat splits text at line ends; one span per run reads better.
            last = self.spans[-1] if self.spans else None
            if element.text_spans and element.text_spans[-1] == len(self.spans) - 1:
                if last is not None and last.end == start:
                    self.spans[-1] = Span(last.start, end, last.path, last.kind, last.label)
                    return
            label = "text"  # relabelled with the value when the element ends
            element.text_spans.append(len(self.spans))
        self.span(start, end, element.path, kind, label)

    def tag_spans(self, start: int, end: int, path: str) -> None:
        """Split a start, end or empty-element tag into punctuation, names and values."""
        data = self.data
        pos = start
        attr = ""
        expect_name = True
        while pos < end:
            piece = _TAG_PIECE.match(data, pos, end)
            if piece is None:
                self.span(pos, end, path, "punct", "markup")
                return
            token = piece.group()
            stop = piece.end()
            if token in (b"<", b"</", b">", b"/>", b"="):
                self.span(pos, stop, path, "punct", token.decode())
            elif token[:1].isspace():
                self.span(pos, stop, path, "whitespace", "whitespace")
            elif token[:1] in (b'"', b"'"):
                self.attr_value_spans(pos, stop, path, attr)
            elif expect_name:
                name = token.decode("utf-8", "replace")
                self.span(pos, stop, path, "tag", f"<{name}>")
                expect_name = False
            else:
                attr = token.decode("utf-8", "replace")
                self.span(pos, stop, path, "attr", attr)
            pos = stop

    def attr_value_spans(self, start: int, end: int, path: str, attr: str) -> None:
        quote = chr(self.data[start])
        self.span(start, start + 1, path, "punct", quote)
        if end - start > 2:
            raw = self.data[start + 1 : end - 1].decode("utf-8", "replace")
            if attr == "type":
                self.span(start + 1, end - 1, path, "header", f"type={raw}")
            elif attr == "key":
                self.span(start + 1, end - 1, path, "key", short_text(raw))
            else:
                self.span(start + 1, end - 1, path, "string", short_text(raw))
        self.span(end - 1, end, path, "punct", quote)


def _value_label(kind: str, value: Any) -> str:
    if kind == "str":
        return short_text(value)
    if kind == "float":
        return f"float {value!r}"
    if kind == "int":
        return f"int {value}"
    return "null" if value is None else "true" if value else "false"
