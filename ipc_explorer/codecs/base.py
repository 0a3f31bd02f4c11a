"""The one small interface every serialization format implements.

A codec turns a JSON-like value (None, bool, int, float, str, list, dict with str keys) into
bytes and back, and can *annotate* bytes: say, for every byte, which value it encodes. The
bytes panel, the decoder and the inspector are built on ``annotate``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: Kinds of leaf span. Front ends colour by kind, so keep the set small and stable.
SPAN_KINDS = (
    "header",  # a type tag / marker byte (msgpack 0xa5, struct layout header)
    "length",  # a length field
    "key",  # a map key (the key's text or encoded bytes)
    "string",
    "int",
    "float",
    "bool",
    "null",
    "bytes",
    "punct",  # JSON/XML syntax: { } [ ] : , < > / = quotes
    "whitespace",
    "tag",  # XML element name
    "attr",  # XML attribute name
    "comment",
    "framing",  # added by a transport: length prefix, envelope, HTTP head
)


@dataclass(frozen=True, slots=True)
class Span:
    """One byte range [start, end) and what it encodes."""

    start: int
    end: int
    path: str  # JSONPath-like: "$", "$.items[2].name"
    kind: str  # one of SPAN_KINDS
    label: str  # human label, e.g. "fixstr len=5", "uint16 300"

    def __len__(self) -> int:
        return self.end - self.start


class CodecError(Exception):
    """Base of the errors a user can cause with bytes or values."""


class EncodeError(CodecError):
    """The value cannot be written in this format (e.g. it does not fit the struct layout)."""


@dataclass
class PartialDecode:
    """What was decoded before an error: the value built so far and the spans read so far."""

    value: Any = None
    spans: list[Span] = field(default_factory=list)


class DecodeError(CodecError):
    """Malformed bytes. ``offset`` is the byte offset where decoding could not go on."""

    def __init__(self, offset: int, message: str, partial: PartialDecode | None = None):
        super().__init__(f"at byte {offset}: {message}")
        self.offset = offset
        self.message = message
        self.partial = partial if partial is not None else PartialDecode()


class Codec(ABC):
    """A serialization format. Subclasses are registered by ``name``."""

    name: ClassVar[str]
    title: ClassVar[str]
    content_type: ClassVar[str]

    @abstractmethod
    def encode(self, value: Any) -> bytes:
        """Value -> bytes. Raises EncodeError when the value cannot be written."""

    @abstractmethod
    def decode(self, data: bytes) -> Any:
        """Bytes -> value. Raises DecodeError(offset, message, partial) on malformed bytes."""

    @abstractmethod
    def annotate(self, data: bytes) -> list[Span]:
        """Leaf spans, in order, covering every byte of ``data`` exactly once.

        Raises DecodeError on malformed bytes; its ``partial.spans`` holds the spans read so far.
        """
