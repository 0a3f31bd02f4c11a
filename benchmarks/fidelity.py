"""Is `ipc-explorer run` a faithful instrument? Compare it with the bare-loop floor.

For each mechanism, in every round: an ipc-explorer ping-pong, a floor ping-pong, an
ipc-explorer stream and a floor stream, with the same bytes per message on the wire, the
order of instrument and floor alternating between rounds. The machine is small and shared, so
only figures from the same run are compared, as medians over rounds (p99 is shown too), with
the placement of the processes stated.

    python benchmarks/fidelity.py --rounds 5 --pin 0,1
    python benchmarks/fidelity.py --mechanisms pipe --count 50000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipc_explorer.cli.run import run_session  # noqa: E402
from ipc_explorer.floor import run_floor  # noqa: E402
from ipc_explorer.session import SessionConfig  # noqa: E402
from ipc_explorer.session.bench import floor_ratios, floor_wire_bytes  # noqa: E402
from ipc_explorer.telemetry.percentiles import median  # noqa: E402


def instrument_summary(
    mechanism: str, pattern: str, size: int, count: int, fmt: str, pin: dict | None
) -> dict[str, Any]:
    """One ``ipc-explorer run`` session's summary."""
    config = SessionConfig(
        mechanism=mechanism, format=fmt, pattern=pattern, count=count, size=size, cpus=pin
    )
    return asyncio.run(run_session(config))


def measure_instrument(
    mechanism: str, pattern: str, size: int, count: int, fmt: str, pin: dict | None
) -> dict:
    summary = instrument_summary(mechanism, pattern, size, count, fmt, pin)
    return {
        "p50": summary["latency_us"]["p50"],
        "p99": summary["latency_us"]["p99"],
        "msgs_per_s": summary["msgs_per_s"],
        "ok": summary["ok"],
    }


def measure_floor(mechanism: str, pattern: str, wire: int, count: int, pin: dict | None) -> dict:
    result = run_floor(
        mechanism, pattern, wire, count, [pin["sender"], pin["receiver"]] if pin else None
    )
    rtt = result.get("rtt_us") or {}
    return {
        "p50": rtt.get("p50"),
        "p99": rtt.get("p99"),
        "msgs_per_s": result["msgs_per_s"],
        "placement": result["placement"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mechanisms", default="pipe,unix-stream,tcp")
    parser.add_argument("--format", default="msgpack")
    parser.add_argument(
        "--size", type=int, default=64, help="ipc-explorer --size (data blob bytes)"
    )
    parser.add_argument("--count", type=int, default=20000, help="messages per stream run")
    parser.add_argument("--round-trips", type=int, default=10000, help="messages per ping-pong run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pin", help="S,R: pin sender and receiver (default: the OS places them)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    pin = None
    if args.pin:
        s, r = (int(x) for x in args.pin.split(","))
        pin = {"sender": s, "receiver": r}
    mechanisms = args.mechanisms.split(",")
    runs: dict[tuple[str, str, str], list[dict]] = {}
    placement = ""
    # Bytes per message on the wire, taken as `ipc-explorer bench --floor` takes them: from an
    # instrument stream of the same length, so that the floor moves what the instrument moves.
    wire = {
        m: floor_wire_bytes(
            instrument_summary(m, "stream", args.size, args.count, args.format, pin)
        )
        for m in mechanisms
    }
    for round_no in range(args.rounds):
        for mechanism in mechanisms:
            for pattern, count in (("ping-pong", args.round_trips), ("stream", args.count)):
                order = ("instrument", "floor") if round_no % 2 == 0 else ("floor", "instrument")
                for kind in order:
                    if kind == "instrument":
                        result = measure_instrument(
                            mechanism, pattern, args.size, count, args.format, pin
                        )
                    else:
                        result = measure_floor(mechanism, pattern, wire[mechanism], count, pin)
                        placement = result["placement"]
                    runs.setdefault((mechanism, pattern, kind), []).append(result)
            print(f"round {round_no + 1}/{args.rounds}: {mechanism} done", file=sys.stderr)

    def med(key: tuple, field: str) -> float:
        return median(r[field] for r in runs[key])

    report = []
    for mechanism in mechanisms:
        pp_ours, pp_floor = (
            (mechanism, "ping-pong", "instrument"),
            (mechanism, "ping-pong", "floor"),
        )
        st_ours, st_floor = (mechanism, "stream", "instrument"), (mechanism, "stream", "floor")
        row = {
            "mechanism": mechanism,
            "rtt_p50_us": med(pp_ours, "p50"),
            "floor_rtt_p50_us": med(pp_floor, "p50"),
            "rtt_p99_us": med(pp_ours, "p99"),
            "floor_rtt_p99_us": med(pp_floor, "p99"),
            "msgs_per_s": med(st_ours, "msgs_per_s"),
            "floor_msgs_per_s": med(st_floor, "msgs_per_s"),
            "all_verified": all(r["ok"] for key in (pp_ours, st_ours) for r in runs[key]),
        }
        floor = {"rtt_p50_us": row["floor_rtt_p50_us"], "msgs_per_s": row["floor_msgs_per_s"]}
        row.update(floor_ratios(row, floor))
        report.append(row)
    result = {
        "format": args.format,
        "size": args.size,
        "rounds": args.rounds,
        "round_trips": args.round_trips,
        "count": args.count,
        "placement": placement,
        "rows": report,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{args.format}, --size {args.size}, {args.rounds} rounds interleaved; medians over rounds"
    )
    print(f"placement: {placement}")
    print(
        f"{'mechanism':12} {'RTT p50 µs':>11} {'floor':>7} {'ratio':>6} {'RTT p99':>8} {'floor':>7}"
        f" {'msgs/s':>9} {'floor':>10} {'ratio':>6}"
    )
    for row in report:
        print(
            f"{row['mechanism']:12} {row['rtt_p50_us']:11.1f} {row['floor_rtt_p50_us']:7.1f} "
            f"{_ratio(row['rtt_ratio'])} {row['rtt_p99_us']:8.1f} {row['floor_rtt_p99_us']:7.1f} "
            f"{row['msgs_per_s']:9,.0f} {row['floor_msgs_per_s']:10,.0f} "
            f"{_ratio(row['throughput_ratio'])}"
        )
    return 0


def _ratio(value: float | None) -> str:
    return f"{value:5.2f}x" if value is not None else "     -"


if __name__ == "__main__":
    sys.exit(main())
