"""``ipc-explorer decode``: any bytes as annotated hex beside the decoded tree.

Each tree line names its byte range and encoding (``0x0a-0x0f  fixstr(5) "hello"``); malformed
input prints the tree of everything that decoded, then the error at its exact byte offset
with the bytes around it, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from ipc_explorer.codecs import Span, codec_names
from ipc_explorer.inspector.decoder import Decoded, InputError, decode, read_input
from ipc_explorer.tui.span_style import SPAN_STYLE

BYTES_PER_LINE = 16
#: Around an error, this many bytes either side are shown.
ERROR_CONTEXT = 16
#: Hex drawn for the first bytes only; the tree and the spans cover everything.
MAX_HEX_BYTES = 64 * 1024


class DecodeUsageError(Exception):
    """A file that cannot be read, hex text that is not hex, an unknown format: exit 2."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("decode", help="show any bytes as annotated hex beside the decoded tree")
    p.add_argument("file", nargs="?", default="-", help="a file, or - for stdin (default)")
    p.add_argument(
        "--format",
        "-f",
        default="auto",
        help=f"auto (guess, and say why) or one of: {', '.join(codec_names())}",
    )
    p.add_argument(
        "--hex", action="store_true", help="the input is hex text (spaces, 0x and \\x allowed)"
    )
    p.add_argument("--json", action="store_true", help="print the spans as JSON for other tools")
    p.set_defaults(execute=execute)


def check_format(name: str) -> None:
    if name != "auto" and name not in codec_names():
        raise DecodeUsageError(f"unknown format {name!r}; one of: auto, {', '.join(codec_names())}")


def load(path: str, hex_text: bool) -> bytes:
    try:
        if path == "-":
            return read_input(sys.stdin.buffer, hex_text)
        with Path(path).open("rb") as stream:
            return read_input(stream, hex_text)
    except OSError as exc:
        raise DecodeUsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except InputError as exc:
        raise DecodeUsageError(str(exc)) from None


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    check_format(args.format)
    data = load(args.file, args.hex)
    result = decode(data, args.format)
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        print_decoded(result, console)
    return 0 if result.ok else 1


def _style_at(spans: list[Span], length: int) -> list[str]:
    styles = [""] * length
    for span in spans:
        style = SPAN_STYLE.get(span.kind, "")
        for i in range(span.start, min(span.end, length)):
            styles[i] = style
    return styles


def hex_lines(data: bytes, styles: list[str], start: int, end: int, mark: int | None) -> Text:
    """Offset, hex and ASCII columns for data[start:end], each byte in its span's colour;
    ``mark`` (an error's offset) in reverse red; bytes no span reached in dim."""
    out = Text()
    first = start - start % BYTES_PER_LINE
    for line in range(first, end, BYTES_PER_LINE):
        out.append(f"{line:08x}  ", "grey50")
        ascii_part = Text()
        for i in range(line, line + BYTES_PER_LINE):
            if i < start or i >= end:
                out.append("   ")
                ascii_part.append(" ")
                continue
            byte = data[i]
            style = "bold reverse red" if i == mark else (styles[i] or "dim")
            out.append(f"{byte:02x}", style)
            out.append(" ")
            ascii_part.append(chr(byte) if 32 <= byte < 127 else ".", style)
        out.append(" ")
        out.append_text(ascii_part)
        out.append("\n")
    return out


def tree_lines(spans: list[Span]) -> Text:
    """One line per leaf span, indented by its depth in the value: range, encoding, path."""
    out = Text()
    for span in spans:
        if span.kind == "whitespace":
            continue
        depth = span.path.count(".") + span.path.count("[")
        rng = f"0x{span.start:04x}-0x{max(span.end - 1, span.start):04x}"
        out.append(f"{rng}  ", "grey50")
        out.append("  " * depth)
        out.append(span.label, SPAN_STYLE.get(span.kind, ""))
        out.append(f"  {span.path}\n", "grey62")
    return out


def print_decoded(result: Decoded, console: Console) -> None:
    data = result.data
    head = f"{len(data):,} bytes as {result.format}"
    if result.reason:
        head += f" (auto: {result.reason})"
    console.print(Text(head, "bold"))
    styles = _style_at(result.spans, len(data))
    shown = min(len(data), MAX_HEX_BYTES)
    console.print(hex_lines(data, styles, 0, shown, None), end="")
    if shown < len(data):
        console.print(Text(f"... {len(data) - shown:,} more bytes not drawn", "dim"))
    console.print()
    console.print(Text("decoded" + (" (partial)" if result.error else ""), "bold"))
    console.print(tree_lines(result.spans), end="")
    if result.error is not None:
        offset = result.error.offset
        console.print()
        console.print(
            Text(f"error at byte {offset} (0x{offset:x}): {result.error.message}", "bold red")
        )
        lo = max(0, offset - ERROR_CONTEXT)
        hi = min(len(data), offset + ERROR_CONTEXT + 1)
        if lo < hi:
            console.print(hex_lines(data, styles, lo, hi, offset), end="")
        else:
            console.print(Text(f"(the input ends at byte {len(data)})", "dim"))
