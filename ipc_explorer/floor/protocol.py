"""What the parent and its two children agree on: the names, the framing, the warm-up, and
how a child reports (one JSON line on its stdout)."""

from __future__ import annotations

import json
import struct
import sys
from typing import Any

from ipc_explorer.telemetry.percentiles import summary

MECHANISMS = ("pipe", "fifo", "unix-stream", "unix-dgram", "tcp", "udp", "shm", "mq", "http")
PATTERNS = ("stream", "ping-pong")
ROLES = ("sender", "receiver")

#: Uncounted round trips before timing starts: both sides connected, caches and code warm.
WARMUP = 100
#: Little-endian u32 length prefix of every frame on a byte stream and in a shm slot.
LEN = struct.Struct("<I")
DEFAULT_TIMEOUT_S = 300.0


class FloorError(Exception):
    """A run that cannot be done as asked (bad size for the mechanism, a child failed)."""


def frame(size: int) -> bytes:
    """One framed message of exactly ``size`` wire bytes: u32 LE length + body."""
    return LEN.pack(size - LEN.size) + b"\xa5" * (size - LEN.size)


def say(message: dict[str, Any]) -> None:
    """One JSON line to the parent: "ready" (with a port when it is ephemeral), then the
    result."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def sender_result(t0_ns: int, t_end_ns: int, rtts: list[int] | None, completed: int) -> dict:
    """The sender's raw figures: its clocks, how many messages went through, and the round
    trips' nearest-rank percentiles in ns (None in a stream)."""
    return {
        "t0_ns": t0_ns,
        "t_end_ns": t_end_ns,
        "completed": completed,
        "rtt_ns": summary(rtts) if rtts is not None else None,
    }
