"""Command line: ``ipc-explorer`` (the app), ``run``, ``bench``.

Errors a user can cause are printed as one line and exit with 2 (bad usage) or 1 (a run that
failed its integrity checks); never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from ipc_explorer import __version__
from ipc_explorer.codecs import CodecError, codec_names
from ipc_explorer.session import PATTERNS, Session, SessionConfig, SessionError, UsageError
from ipc_explorer.transports import MECHANISMS, MessageTooLarge, TransportError, TransportOptions

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 already
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def _pin(text: str) -> dict[str, int]:
    values = _positive_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError("--pin takes two CPU numbers: SENDER,RECEIVER")
    return {"sender": values[0], "receiver": values[1]}


def _add_channel_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("channel options")
    g.add_argument("--nagle", action="store_true", help="tcp/http: turn Nagle's algorithm back on")
    g.add_argument(
        "--port", type=int, default=0, help="tcp/udp/http: port on 127.0.0.1 (default: any free)"
    )
    g.add_argument("--pipe-size", type=int, help="pipe/fifo: buffer size with F_SETPIPE_SZ")
    g.add_argument("--slots", type=int, default=8, help="shm: slots in the ring (default 8)")
    g.add_argument(
        "--slot-size", type=int, default=65536, help="shm: bytes per slot (default 65536)"
    )
    g.add_argument("--pin", type=_pin, metavar="S,R", help="pin sender and receiver to these CPUs")


def build_parser() -> argparse.ArgumentParser:
    parser = UsageArgumentParser(
        prog="ipc-explorer",
        description=(
            "Make inter-process communication visible: a real sender and a real receiver "
            "process on the mechanism you pick, every message timed and verified."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ipc-explorer {__version__}")
    parser.add_argument(
        "--mechanism", "-m", default="pipe", help="mechanism for the default session"
    )
    parser.add_argument("--format", "-f", default="msgpack", help="format for the default session")
    sub = parser.add_subparsers(dest="command", parser_class=UsageArgumentParser)

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
    _add_channel_options(run)

    bench = sub.add_parser("bench", help="run every mechanism with the same workload and compare")
    bench.add_argument(
        "--sizes",
        type=_positive_list,
        default=[64, 4096],
        help="comma-separated sizes (default 64,4096)",
    )
    bench.add_argument(
        "--formats", default="msgpack", help="comma-separated formats, or 'all' (default msgpack)"
    )
    bench.add_argument(
        "--mechanisms", default="all", help="comma-separated mechanisms (default all)"
    )
    bench.add_argument(
        "--count", type=int, default=2000, help="messages per stream run (default 2000)"
    )
    bench.add_argument(
        "--round-trips", type=int, default=500, help="messages per ping-pong run (default 500)"
    )
    bench.add_argument(
        "--floor",
        action="store_true",
        help="also run the bare Python loop per mechanism and print the ratio",
    )
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_channel_options(bench)

    from ipc_explorer.cli import contend as contend_cli
    from ipc_explorer.cli import decode as decode_cli

    contend_cli.add_parser(sub)
    decode_cli.add_parser(sub)
    decode_cli.add_diff_parser(sub)
    return parser


def _options(args: argparse.Namespace) -> TransportOptions:
    return TransportOptions(
        port=args.port,
        nagle=args.nagle,
        pipe_size=args.pipe_size,
        slots=args.slots,
        slot_size=args.slot_size,
    )


async def run_session(config: SessionConfig) -> dict[str, Any]:
    """Run one session to the end; SIGINT/SIGTERM stop it cleanly (children, kernel objects)."""
    session = Session(config)
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
        await session.start()
        return await session.run_to_completion()
    except asyncio.CancelledError:
        if not interrupted:
            raise
        await session.stop()
        raise KeyboardInterrupt from None
    finally:
        await session.stop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _fmt_us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


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
    table.add_row(
        "throughput",
        f"{summary['msgs_per_s']:,.0f} msgs/s, {summary['mb_per_s']:,.2f} MB/s "
        f"over {summary['elapsed_s']:.3f} s",
    )
    table.add_row(
        f"latency ({summary['latency_kind']}, µs)",
        "  ".join(f"{q} {_fmt_us(lat[q])}" for q in ("p50", "p90", "p99", "max")),
    )
    stages = summary["stages_us"]
    table.add_row("stages (median µs)", "  ".join(f"{k} {_fmt_us(v)}" for k, v in stages.items()))
    table.add_row("setup", f"{summary['setup_ms']:.1f} ms to open the channel")
    table.add_row("placement", summary["placement"])
    console.print(table)
    for problem in summary["problems"]:
        console.print(f"[red]problem:[/] {problem}")
    if not summary["ok"]:
        console.print("[red bold]integrity check failed[/]")


def _config_from(args: argparse.Namespace) -> SessionConfig:
    return SessionConfig(
        mechanism=args.mechanism,
        format=args.format,
        pattern=args.pattern,
        count=args.count,
        size=args.size,
        rate=args.rate,
        options=_options(args),
        cpus=args.pin,
        corrupt_every=getattr(args, "corrupt_every", None),
    )


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    config = _config_from(args)
    config.validate()
    summary = asyncio.run(run_session(config))
    if args.json:
        print(json.dumps(summary))
    else:
        print_summary(summary, console)
    return EXIT_OK if summary["ok"] else EXIT_FAILED


def _names(text: str, valid: list[str], what: str) -> list[str]:
    if text == "all":
        return list(valid)
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in valid:
            raise UsageError(f"unknown {what} {name!r}; valid {what}s: {', '.join(valid)}")
    return names


def cmd_bench(args: argparse.Namespace, console: Console, err: Console) -> int:
    from ipc_explorer.session.bench import run_bench

    mechanisms = _names(args.mechanisms, list(MECHANISMS), "mechanism")
    formats = _names(args.formats, codec_names(), "format")
    base = SessionConfig(options=_options(args), cpus=args.pin)

    async def go() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await run_bench(
                mechanisms,
                formats,
                args.sizes,
                args.count,
                args.round_trips,
                base,
                floor=args.floor,
                progress=None if args.json else (lambda text: err.print(f"[dim]running {text}[/]")),
            )
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None

    started = time.monotonic()
    rows = asyncio.run(go())
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"rows": rows, "elapsed_s": round(elapsed, 2)}))
    else:
        print_bench(rows, args, elapsed, console)
    return EXIT_OK if all(r.get("integrity_ok", True) for r in rows) else EXIT_FAILED


def print_bench(
    rows: list[dict[str, Any]], args: argparse.Namespace, elapsed: float, console: Console
) -> None:
    table = Table(
        title=(
            f"ipc-explorer bench: {args.round_trips} round trips and {args.count} streamed "
            "messages per row, sorted by round-trip latency"
        ),
        title_justify="left",
    )
    for name, justify in (
        ("mechanism", "left"),
        ("format", "left"),
        ("size B", "right"),
        ("RTT p50 µs", "right"),
        ("RTT p99 µs", "right"),
        ("msgs/s", "right"),
        ("MB/s", "right"),
        ("wire B/msg", "right"),
        ("lost", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    if args.floor:
        table.add_column("floor RTT µs", justify="right")
        table.add_column("RTT ratio", justify="right")
        table.add_column("floor msgs/s", justify="right")
        table.add_column("throughput ratio", justify="right")
    for row in rows:
        if row.get("skipped"):
            cells = [
                row["mechanism"],
                row["format"],
                str(row["size"]),
                "[dim]skipped: " + row["skipped"] + "[/]",
            ]
            table.add_row(*cells, *[""] * (len(table.columns) - len(cells)))
            continue
        cells = [
            row["mechanism"],
            row["format"],
            str(row["size"]),
            _fmt_us(row["rtt_p50_us"]),
            _fmt_us(row["rtt_p99_us"]),
            f"{row['msgs_per_s']:,.0f}",
            f"{row['mb_per_s']:,.2f}",
            f"{row['wire_per_message']:,.0f}",
            str(row["lost"]),
        ]
        if args.floor:
            cells += [
                _fmt_us(row["floor_rtt_p50_us"]),
                f"{row['rtt_ratio']}x",
                f"{row['floor_msgs_per_s']:,.0f}",
                f"{row['throughput_ratio']}x",
            ]
        table.add_row(*cells)
    console.print(table)
    placement = next((r["placement"] for r in rows if r.get("placement")), "")
    console.print(f"[dim]{len(rows)} rows in {elapsed:.1f} s; {placement}[/]")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console()
    err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long
    try:
        if args.command == "run":
            return cmd_run(args, console)
        if args.command == "bench":
            return cmd_bench(args, console, err)
        if args.command == "contend":
            from ipc_explorer.cli.contend import cmd_contend

            return cmd_contend(args, console)
        if args.command in ("decode", "diff"):
            from ipc_explorer.cli.decode import DecodeUsageError, cmd_decode, cmd_diff

            try:
                return (cmd_decode if args.command == "decode" else cmd_diff)(args, console)
            except DecodeUsageError as exc:
                err.print(f"[red]error:[/] {exc}")
                return EXIT_USAGE
        # No sub-command: the app, on the chosen (or default) mechanism and format.
        config = SessionConfig(mechanism=args.mechanism, format=args.format, count=None, rate=100)
        config.validate()
        from ipc_explorer.tui.app import run_app

        run_app(config)
        return EXIT_OK
    except UsageError as exc:
        err.print(f"[red]error:[/] {exc}")
        return EXIT_USAGE
    except (MessageTooLarge, CodecError) as exc:
        err.print(f"[red]error:[/] {exc}")
        return EXIT_USAGE
    except TransportError as exc:
        err.print(f"[red]error:[/] {exc}")
        return EXIT_FAILED
    except SessionError as exc:
        err.print(f"[red]error:[/] {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("interrupted: children stopped, kernel objects removed")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`| head`): nothing more to say, and no traceback
        # when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
