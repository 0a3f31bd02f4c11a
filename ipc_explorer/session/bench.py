"""``ipc-explorer bench``: every mechanism with the same workload, one after another.

Each (mechanism, format, size) runs a ping-pong session (round-trip latency) and a stream
session (throughput), sequentially so that runs do not compete for the two cores. With
``floor``, the bare Python loop of ``ipc_explorer.floor`` runs on the same mechanism with the
same bytes per message in the same pass, and the ratio says what the instrument costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ipc_explorer.floor import MECHANISMS as FLOOR_MECHANISMS
from ipc_explorer.floor import run_floor
from ipc_explorer.session.config import SessionConfig
from ipc_explorer.session.session import run_once
from ipc_explorer.transports import MessageTooLarge, get_transport


def floor_wire_bytes(summary: dict[str, Any]) -> int:
    """The message size to give the floor for an instrument run: the run's wire bytes per
    message (framing and headers included), so that both move the same bytes; 8 at least, so
    that a run that sent nothing still gives a size every byte stream can frame."""
    per_message = summary["wire_bytes"] / summary["sent"] if summary["sent"] else 0
    return max(round(per_message), 8)


def floor_ratios(instrument: dict[str, Any], floor: dict[str, Any]) -> dict[str, float | None]:
    """The instrument against the floor, both given as ``rtt_p50_us`` and ``msgs_per_s``.

    ``rtt_ratio`` is how many floor round trips one instrument round trip takes,
    ``throughput_ratio`` the share of the floor's rate the instrument reaches; None where the
    floor has no figure (no round trip completed).
    """

    def ratio(ours: float | None, theirs: float | None) -> float | None:
        return round(ours / theirs, 2) if ours is not None and theirs else None

    return {
        "rtt_ratio": ratio(instrument["rtt_p50_us"], floor["rtt_p50_us"]),
        "throughput_ratio": ratio(instrument["msgs_per_s"], floor["msgs_per_s"]),
    }


async def _session(
    config: SessionConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    return (await run_once(config, progress))[1]


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
                        floor,
                        progress,
                    )
                )
    rows.sort(key=lambda r: (r.get("skipped") is not None, r.get("rtt_p50_us") or 0.0))
    return rows


async def _bench_one(
    config: SessionConfig,
    count: int,
    round_trips: int,
    floor: bool,
    progress: Callable[[str], None] | None = None,
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
        pp = await _session(pingpong, progress)
        st = await _session(stream, progress)
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
    if floor and config.mechanism not in FLOOR_MECHANISMS:
        # A broker is reached through a client library: no bare loop stands for it.
        row.update(floor_rtt_p50_us=None, floor_msgs_per_s=None, rtt_ratio=None)
        row.update(throughput_ratio=None, floor_note=f"no bare-loop floor for {config.mechanism}")
    elif floor:
        wire = floor_wire_bytes(st)
        pin = [config.cpus["sender"], config.cpus["receiver"]] if config.cpus else None
        f_pp = run_floor(config.mechanism, "ping-pong", wire, round_trips, pin)
        f_st = run_floor(config.mechanism, "stream", wire, count, pin)
        floor_figures = {
            "rtt_p50_us": (f_pp.get("rtt_us") or {}).get("p50") or 0,
            "msgs_per_s": f_st.get("msgs_per_s") or 0,
        }
        row.update(
            floor_rtt_p50_us=floor_figures["rtt_p50_us"],
            floor_msgs_per_s=floor_figures["msgs_per_s"],
            **floor_ratios(row, floor_figures),
        )
    return row
