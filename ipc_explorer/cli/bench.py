"""``ipc-explorer bench``: every mechanism with one workload, one table sorted by latency."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from ipc_explorer.cli.args import (
    EXIT_FAILED,
    EXIT_OK,
    add_channel_options,
    cancel_on_signals,
    fmt_us,
    positive_list,
    run_to_end,
    transport_options,
)
from ipc_explorer.codecs import codec_names
from ipc_explorer.session import SessionConfig, UsageError
from ipc_explorer.transports import MECHANISMS


def add_parser(sub: Any) -> None:
    bench = sub.add_parser("bench", help="run every mechanism with the same workload and compare")
    bench.add_argument(
        "--sizes",
        type=positive_list,
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
    add_channel_options(bench)
    bench.set_defaults(execute=execute)


def _names(text: str, valid: list[str], what: str) -> list[str]:
    if text == "all":
        return list(valid)
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in valid:
            raise UsageError(f"unknown {what} {name!r}; valid {what}s: {', '.join(valid)}")
    return names


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    from ipc_explorer.session.bench import run_bench

    mechanisms = _names(args.mechanisms, list(MECHANISMS), "mechanism")
    formats = _names(args.formats, codec_names(), "format")
    base = SessionConfig(options=transport_options(args), cpus=args.pin)

    async def go() -> list[dict[str, Any]]:
        cancel_on_signals()
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
    rows = run_to_end(go())
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
            fmt_us(row["rtt_p50_us"]),
            fmt_us(row["rtt_p99_us"]),
            f"{row['msgs_per_s']:,.0f}",
            f"{row['mb_per_s']:,.2f}",
            f"{row['wire_per_message']:,.0f}",
            str(row["lost"]),
        ]
        if args.floor and row.get("floor_rtt_p50_us") is None:
            cells += ["-", "-", "-", "-"]  # no bare loop for a broker (floor_note says so)
        elif args.floor:
            cells += [
                fmt_us(row["floor_rtt_p50_us"]),
                f"{row['rtt_ratio']}x",
                f"{row['floor_msgs_per_s']:,.0f}",
                f"{row['throughput_ratio']}x",
            ]
        table.add_row(*cells)
    console.print(table)
    placement = next((r["placement"] for r in rows if r.get("placement")), "")
    console.print(f"[dim]{len(rows)} rows in {elapsed:.1f} s; {placement}[/]")
