"""``ipc-explorer remote``: the agent on another host, which opens the receiving end and runs
the receiver there for a driving ``run --remote`` (session/agent.py)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ipc_explorer.cli.args import EXIT_OK, cancel_on_signals, run_to_end
from ipc_explorer.session import UsageError
from ipc_explorer.session.agent import Agent
from ipc_explorer.session.remote import RemoteError, load_token, split_address

DEFAULT_PORT = 7878


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "remote", help="run on another host: serve the receiving end of a `run --remote`"
    )
    p.add_argument(
        "--listen",
        default=f"127.0.0.1:{DEFAULT_PORT}",
        metavar="ADDR:PORT",
        help=f"where to listen (default 127.0.0.1:{DEFAULT_PORT}: this machine only)",
    )
    p.add_argument(
        "--token-file", help="a file with the shared token (default: IPC_EXPLORER_TOKEN)"
    )
    p.add_argument(
        "--max-sessions", type=int, default=4, help="sessions served at once (default 4)"
    )
    p.set_defaults(execute=execute)


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    try:
        token = load_token(args.token_file)
        host, port = split_address(args.listen)
    except RemoteError as exc:
        raise UsageError(str(exc)) from None
    if not 1 <= args.max_sessions <= 64:
        raise UsageError("--max-sessions must be 1..64")
    agent = Agent(token, args.max_sessions, lambda text: err.print(f"[dim]{text}[/]"))

    async def serve() -> None:
        cancel_on_signals()
        try:
            await agent.serve(host, port)
        except OSError as exc:
            raise RemoteError(f"cannot listen on {host}:{port}: {exc.strerror}") from None

    try:
        run_to_end(serve())
    except KeyboardInterrupt:
        err.print("agent stopped: every session's receiver stopped, its objects removed")
    return EXIT_OK
