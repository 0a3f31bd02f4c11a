"""Command line: ``ipc-explorer`` (the app) and its commands, one module each.

This module only wires the parser and turns the errors a user can cause into one line on
stderr and an exit status (2 bad usage, 1 a run that failed its checks); never a traceback.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.markup import escape

from ipc_explorer import __version__
from ipc_explorer.cli import (
    app,
    bench,
    contend,
    decode,
    diff,
    lesson,
    remote,
    replay,
    run,
    serve,
    step,
    why,
)
from ipc_explorer.cli.args import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageArgumentParser
from ipc_explorer.codecs import CodecError
from ipc_explorer.lab.config import LabUsageError
from ipc_explorer.session import SessionError, UsageError
from ipc_explorer.telemetry.recording import RecordingError
from ipc_explorer.transports import MessageTooLarge, TransportError

#: Each command module adds its sub-parser, which names the function that executes it.
COMMANDS = (run, bench, contend, decode, diff, step, why, lesson, remote, replay, serve)
#: Errors that mean "you asked for something that cannot be": exit status 2.
USAGE_ERRORS = (
    UsageError,
    LabUsageError,
    decode.DecodeUsageError,
    MessageTooLarge,
    CodecError,
    RecordingError,
)
#: Errors of a run that could not be done: exit status 1.
RUN_ERRORS = (TransportError, SessionError)


def build_parser() -> UsageArgumentParser:
    parser = UsageArgumentParser(
        prog="ipc-explorer",
        description=(
            "Make inter-process communication visible: a real sender and a real receiver "
            "process on the mechanism you pick, every message timed and verified."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ipc-explorer {__version__}")
    app.add_options(parser)
    parser.set_defaults(execute=app.execute)
    sub = parser.add_subparsers(dest="command", parser_class=UsageArgumentParser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long
    try:
        return args.execute(args, console, err)
    except USAGE_ERRORS as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except RUN_ERRORS as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("interrupted: children stopped, kernel objects removed")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`| head`): nothing more to say, and no traceback
        # when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
