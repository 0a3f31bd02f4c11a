"""``ipc-explorer remote``: the agent on another host, which opens the receiving end and runs
the receiver there for a driving ``run --remote`` (session/agent.py)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from rich.console import Console
from rich.markup import escape

from ipc_explorer.cli.args import EXIT_OK, run_to_end
from ipc_explorer.session import UsageError
from ipc_explorer.session.agent import Agent
from ipc_explorer.session.remote import RemoteError, load_token, split_address

DEFAULT_PORT = 7878
#: The signals that stop the agent (a terminal closing sends SIGHUP): each is a clean stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "remote", help="run on another host: serve the receiving end of a `run --remote`"
    )
    p.add_argument(
        "--listen",
        default=f"127.0.0.1:{DEFAULT_PORT}",
        metavar="ADDR:PORT",
        help=f"where to listen, an IPv4 address (default 127.0.0.1:{DEFAULT_PORT}: this "
        "machine only)",
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
    # What the agent says may quote what a driving side sent: never read as markup.
    agent = Agent(token, args.max_sessions, lambda text: err.print(f"[dim]{escape(text)}[/]"))

    async def serve() -> None:
        """Serve until a stop signal; the agent's own ``finally`` stops every session's
        receiver and removes its objects, then the stop is said and the status is 0."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        stopped_by: list[int] = []

        def on_signal(signum: int) -> None:
            stopped_by.append(signum)
            task.cancel()

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await agent.serve(host, port)
        except asyncio.CancelledError:
            if not stopped_by:
                raise
        except OSError as exc:
            raise RemoteError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    run_to_end(serve())
    err.print("agent stopped: every session's receiver stopped, its objects removed")
    return EXIT_OK
