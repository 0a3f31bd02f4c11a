"""``ipc-explorer bench``: every mechanism with the same workload, one after another.

Each (mechanism, format, size) runs a ping-pong session (round-trip latency) and a stream
session (throughput), sequentially so that runs do not compete for the two cores. With
``floor``, the bare Python loop of benchmarks/floor.py runs on the same mechanism with the same
bytes per message in the same pass, and the ratio says what the instrument costs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from ipc_explorer.session.config import SessionConfig, UsageError
from ipc_explorer.session.session import run_once
from ipc_explorer.transports import MessageTooLarge, get_transport

FLOOR_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "floor.py"


def load_floor() -> ModuleType:
    """benchmarks/floor.py from the source tree (it is kept out of the package on purpose)."""
    if not FLOOR_PATH.exists():
        raise UsageError(
            f"--floor needs the repository's benchmarks/floor.py ({FLOOR_PATH} not found); "
            "run from a clone installed with pip install -e ."
        )
    spec = importlib.util.spec_from_file_location("ipc_explorer_floor", FLOOR_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _session(config: SessionConfig) -> dict[str, Any]:
    return (await run_once(config))[1]


async def run_bench(
    mechanisms: list[str],
    formats: list[str],
    sizes: list[int],
    count: int,
    round_trips: int,
    base: SessionConfig,
    floor: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (mechanism, format, size)."""
    floor_module = load_floor() if floor else None
    rows = []
    for mechanism in mechanisms:
        get_transport(mechanism)  # unknown names fail before anything runs
        for fmt in formats:
            for size in sizes:
                if progress:
                    progress(f"{mechanism} {fmt} {size} B")
                rows.append(
                    await _bench_one(
                        replace(base, mechanism=mechanism, format=fmt, size=size),
                        count,
                        round_trips,
                        floor_module,
                    )
                )
    rows.sort(key=lambda r: (r.get("skipped") is not None, r.get("rtt_p50_us") or 0.0))
    return rows


async def _bench_one(
    config: SessionConfig, count: int, round_trips: int, floor_module: ModuleType | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "mechanism": config.mechanism,
        "format": config.format,
        "size": config.size,
        "skipped": None,
    }
    pingpong = replace(config, pattern="ping-pong", count=round_trips)
    stream = replace(config, pattern="stream", count=count)
    try:
        pp = await _session(pingpong)
        st = await _session(stream)
    except MessageTooLarge as exc:
        row["skipped"] = str(exc)
        return row
    per_message = st["wire_bytes"] / st["sent"] if st["sent"] else 0
    row.update(
        rtt_p50_us=pp["latency_us"]["p50"],
        rtt_p99_us=pp["latency_us"]["p99"],
        one_way_p50_us=st["latency_us"]["p50"],
        msgs_per_s=st["msgs_per_s"],
        mb_per_s=st["mb_per_s"],
        wire_per_message=round(per_message, 1),
        payload_per_message=round(st["payload_bytes"] / st["sent"], 1) if st["sent"] else 0,
        lost=st["lost"] + pp["lost"],
        integrity_ok=pp["ok"] and st["ok"],
        stages_us=pp["stages_us"],
        placement=pp["placement"],
    )
    if floor_module is not None:
        wire = max(int(round(per_message)), 8)
        pin = [config.cpus["sender"], config.cpus["receiver"]] if config.cpus else None
        f_pp = floor_module.run_floor(config.mechanism, "ping-pong", wire, round_trips, pin)
        f_st = floor_module.run_floor(config.mechanism, "stream", wire, count, pin)
        floor_rtt = (f_pp.get("rtt_us") or {}).get("p50") or 0
        row.update(
            floor_rtt_p50_us=floor_rtt,
            floor_msgs_per_s=f_st.get("msgs_per_s") or 0,
            rtt_ratio=round(row["rtt_p50_us"] / floor_rtt, 2) if floor_rtt else None,
            throughput_ratio=(
                round(row["msgs_per_s"] / f_st["msgs_per_s"], 2) if f_st.get("msgs_per_s") else None
            ),
        )
    return row
