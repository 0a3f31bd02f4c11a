"""``ipc-explorer lesson``: a prepared scenario for class. ``--list`` names them; ``NAME``
opens the app on it with its text; ``NAME --json`` runs it headless and checks its claims on
the real run (exit 0 only when every claim holds)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ipc_explorer.cli.args import EXIT_FAILED, EXIT_OK, cancel_on_signals, run_to_end
from ipc_explorer.session import UsageError
from ipc_explorer.teach.lessons import LESSONS, Lesson, UnknownLesson, get_lesson


def add_parser(sub: Any) -> None:
    p = sub.add_parser("lesson", help="open a prepared lesson, or check its claims headless")
    p.add_argument("name", nargs="?", help=f"one of: {', '.join(LESSONS)}")
    p.add_argument("--list", action="store_true", help="list the lessons")
    p.add_argument(
        "--json", action="store_true", help="run it headless, check its claims, print JSON"
    )
    p.add_argument("--check", action="store_true", help="the same, as a table")
    p.add_argument("--theme", default="default", help="default, or projector (high contrast)")
    p.set_defaults(execute=execute)


async def run_checks(lesson: Lesson) -> dict[str, Any]:
    cancel_on_signals()
    result: dict[str, Any] = {"lesson": lesson.name, "title": lesson.text.title, "checks": []}
    try:
        result["checks"] = [check.as_json() for check in await lesson.check()]
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    except Exception as exc:  # the run itself failed (a broken /dev/shm...): said, not raised
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    if args.list or not args.name:
        if not args.list:
            raise UsageError("name a lesson (ipc-explorer lesson --list shows them)")
        for name, cls in LESSONS.items():
            console.print(f"[bold]{name:<14}[/] {cls().text.title}")
        return EXIT_OK
    try:
        lesson = get_lesson(args.name)
    except UnknownLesson as exc:
        raise UsageError(str(exc)) from None
    if args.json or args.check:
        result = run_to_end(run_checks(lesson))
        if args.json:
            print(json.dumps(result))
        else:
            print_checks(result, console)
        holds = result["checks"] and all(c["holds"] for c in result["checks"])
        return EXIT_OK if holds else EXIT_FAILED
    from ipc_explorer.tui.app import run_app  # Textual loads only when the app runs

    run_app(lesson.session_config(), theme=args.theme, lesson=lesson)
    return EXIT_OK


def print_checks(result: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]{result['title']}[/] ({result['lesson']})")
    table = Table(box=None, padding=(0, 1), show_header=False)
    table.add_column(no_wrap=True)
    table.add_column()
    for check in result["checks"]:
        mark = "[green]holds[/]" if check["holds"] else "[red]does not hold[/]"
        observed = ", ".join(f"{k} {v}" for k, v in check["observed"].items())
        table.add_row(mark, f"{check['claim']}\n[dim]{observed}[/]")
    console.print(table)
    if result.get("error"):
        console.print(f"[red]error:[/] {result['error']}")
