"""What recording costs the flow it records: the same run with and without --record.

Per round, in an order that alternates between rounds: a stream run (throughput) and a
ping-pong run (round-trip p50 and p99) of each mechanism, once recorded to a file and once
not, both through the instrument in this process (the recorder runs in the parent, beside
the telemetry it writes down). Medians over rounds, the recorded/plain ratio of each, and
the file's size per second of flow.

    python benchmarks/recording.py --rounds 7            # sender on CPU 0, receiver on 1
    python benchmarks/recording.py --mechanisms pipe,shm --count 200000 --pin none --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipc_explorer.session import Session, SessionConfig  # noqa: E402
from ipc_explorer.session.recording import SessionRecorder  # noqa: E402
from ipc_explorer.telemetry.percentiles import median  # noqa: E402


async def one_run(config: SessionConfig, record: Path | None) -> dict[str, Any]:
    session = Session(config)
    recorder = SessionRecorder(session, record) if record else None
    if recorder is not None:
        recorder.start()
    try:
        await session.start()
        result = await session.run_to_completion()
    finally:
        await session.stop()
        if recorder is not None:
            recorder.close(session.summary())
    size = record.stat().st_size if record else 0
    return {
        "msgs_per_s": result["msgs_per_s"],
        "p50": result["latency_us"]["p50"],
        "p99": result["latency_us"]["p99"],
        "elapsed_s": result["elapsed_s"],
        "file_bytes": size,
        "ok": result["ok"],
    }


async def measure(
    mechanisms: list[str], rounds: int, count: int, trips: int, pin: dict[str, int] | None
) -> dict[str, Any]:
    runs: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="ipcx-bench-") as tmp:
        path = Path(tmp) / "run.ipcx"
        for index in range(rounds):
            order = [False, True] if index % 2 == 0 else [True, False]
            for mechanism in mechanisms:
                for recorded in order:
                    for pattern, n in (("stream", count), ("ping-pong", trips)):
                        config = SessionConfig(
                            mechanism=mechanism,
                            format="msgpack",
                            pattern=pattern,
                            count=n,
                            cpus=pin,
                        )
                        result = await one_run(config, path if recorded else None)
                        runs.setdefault((mechanism, pattern, recorded), []).append(result)
            print(f"round {index + 1}/{rounds} done", file=sys.stderr)
    table = []
    for mechanism in mechanisms:
        row: dict[str, Any] = {"mechanism": mechanism}
        for recorded in (False, True):
            key = "recorded" if recorded else "plain"
            stream, pingpong = (
                runs[(mechanism, "stream", recorded)],
                runs[(mechanism, "ping-pong", recorded)],
            )
            row[key] = {
                "msgs_per_s": median([r["msgs_per_s"] for r in stream]),
                "rtt_p50_us": median([r["p50"] for r in pingpong]),
                "rtt_p99_us": median([r["p99"] for r in pingpong]),
                "ok": all(r["ok"] for r in stream + pingpong),
            }
            if recorded:
                per_s = [r["file_bytes"] / r["elapsed_s"] for r in stream if r["elapsed_s"]]
                row[key]["file_kib_per_s"] = round(median(per_s) / 1024, 1)
        plain, rec = row["plain"], row["recorded"]
        row["ratio"] = {
            "throughput": round(rec["msgs_per_s"] / plain["msgs_per_s"], 3),
            "rtt_p50": round(rec["rtt_p50_us"] / plain["rtt_p50_us"], 3),
            "rtt_p99": round(rec["rtt_p99_us"] / plain["rtt_p99_us"], 3),
        }
        table.append(row)
    return {
        "rounds": rounds,
        "count": count,
        "round_trips": trips,
        "placement": (
            f"sender on CPU {pin['sender']}, receiver on CPU {pin['receiver']}, the parent "
            f"(and its recorder) unpinned on {os.cpu_count()} CPUs"
            if pin
            else f"unpinned: parent, sender and receiver on {os.cpu_count()} CPUs"
        ),
        "rows": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mechanisms", default="pipe,tcp,shm")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=100_000, help="messages per stream run")
    parser.add_argument("--round-trips", type=int, default=5_000, help="per ping-pong run")
    parser.add_argument(
        "--pin",
        default="0,1",
        help="CPUs of sender and receiver ('none': unpinned; then a pipe's round trip is "
        "bimodal, ~13 or ~40 µs here, as the two land on one CPU or two)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pin = None
    if args.pin != "none":
        sender, receiver = (int(v) for v in args.pin.split(","))
        pin = {"sender": sender, "receiver": receiver}
    result = asyncio.run(
        measure(args.mechanisms.split(","), args.rounds, args.count, args.round_trips, pin)
    )
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['rounds']} rounds, medians; {result['placement']}")
    print(
        f"{'mechanism':<10} {'msgs/s plain':>13} {'recorded':>10} {'ratio':>6}   "
        f"{'rtt p50 plain':>13} {'recorded':>9} {'ratio':>6}   {'p99 ratio':>9}   {'file':>9}"
    )
    for row in result["rows"]:
        plain, rec, ratio = row["plain"], row["recorded"], row["ratio"]
        print(
            f"{row['mechanism']:<10} {plain['msgs_per_s']:>13,.0f} {rec['msgs_per_s']:>10,.0f} "
            f"{ratio['throughput']:>6.3f}   {plain['rtt_p50_us']:>11,.1f}µs "
            f"{rec['rtt_p50_us']:>7,.1f}µs {ratio['rtt_p50']:>6.3f}   {ratio['rtt_p99']:>9.3f}   "
            f"{rec['file_kib_per_s']:>5,.0f}KiB/s"
        )


if __name__ == "__main__":
    main()
