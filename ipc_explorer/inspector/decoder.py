"""Any bytes, decoded and annotated: what ``ipc-explorer decode`` and the inspector show.

It reads bytes (a file, stdin, or hex text), guesses the format when asked and says why,
and runs the codec's ``annotate``: every byte in one leaf span, or, for malformed input, the
spans read before the error and the error's exact byte offset.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ipc_explorer.codecs import DecodeError, Span, codec_names, get_codec
from ipc_explorer.codecs.struct_codec import MAGIC as STRUCT_MAGIC

#: Refuse inputs larger than this: the decoder keeps the bytes and one span per value in memory.
MAX_INPUT = 64 * 1024 * 1024

_HEX_NOISE = re.compile(r"0[xX]|[\s,:]|\\x")


class InputError(ValueError):
    """Bytes that cannot be read as asked (bad hex text, too large, no such file)."""


def read_input(stream: BinaryIO, hex_text: bool = False) -> bytes:
    """All of ``stream`` (bounded); with ``hex_text``, hex digits with spaces, ``0x`` or ``\\x``
    allowed between bytes."""
    data = stream.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise InputError(f"input larger than {MAX_INPUT // (1024 * 1024)} MiB")
    if not hex_text:
        return data
    text = data.decode("ascii", errors="replace")
    digits = _HEX_NOISE.sub("", text)
    bad = next((i for i, c in enumerate(digits) if c not in string.hexdigits), None)
    if bad is not None:
        raise InputError(f"not hex: {digits[bad]!r} (hex digit {bad} of the input)")
    if len(digits) % 2:
        raise InputError(f"odd number of hex digits ({len(digits)}): a byte is cut in half")
    return bytes.fromhex(digits)


def guess_format(data: bytes) -> tuple[str, str]:
    """(format, why): the first format whose decoder takes every byte, tried in the order the
    first byte suggests."""
    stripped = data.lstrip(b" \t\r\n")
    first = stripped[:1]
    if first == b"<":
        order, why = ["xml", "json", "msgpack", "struct"], "starts with '<'"
    elif first in (b"{", b"[", b'"') or first.isdigit() or first == b"-":
        order, why = ["json", "msgpack", "xml", "struct"], f"starts with {first.decode()!r}"
    elif data[:2] == STRUCT_MAGIC:
        order, why = ["struct", "msgpack", "json", "xml"], "starts with the struct magic 'IX'"
    else:
        order, why = ["msgpack", "struct", "json", "xml"], "binary first byte"
    for name in order:
        try:
            get_codec(name).annotate(data)
        except DecodeError:
            continue
        except Exception:  # a codec's bug must not stop the guess
            continue
        return name, f"{why}, and every byte decodes as {name}"
    return order[0], f"{why}; no format decodes every byte, showing it as {order[0]}"


@dataclass
class Decoded:
    data: bytes
    format: str
    reason: str = ""
    spans: list[Span] = field(default_factory=list)
    value: Any = None
    error: DecodeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format,
            "size": len(self.data),
            "spans": [
                {"start": s.start, "end": s.end, "path": s.path, "kind": s.kind, "label": s.label}
                for s in self.spans
            ],
            "error": None,
        }
        if self.reason:
            out["guessed_because"] = self.reason
        if self.error is not None:
            out["error"] = {"offset": self.error.offset, "message": self.error.message}
        return out


def decode(data: bytes, fmt: str) -> Decoded:
    """Annotate ``data`` as ``fmt`` (or ``auto``); never raises on malformed bytes."""
    reason = ""
    if fmt == "auto":
        fmt, reason = guess_format(data)
    elif fmt not in codec_names():
        raise ValueError(f"unknown format {fmt!r}; one of: auto, {', '.join(codec_names())}")
    codec = get_codec(fmt)
    result = Decoded(data, fmt, reason)
    try:
        result.spans = codec.annotate(data)
        result.value = codec.decode(data)
    except DecodeError as exc:
        result.error = exc
        result.spans = list(exc.partial.spans)
        result.value = exc.partial.value
    except RecursionError:
        result.error = DecodeError(0, "nested too deeply to decode")
    return result
