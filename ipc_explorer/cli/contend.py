"""``ipc-explorer contend``: one contention-lab run, headless, as a table or one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ipc_explorer.cli.args import add_record_options, cancel_on_signals
from ipc_explorer.lab.config import FIXES, SCENARIOS, ContendConfig
from ipc_explorer.lab.locks import LOCK_KINDS
from ipc_explorer.lab.recording import LabRecorder
from ipc_explorer.lab.run import ContendRun
from ipc_explorer.telemetry.recording import DEFAULT_LIMIT_MIB


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "contend",
        help="make a race, a torn read, a full buffer or a deadlock happen between processes",
    )
    p.add_argument("--scenario", default="counter", help=f"one of: {', '.join(SCENARIOS)}")
    p.add_argument(
        "--workers",
        "-k",
        type=int,
        help="processes (counter 4, torn 3 = 1 writer + readers, buffer 2 = 1 producer + "
        "consumers, deadlock 2 = the ring)",
    )
    p.add_argument("--iterations", "-n", type=int, help="per worker (default 20000; deadlock 50)")
    p.add_argument(
        "--lock",
        default="none",
        help=f"one of: {', '.join(LOCK_KINDS)} (torn also: seqlock; buffer also: condvar)",
    )
    p.add_argument("--fix", default="none", help=f"deadlock only: {', '.join(FIXES)}")
    p.add_argument(
        "--critical-us",
        type=int,
        help="work inside the critical section, µs (default 0; deadlock: 2000, with the first "
        "lock held)",
    )
    p.add_argument(
        "--consumer-delay-us", type=int, default=0, help="buffer: a slow consumer, µs per item"
    )
    p.add_argument("--slots", type=int, default=8, help="buffer: slots in the ring (default 8)")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_record_options(p)
    p.set_defaults(execute=execute)


def config_from(args: argparse.Namespace) -> ContendConfig:
    config = ContendConfig(
        scenario=args.scenario,
        workers=args.workers,
        iterations=args.iterations,
        lock=args.lock,
        fix=args.fix,
        cs_us=args.critical_us,
        consumer_delay_us=args.consumer_delay_us,
        slots=args.slots,
        timeout_s=args.timeout,
    )
    config.validate()
    return config


async def run_contend(
    config: ContendConfig,
    record: str | None = None,
    record_limit: float = DEFAULT_LIMIT_MIB,
    said: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One run to its end; ``record`` names a file that gets everything the lab's screen and
    this summary show, as it happens, closed with the summary (``said`` hears where it went)."""
    run = ContendRun(config)
    recorder = LabRecorder(run, record, record_limit, command="contend") if record else None
    cancel_on_signals()
    result: dict[str, Any] | None = None
    try:
        if recorder is not None:
            recorder.start()
        await run.start()
        result = await run.wait()
        return result
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        await asyncio.shield(run.stop())
        if recorder is not None:
            recorder.close(result)
            if said is not None:
                said(recorder.said())


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    """Exit 0 when the run did what it was asked (a race that loses updates included), 1 when
    it could not (a worker failed, a timeout) or a lock failed to protect what it guards."""
    config = config_from(args)
    said = lambda text: err.print(f"[dim]{escape(text)}[/]")  # noqa: E731
    result = asyncio.run(run_contend(config, args.record, args.record_limit, said))
    if args.json:
        print(json.dumps(result))
    else:
        print_contend(result, console)
    return 0 if run_ok(result) else 1


def run_ok(result: dict[str, Any]) -> bool:
    if result["state"] not in ("finished", "deadlocked"):
        return False
    if result["state"] == "deadlocked" and result["fix"] != "none":
        return False  # a fix that deadlocks is no fix
    guarded = result["lock"] != "none"
    if guarded and result["scenario"] != "deadlock":
        broken = (
            result["lost_updates"]
            or result["torn_reads"]
            or result.get("duplicated")
            or result.get("overwritten")
        )
        return not broken
    return True


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def print_contend(result: dict[str, Any], console: Console) -> None:
    r = result
    title = (
        f"contend {r['scenario']} · lock {r['lock']}"
        + (f" · fix {r['fix']}" if r["scenario"] == "deadlock" else "")
        + f" · {r['workers']} workers x {r['iterations']:,} iterations"
        + f" · critical section {r['critical_us']} µs"
    )
    console.print(f"[bold]{title}[/]")
    scenario = r["scenario"]
    if scenario == "counter":
        lost = r["lost_updates"]
        share = lost / r["expected"] * 100 if r["expected"] else 0
        console.print(
            f"expected {r['expected']:,}   actual {r['actual']:,}   "
            f"lost updates [{'red' if lost else 'green'}]{lost:,}[/] ({share:.1f}%)"
        )
    elif scenario == "torn":
        torn = r["torn_reads"]
        console.print(
            f"reads {r['reads']:,} of {r['writes']:,} writes   torn reads "
            f"[{'red' if torn else 'green'}]{torn:,}[/]"
            + (f"   seqlock retries {r['retries']:,}" if r["lock"] == "seqlock" else "")
        )
        if "torn_example" in r:
            ex = r["torn_example"]
            console.print(
                f"  one torn read: seq {ex['seq']}, a {ex['a']} (should be {3 * ex['seq']}), "
                f"b {ex['b']} (should be {7 * ex['seq']}), check {ex['check']}"
            )
    elif scenario == "buffer":
        bad = r["overwritten"] or r["duplicated"]
        console.print(
            f"items produced {r['expected']:,}   delivered once {r['actual']:,}   "
            f"[{'red' if bad else 'green'}]overwritten (never read) {r['overwritten']:,}   "
            f"read twice or more {r['duplicated']:,}[/]"
        )
    else:
        if r["deadlock_detected"]:
            console.print(
                f"[red]deadlock detected[/] after {r['detected_after_s']} s: "
                f"{r['actual']:,} of {r['expected']:,} rounds done"
            )
            for edge in r["cycle"]:
                console.print(
                    f"  worker {edge['worker']} (pid {edge['pid']}) waits for "
                    f"{edge['waits_for_lock']}, held by worker {edge['held_by_worker']} "
                    f"(pid {edge['held_by_pid']})"
                )
        else:
            console.print(
                f"[green]no deadlock[/]: {r['actual']:,} of {r['expected']:,} rounds done"
                + (f", {r['backoffs']:,} back-offs" if r["fix"] == "timeout" else "")
            )
    console.print(f"wall time {r['elapsed_s']:.3f} s   state {r['state']}")
    if r.get("error"):
        console.print(f"[red]error:[/] {escape(str(r['error']))}")
    if r["locks"]:
        table = Table(title_justify="left", box=None, padding=(0, 2))
        for column in ("lock", "kind", "acquired", "value"):
            table.add_column(column)
        table.add_column("wait µs mean / p99 / max", justify="right")
        table.add_column("hold µs mean / p99 / max", justify="right")
        for label, s in r["locks"].items():
            held = label == "mutex" or label.startswith("L") or label in ("counter", "record")
            table.add_row(
                label,
                s["kind"],
                f"{s['acquisitions']:,}",
                f"{s['value_min']}..{s['value_max']}",
                _figures(s["wait"]),
                _figures(s["hold"]) if held else "-",
            )
        console.print(table)
        console.print(
            "[dim]value: the kernel's (sem_getvalue / GETVAL), sampled by the parent at 20 Hz; "
            "wait and hold: each worker's own timing of its acquires and releases[/]"
        )


def _figures(f: dict[str, float]) -> str:
    return f"{_us(f['mean_us'])} / {_us(f['p99_us'])} / {_us(f['max_us'])}"
