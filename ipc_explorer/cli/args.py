"""What every command shares: exit statuses, the parser that exits 2 on bad usage, argument
types, the channel options of ``run`` and ``bench``, and how a duration is printed."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable
from typing import TypeVar

from ipc_explorer.telemetry.recording import DEFAULT_LIMIT_MIB
from ipc_explorer.transports import TransportOptions, shutdown

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 already
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def positive_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def cpu_pin(text: str) -> dict[str, int]:
    values = positive_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError("--pin takes two CPU numbers: SENDER,RECEIVER")
    return {"sender": values[0], "receiver": values[1]}


def add_channel_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("channel options")
    g.add_argument("--nagle", action="store_true", help="tcp/http: turn Nagle's algorithm back on")
    g.add_argument(
        "--split-writes",
        action="store_true",
        help="tcp/unix-stream/http: write each message's header and payload with two calls "
        "(with --nagle in ping-pong: the ~40 ms delayed-ACK stall)",
    )
    g.add_argument(
        "--port", type=int, default=0, help="tcp/udp/http: port on 127.0.0.1 (default: any free)"
    )
    g.add_argument("--pipe-size", type=int, help="pipe/fifo: buffer size with F_SETPIPE_SZ")
    g.add_argument("--slots", type=int, default=8, help="shm: slots in the ring (default 8)")
    g.add_argument(
        "--slot-size", type=int, default=65536, help="shm: bytes per slot (default 65536)"
    )
    g.add_argument(
        "--pin", type=cpu_pin, metavar="S,R", help="pin sender and receiver to these CPUs"
    )
    g.add_argument(
        "--broker",
        default="",
        metavar="URL",
        help="amqp: amqp://user:pass@host:port/vhost of a broker to use (default: a private "
        "RabbitMQ node, started and removed by ipc-explorer)",
    )
    g.add_argument(
        "--prefetch", type=int, default=50, help="amqp: the consumer's prefetch window (50)"
    )
    g.add_argument(
        "--auto-ack",
        action="store_true",
        help="amqp: the broker forgets a message once delivered (no acks: a killed consumer "
        "loses what it had)",
    )


def mebibytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in MiB, got {text!r}") from None
    if not 0.01 <= value <= 1024:
        raise argparse.ArgumentTypeError("a recording's cap is 0.01 to 1024 MiB")
    return value


def add_record_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--record",
        metavar="FILE",
        help="write everything the panels show to FILE as it happens (replay it with "
        "`ipc-explorer replay FILE`)",
    )
    p.add_argument(
        "--record-limit",
        type=mebibytes,
        default=DEFAULT_LIMIT_MIB,
        metavar="MIB",
        help=f"stop recording at this size on disk (default {DEFAULT_LIMIT_MIB} MiB)",
    )


def transport_options(args: argparse.Namespace) -> TransportOptions:
    return TransportOptions(
        port=args.port,
        nagle=args.nagle,
        split_writes=args.split_writes,
        pipe_size=args.pipe_size,
        slots=args.slots,
        slot_size=args.slot_size,
        broker=args.broker,
        prefetch=args.prefetch,
        auto_ack=args.auto_ack,
    )


def fmt_us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def cancel_on_signals() -> None:
    """SIGINT and SIGTERM cancel the running task: its ``finally`` stops the children and
    removes every kernel object, then the command exits as interrupted (130)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)


def run_to_end(work: Awaitable[T]) -> T:
    """``asyncio.run`` for a command: and before the loop closes, release what the mechanisms
    keep for the whole process (a private broker), whatever happened."""

    async def main() -> T:
        try:
            return await work
        finally:
            await shutdown()

    return asyncio.run(main())
