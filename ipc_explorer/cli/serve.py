"""``ipc-explorer serve``: the app in web browsers, for a classroom. Each tab runs an app of
its own (its own children and kernel objects), up to ``--max-sessions``; ``--replay FILE``
shows one recording to many viewers, no processes started."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from ipc_explorer.cli import app
from ipc_explorer.cli.args import EXIT_OK, EXIT_USAGE
from ipc_explorer.session import UsageError

DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 8
#: The app's options each tab's app is given, when not left at their defaults.
PASSED_ON = {"mechanism": "--mechanism", "format": "--format", "remote": "--remote"}
PASSED_ON |= {"token_file": "--token-file", "theme": "--theme"}


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (0: any free), got {port}")
    return port


def session_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of sessions, got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"at least one session, got {count}")
    return count


def add_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve the app to web browsers: each tab its own session (a classroom)",
        description="Serve the app to web browsers. Each tab runs an app of its own, with its "
        "own children and kernel objects; closing the tab ends them.",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to listen on (default 127.0.0.1: this machine only; another lets "
        "anyone who reaches it drive processes on this machine)",
    )
    serve.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}"
    )
    serve.add_argument(
        "--max-sessions",
        type=session_count,
        default=DEFAULT_MAX_SESSIONS,
        metavar="N",
        help=f"tabs with an app at once; another tab is told so (default {DEFAULT_MAX_SESSIONS})",
    )
    serve.add_argument(
        "--replay",
        metavar="FILE",
        help="serve this recording (`ipc-explorer replay FILE` in each tab), read-only",
    )
    app.add_options(serve.add_argument_group("the app in each tab"))
    serve.set_defaults(execute=execute)


def tab_args(args: argparse.Namespace) -> list[str]:
    """What each tab runs after ``python -m ipc_explorer``; UsageError for what cannot be."""
    if args.record:
        raise UsageError(
            "serve: --record would have every tab write the same file (R in a tab records "
            "that tab's session)"
        )
    probe = argparse.ArgumentParser(add_help=False)
    app.add_options(probe)
    defaults = vars(probe.parse_args([]))  # the app's own, wherever they are set
    given = {
        dest: getattr(args, dest)
        for dest in PASSED_ON
        if getattr(args, dest) not in (None, defaults[dest])
    }
    from ipc_explorer.tui.themes import textual_theme  # the theme checked as the app does

    textual_theme(args.theme)
    if args.replay is None:
        app.session_config(args)  # the app's own checks, before any tab starts one
        return [arg for dest, value in given.items() for arg in (PASSED_ON[dest], value)]
    if set(given) - {"theme"}:
        names = [PASSED_ON[dest] for dest in given if dest != "theme"]
        verb = "does" if len(names) == 1 else "do"
        raise UsageError(f"serve --replay plays a recording: {', '.join(names)} {verb} not apply")
    path = Path(args.replay)
    try:
        with path.open("rb"):
            pass
    except IsADirectoryError:
        raise UsageError(f"serve --replay: {args.replay} is a directory, not a recording") from None
    except OSError as exc:
        raise UsageError(f"serve --replay: cannot read {args.replay}: {exc.strerror}") from None
    theme = ["--theme", args.theme] if "theme" in given else []
    return ["replay", str(path.resolve()), *theme]


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    command = tab_args(args)
    from ipc_explorer.web.server import ServeError, TabServer  # aiohttp loads only to serve

    what = f"the recording {args.replay}" if args.replay else f"{args.mechanism} · {args.format}"
    server = TabServer(
        command,
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        title=f"ipc-explorer: {what}",
        say=lambda line: _say(console, line),
        warn=lambda line: _say(err, f"[yellow]warning:[/] {escape(line)}", markup=True),
    )
    try:
        server.run()
    except ServeError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    return EXIT_OK


def _say(console: Console, line: str, markup: bool = False) -> None:
    with contextlib.suppress(OSError):  # a terminal closed under the server (SIGHUP)
        console.print(line, markup=markup, highlight=False, soft_wrap=True)
