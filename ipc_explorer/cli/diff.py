"""``ipc-explorer diff A B``: two messages compared by structure, each change with its bytes.

Exit 0 when the two decode to the same value, 1 when they differ, 2 when either cannot be read
or decoded, as diff(1) does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ipc_explorer.cli.decode import DecodeUsageError, check_format, load
from ipc_explorer.codecs import codec_names
from ipc_explorer.inspector.decoder import Decoded, decode
from ipc_explorer.inspector.diff import diff_messages


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "diff", help="compare two messages by structure, with the bytes of each change"
    )
    p.add_argument("old", help="the first message (a file, or - for stdin)")
    p.add_argument("new", help="the second message (a file)")
    p.add_argument(
        "--format",
        "-f",
        default="auto",
        help=f"auto or one of: {', '.join(codec_names())} (both messages)",
    )
    p.add_argument("--hex", action="store_true", help="the files hold hex text")
    p.add_argument("--json", action="store_true", help="print the changes as JSON")
    p.set_defaults(execute=execute)


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    """Exit 0 when the two decode to the same value, 1 when they differ, 2 when either cannot
    be read or decoded (the error's byte offset is said), as diff(1) does."""
    check_format(args.format)
    if args.old == "-" and args.new == "-":
        raise DecodeUsageError("only one of the two messages can come from stdin")
    old = decode(load(args.old, args.hex), args.format)
    new = decode(load(args.new, args.hex), args.format if args.format != "auto" else old.format)
    for name, side in ((args.old, old), (args.new, new)):
        if side.error is not None:
            raise DecodeUsageError(
                f"{name} is not valid {side.format}: error at byte {side.error.offset}: "
                f"{side.error.message}"
            )
    changes = diff_messages(old.value, old.spans, new.value, new.spans)
    if args.json:
        print(json.dumps({"format": old.format, "changes": [c.as_json() for c in changes]}))
    else:
        print_diff(changes, old, new, args, console)
    return 1 if changes else 0


def _short(value: Any) -> str:
    text = json.dumps(value, default=lambda v: v.hex() if isinstance(v, bytes) else str(v))
    return text if len(text) <= 40 else text[:37] + "..."


def _hex_of(data: bytes, rng: tuple[int, int] | None) -> str:
    if rng is None:
        return ""
    start, end = rng
    chunk = data[start:end]
    shown = chunk[:12].hex(" ") + (" ..." if len(chunk) > 12 else "")
    return f"0x{start:04x}-0x{end - 1:04x}: {shown}"


def print_diff(changes: list, old: Decoded, new: Decoded, args: Any, console: Console) -> None:
    console.print(
        Text(
            f"{args.old} ({len(old.data):,} B) -> {args.new} ({len(new.data):,} B) as "
            f"{old.format}: {len(changes)} change(s)",
            "bold",
        )
    )
    if not changes:
        return
    table = Table(box=None, padding=(0, 2), show_edge=False)
    for column in ("change", "path", "old", "new"):
        table.add_column(column)
    style = {"added": "green", "removed": "red", "changed": "yellow", "type changed": "magenta"}
    for c in changes:
        table.add_row(
            Text(c.kind, style[c.kind]),
            c.path,
            Text("\n").join(
                [
                    Text(_short(c.old) if c.kind != "added" else "-"),
                    Text(_hex_of(old.data, c.old_bytes), "grey50"),
                ]
            ),
            Text("\n").join(
                [
                    Text(_short(c.new) if c.kind != "removed" else "-"),
                    Text(_hex_of(new.data, c.new_bytes), "grey50"),
                ]
            ),
        )
    console.print(table)
