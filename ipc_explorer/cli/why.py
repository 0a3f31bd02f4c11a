"""``ipc-explorer why PID``: is a child of a running session blocked, and on what, from the
kernel's own account; one sentence, then each fact with its source."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ipc_explorer.cli.args import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ipc_explorer.kernel.procfs import ProcessGone
from ipc_explorer.teach.why import CannotSee, NotAChild, diagnose


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "why", help="say why a child of a running session is blocked, from the kernel itself"
    )
    p.add_argument("pid", type=int, help="a sender, receiver or lab worker of a running session")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(execute=execute)


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    try:
        diagnosis = diagnose(args.pid)
    except (NotAChild, ProcessGone) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except CannotSee as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_FAILED
    if args.json:
        print(json.dumps(diagnosis.as_json()))
        return EXIT_OK
    console.print(f"[bold]{diagnosis.sentence}[/]")
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("fact")
    table.add_column("value")
    table.add_column("source", style="dim")
    sources = diagnosis.facts.sources()
    for name, value in diagnosis.facts.values().items():
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        table.add_row(name, Text(str(shown)), Text(sources[name]))  # "[heap]" is not markup
    console.print(table)
    return EXIT_OK
