"""A broker beside the kernel: amqp (RabbitMQ) against mq and tcp, in the same run.

Per round, in an order that alternates between rounds: a ping-pong and a stream run of each
mechanism through the instrument, and a bare pika round trip (publish with confirm, then the
delivery, one process, no codec, no checksum) that says what the broker costs by itself.
Medians over rounds; p99 beside the p50; where an amqp round trip's time goes (the stages the
children time: confirm, transmit, ack). The broker is a private node started here, or the one
given with --broker.

    python benchmarks/broker.py --rounds 5
    python benchmarks/broker.py --broker amqp://guest:guest@127.0.0.1:5672/%2F --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pika  # noqa: E402

from ipc_explorer.session import SessionConfig, run_once  # noqa: E402
from ipc_explorer.telemetry.percentiles import median, summary  # noqa: E402
from ipc_explorer.transports import TransportOptions  # noqa: E402
from ipc_explorer.transports.rabbitmq import PrivateBroker  # noqa: E402

MECHANISMS = ("amqp", "mq", "tcp")


async def instrument(mechanism: str, pattern: str, count: int, broker: str) -> dict[str, Any]:
    options = TransportOptions(broker=broker if mechanism == "amqp" else "")
    config = SessionConfig(
        mechanism=mechanism, format="msgpack", pattern=pattern, count=count, options=options
    )
    _, result = await run_once(config)
    return {
        "p50": result["latency_us"]["p50"],
        "p99": result["latency_us"]["p99"],
        "msgs_per_s": result["msgs_per_s"],
        "stages": result["stages_us"],
        "ok": result["ok"],
    }


#: A delivery that takes longer than this means the broker is gone or stuck: stop, say so.
DELIVERY_TIMEOUT_S = 10


def bare_pika(url: str, count: int) -> dict[str, float]:
    """Round trips through the broker with pika alone: publish (confirmed), then take the
    delivery on a second connection; microseconds, nearest-rank percentiles."""
    publisher = pika.BlockingConnection(pika.URLParameters(url))
    consumer = pika.BlockingConnection(pika.URLParameters(url))
    try:
        out = publisher.channel()
        out.confirm_delivery()
        queue = out.queue_declare("", exclusive=False, auto_delete=True).method.queue
        inbox = consumer.channel()
        inbox.basic_qos(prefetch_count=1)
        arrived: list[bytes] = []
        inbox.basic_consume(queue, lambda ch, m, p, body: arrived.append(body), auto_ack=True)
        body = b"x" * 131
        times = []
        for i in range(count + 50):
            t0 = time.perf_counter_ns()
            out.basic_publish("", queue, body)
            deadline = time.monotonic() + DELIVERY_TIMEOUT_S
            while not arrived:
                consumer.process_data_events(time_limit=1)
                if time.monotonic() > deadline:
                    raise SystemExit(f"no delivery in {DELIVERY_TIMEOUT_S} s: is the broker up?")
            arrived.clear()
            if i >= 50:  # warm-up, as the floor does
                times.append((time.perf_counter_ns() - t0) / 1000)
        out.queue_delete(queue)
        return summary(times)
    finally:
        publisher.close()
        consumer.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    node = None if args.broker else await PrivateBroker.start(lambda t: print(t, file=sys.stderr))
    url = args.broker or node.url
    runs: dict[tuple[str, str], list[dict]] = {}
    bare: list[dict] = []
    try:
        for round_no in range(args.rounds):
            order = MECHANISMS if round_no % 2 == 0 else tuple(reversed(MECHANISMS))
            for mechanism in order:
                for pattern, count in (("ping-pong", args.round_trips), ("stream", args.count)):
                    result = await instrument(mechanism, pattern, count, url)
                    runs.setdefault((mechanism, pattern), []).append(result)
            bare.append(await asyncio.to_thread(bare_pika, url, args.round_trips))
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        if node is not None:
            await node.stop()
    rows = []
    for mechanism in MECHANISMS:
        pp, st = runs[mechanism, "ping-pong"], runs[mechanism, "stream"]
        stages = {name: median(r["stages"].get(name, 0.0) for r in pp) for name in pp[0]["stages"]}
        rows.append(
            {
                "mechanism": mechanism,
                "rtt_p50_us": median(r["p50"] for r in pp),
                "rtt_p99_us": median(r["p99"] for r in pp),
                "msgs_per_s": median(r["msgs_per_s"] for r in st),
                "stages_us": stages,
                "all_verified": all(r["ok"] for r in pp + st),
            }
        )
    return {
        "rounds": args.rounds,
        "round_trips": args.round_trips,
        "count": args.count,
        "broker": "private node" if node else "given",
        "placement": "unpinned (the OS places every process on the machine's CPUs)",
        "rows": rows,
        "bare_pika_rtt_us": {
            "p50": median(b["p50"] for b in bare),
            "p99": median(b["p99"] for b in bare),
        },
    }


def print_report(report: dict[str, Any]) -> None:
    print(
        f"{report['rounds']} rounds interleaved, {report['round_trips']} round trips and "
        f"{report['count']} streamed messages per run; medians over rounds; "
        f"{report['placement']}"
    )
    print(f"{'mechanism':10} {'RTT p50 µs':>11} {'RTT p99 µs':>11} {'msgs/s':>9}  stages (µs)")
    for row in report["rows"]:
        stages = "  ".join(f"{k} {v:.1f}" for k, v in row["stages_us"].items() if v)
        print(
            f"{row['mechanism']:10} {row['rtt_p50_us']:11.1f} {row['rtt_p99_us']:11.1f} "
            f"{row['msgs_per_s']:9,.0f}  {stages}"
        )
    bare = report["bare_pika_rtt_us"]
    print(
        f"bare pika round trip through the broker: p50 {bare['p50']:.1f} µs, p99 {bare['p99']:.1f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--broker", default="", help="amqp://... (default: a private node)")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    if arguments.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
