"""``ipc-explorer`` with no command: the app, on the chosen (or default) mechanism and format."""

from __future__ import annotations

import argparse

from rich.console import Console

from ipc_explorer.cli.args import EXIT_OK, add_record_options
from ipc_explorer.session import SessionConfig


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mechanism", "-m", default="pipe", help="mechanism for the default session"
    )
    parser.add_argument("--format", "-f", default="msgpack", help="format for the default session")
    parser.add_argument(
        "--remote",
        metavar="ADDR:PORT",
        help="the receiver on another host, served there by `ipc-explorer remote`",
    )
    parser.add_argument("--token-file", help="with --remote: a file with the shared token")
    parser.add_argument(
        "--theme",
        default="default",
        help="default, or projector: high contrast for a classroom (T switches in the app)",
    )
    add_record_options(parser)


def session_config(args: argparse.Namespace) -> SessionConfig:
    """The app's session from its options, checked (``serve`` checks its tabs' with it)."""
    config = SessionConfig(
        mechanism=args.mechanism,
        format=args.format,
        count=None,
        rate=100,
        remote=args.remote,
        remote_token_file=args.token_file,
    )
    config.validate()
    return config


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    config = session_config(args)
    from ipc_explorer.tui.app import run_app  # Textual loads only when the app runs

    run_app(config, theme=args.theme, record=args.record, record_limit=args.record_limit)
    return EXIT_OK
