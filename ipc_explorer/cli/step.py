"""``ipc-explorer step``: messages moved one stage at a time by the real sender and receiver,
with what the kernel holds after each stage (read while both are held)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ipc_explorer.cli.args import (
    EXIT_FAILED,
    EXIT_OK,
    add_channel_options,
    add_record_options,
    cancel_on_signals,
    run_to_end,
    transport_options,
)
from ipc_explorer.codecs import codec_names
from ipc_explorer.session import PATTERNS, Session, SessionConfig, UsageError
from ipc_explorer.session.recording import SessionRecorder
from ipc_explorer.session.session import said_by
from ipc_explorer.teach.step import StepError, Stepper
from ipc_explorer.telemetry.recording import DEFAULT_LIMIT_MIB
from ipc_explorer.transports import MECHANISMS

MAX_COUNT = 1000


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "step", help="move messages one stage at a time and show what the kernel holds"
    )
    p.add_argument("--mechanism", "-m", default="pipe", help=f"one of: {', '.join(MECHANISMS)}")
    p.add_argument("--format", "-f", default="msgpack", help=f"one of: {', '.join(codec_names())}")
    p.add_argument("--pattern", "-p", default="stream", help=f"one of: {', '.join(PATTERNS)}")
    p.add_argument("--count", "-n", type=int, default=1, help="messages (default 1)")
    p.add_argument("--size", "-s", type=int, default=64, help="payload data bytes (default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_record_options(p)
    add_channel_options(p)
    p.set_defaults(execute=execute)


async def run_steps(
    config: SessionConfig,
    count: int,
    progress: Callable[[str], None] | None = None,
    record: str | None = None,
    record_limit: float = DEFAULT_LIMIT_MIB,
) -> dict[str, Any]:
    """Every stage of ``count`` messages; the session is removed whatever happens.
    ``record`` names a file that gets the session and every stage as it happens."""
    session = Session(config, said_by(progress) if progress else None)
    recorder = None
    if record:
        recorder = SessionRecorder(session, record, record_limit, command="step", count=count)
        recorder.start()
    cancel_on_signals()
    messages: list[list[dict[str, Any]]] = []
    error = ""
    try:
        await session.start()
        stepper = Stepper(session)
        await stepper.enter()
        for index in range(count):
            messages.append([report.as_json() for report in await stepper.one_message()])
            if recorder is not None:
                for stage in messages[-1]:
                    recorder.add_step(stage, message=index)
        await stepper.leave()
    except StepError as exc:
        error = str(exc)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        await asyncio.shield(session.stop(drain=False))
        result = step_result(config, count, messages, error)
        if recorder is not None:
            recorder.close({**result, "messages": len(result["messages"])})
            if progress is not None:
                progress(recorder.said())
    return result


def step_result(
    config: SessionConfig, count: int, stages: list[list[dict[str, Any]]], error: str
) -> dict[str, Any]:
    """What ``step --json`` prints, from each message's stage reports (live, or recorded)."""
    messages = [m for m in map(_message, stages) if m is not None]
    return {
        "mechanism": config.mechanism,
        "format": config.format,
        "pattern": config.pattern,
        "size": config.size,
        "count": count,
        "messages": messages,
        "ok": not error and len(messages) == count,
        **({"error": error} if error else {}),
    }


def _message(reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One message's stages, or None for a message whose send stage never came."""
    send = next((r for r in reports if r["stage"] == "send"), None)
    if send is None or not isinstance(send.get("reported"), dict):
        return None
    return {
        "seq": reports[0]["seq"],
        "wire_bytes": send["reported"].get("wire_bytes"),
        "payload_bytes": next(
            (r["reported"]["payload_bytes"] for r in reports if "payload_bytes" in r["reported"]),
            None,
        ),
        "stages": reports,
    }


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    if not 1 <= args.count <= MAX_COUNT:
        raise UsageError(f"--count must be 1..{MAX_COUNT} in step mode, not {args.count}")
    config = SessionConfig(
        mechanism=args.mechanism,
        format=args.format,
        pattern=args.pattern,
        count=None,
        size=args.size,
        options=transport_options(args),
        cpus=args.pin,
        step=True,
    )
    config.validate()
    said = lambda text: err.print(f"[dim]{escape(text)}[/]")  # noqa: E731
    result = run_to_end(run_steps(config, args.count, said, args.record, args.record_limit))
    if args.json:
        print(json.dumps(result))
    else:
        print_steps(result, console)
    return EXIT_OK if result["ok"] else EXIT_FAILED


#: The kernel facts a reader follows from stage to stage (the JSON has all of them).
SHOWN_FACTS = (
    "consumer_queued_bytes",
    "queued_bytes",
    "next_datagram_bytes",
    "sender_unsent_bytes",
    "queue_depth",
    "empty",
    "full",
)


def print_steps(result: dict[str, Any], console: Console) -> None:
    console.print(
        f"[bold]step · {result['mechanism']} · {result['format']} · {result['pattern']}[/]"
    )
    for message in result["messages"]:
        console.print(
            f"\n[bold]message {message['seq']}[/]: {message['payload_bytes']} B payload, "
            f"{message['wire_bytes']} B on the wire"
        )
        table = Table(box=None, padding=(0, 1), show_header=False)
        table.add_column(style="cyan", no_wrap=True)
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        for stage in message["stages"]:
            kernel = stage["kernel"]
            facts = ", ".join(f"{k} {kernel[k]}" for k in SHOWN_FACTS if k in kernel)
            text = Text(stage["narration"])
            if facts:
                text.append(f"\nkernel: {facts}", "dim")
            table.add_row(stage["stage"], stage["side"] or "kernel", text)
        console.print(table)
    if result.get("error"):
        console.print(f"[red]error:[/] {escape(str(result['error']))}")
