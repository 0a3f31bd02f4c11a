"""``ipc-explorer run``: one session headless, its summary as a table or one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ipc_explorer.cli.args import (
    EXIT_FAILED,
    EXIT_OK,
    add_channel_options,
    add_record_options,
    fmt_us,
    run_to_end,
    transport_options,
)
from ipc_explorer.session import PATTERNS, Session, SessionConfig
from ipc_explorer.session.recording import SessionRecorder
from ipc_explorer.session.session import said_by
from ipc_explorer.teach.why import session_diagnoses
from ipc_explorer.telemetry.recording import DEFAULT_LIMIT_MIB
from ipc_explorer.transports import MECHANISMS


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="run one session headless and print its summary")
    run.add_argument("--mechanism", "-m", default="pipe", help=f"one of: {', '.join(MECHANISMS)}")
    run.add_argument("--format", "-f", default="msgpack", help="one of: json, xml, msgpack, struct")
    run.add_argument("--pattern", "-p", default="stream", help=f"one of: {', '.join(PATTERNS)}")
    run.add_argument(
        "--count", "-n", type=int, default=1000, help="messages to send (default 1000)"
    )
    run.add_argument(
        "--size", "-s", type=int, default=64, help="bytes of payload data per message (default 64)"
    )
    run.add_argument(
        "--rate", "-r", type=float, help="messages per second (default: as fast as possible)"
    )
    run.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    run.add_argument(
        "--corrupt-every",
        type=int,
        metavar="N",
        help="fault injection: flip a byte in every Nth message after its checksum is taken",
    )
    run.add_argument(
        "--kill-receiver-at",
        type=int,
        metavar="N",
        help="fault: SIGKILL the receiver after N messages and start a new one (amqp, mq): "
        "a broker redelivers what was not acked",
    )
    run.add_argument(
        "--remote",
        metavar="ADDR:PORT",
        help="run the receiver on another host, served there by `ipc-explorer remote` "
        "(tcp, udp, http, amqp); the shared token from IPC_EXPLORER_TOKEN or --token-file",
    )
    run.add_argument("--token-file", help="with --remote: a file with the shared token")
    add_record_options(run)
    add_channel_options(run)
    run.set_defaults(execute=execute)


async def run_session(
    config: SessionConfig,
    progress: Callable[[str], None] | None = None,
    record: str | None = None,
    record_limit: float = DEFAULT_LIMIT_MIB,
) -> dict[str, Any]:
    """Run one session to the end; SIGINT/SIGTERM stop it cleanly (children, kernel objects).
    ``progress`` hears the slow set-up steps (a broker starting); ``record`` names a file
    that gets everything as it happens, closed with the summary."""
    session = Session(config, said_by(progress) if progress else None)
    recorder = None
    if record:
        why = lambda: [d.as_json() for d in session_diagnoses(session)]  # noqa: E731
        recorder = SessionRecorder(session, record, record_limit, why=why)
    summary: dict[str, Any] | None = None
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted = []

    def on_signal(signum: int) -> None:
        interrupted.append(signum)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if recorder is not None:
            recorder.start()
        await session.start()
        summary = await session.run_to_completion()
        return summary
    except asyncio.CancelledError:
        if not interrupted:
            raise
        await session.stop()
        raise KeyboardInterrupt from None
    finally:
        await session.stop()
        if recorder is not None:
            recorder.close(summary)
            if progress is not None:
                progress(recorder.said())
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def print_summary(summary: dict[str, Any], console: Console) -> None:
    lat = summary["latency_us"]
    table = Table(
        title=f"{summary['mechanism']} · {summary['format']} · {summary['pattern']}",
        show_header=False,
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column()
    channel = summary.get("channel") or {}
    table.add_row("channel", str(channel.get("kernel_object", "")))
    table.add_row("messages", f"{summary['sent']:,} sent, {summary['received']:,} received")
    integrity = ", ".join(
        f"{k} {summary[k]:,}" for k in ("lost", "duplicated", "reordered", "corrupt")
    )
    if not summary["reliable"]:
        integrity += " (datagrams may drop: counted, never retried"
        if summary.get("kernel_drops") is not None:
            integrity += f"; the kernel counted {summary['kernel_drops']:,} drops"
        integrity += ")"
    table.add_row("integrity", integrity)
    table.add_row(
        "bytes", f"{summary['payload_bytes']:,} payload, {summary['wire_bytes']:,} on the wire"
    )
    if "wire_split" in summary:  # what the wire bytes are (a byte stream, the HTTP family)
        split = summary["wire_split"]
        table.add_row(
            "wire split",
            f"{split['headers']:,} headers, {split['body']:,} body, {split['tls']:,} TLS",
        )
    if "connections" in summary:  # the HTTP family: connections and handshakes
        connections = f"{summary['connections']:,} TCP"
        if "handshakes" in summary:
            connections += (
                f", {summary['handshakes']:,} {summary['tls_version']} handshakes "
                f"({summary['resumptions']:,} resumed)"
            )
        table.add_row("connections", connections)
    table.add_row(
        "throughput",
        f"{summary['msgs_per_s']:,.0f} msgs/s, {summary['mb_per_s']:,.2f} MB/s "
        f"over {summary['elapsed_s']:.3f} s",
    )
    table.add_row(
        f"latency ({summary['latency_kind']}, µs)",
        "  ".join(f"{q} {fmt_us(lat[q])}" for q in ("p50", "p90", "p99", "max")),
    )
    stages = summary["stages_us"]
    table.add_row("stages (median µs)", "  ".join(f"{k} {fmt_us(v)}" for k, v in stages.items()))
    table.add_row("setup", f"{summary['setup_ms']:.1f} ms to open the channel")
    table.add_row("placement", summary["placement"])
    console.print(table)
    for problem in summary["problems"]:
        console.print(f"[red]problem:[/] {escape(problem)}")
    if not summary["ok"]:
        console.print("[red bold]integrity check failed[/]")


def config_from(args: argparse.Namespace) -> SessionConfig:
    return SessionConfig(
        mechanism=args.mechanism,
        format=args.format,
        pattern=args.pattern,
        count=args.count,
        size=args.size,
        rate=args.rate,
        options=transport_options(args),
        cpus=args.pin,
        corrupt_every=args.corrupt_every,
        kill_receiver_at=args.kill_receiver_at,
        remote=args.remote,
        remote_token_file=args.token_file,
    )


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    config = config_from(args)
    config.validate()
    said = lambda text: err.print(f"[dim]{escape(text)}[/]")  # noqa: E731
    summary = run_to_end(run_session(config, said, args.record, args.record_limit))
    if args.json:
        print(json.dumps(summary))
    else:
        print_summary(summary, console)
    return EXIT_OK if summary["ok"] else EXIT_FAILED
