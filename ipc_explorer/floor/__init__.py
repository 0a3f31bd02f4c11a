"""The floor: a bare Python loop per IPC mechanism, to compare the instrument against.

The instrument measures every message (stage timings, a codec, checksums, telemetry). The
floor does the same transport work with nothing else: one sender process and one receiver
process, the same kernel objects and framing, the tightest loop plain Python allows. The gap
between the instrument and the floor is the cost of the instrument; the floor itself is the
cost of the mechanism as seen from Python.

It shares nothing with the instrument, so that nothing of the instrument can leak into it: its
modules import only the standard library, ``posix_ipc``, each other, and
``ipc_explorer.telemetry.percentiles`` (pure arithmetic: the one nearest-rank rule, so that
both sides' percentiles mean the same thing). tests/test_floor.py checks this.

    python -m ipc_explorer.floor --mechanism tcp --pattern ping-pong --size 100 --count 20000

From Python: ``run_floor("unix-stream", "ping-pong", 100, 20000, pin=(0, 1))``.
"""

from ipc_explorer.floor.protocol import MECHANISMS, PATTERNS, FloorError
from ipc_explorer.floor.runner import run_floor

__all__ = ["MECHANISMS", "PATTERNS", "FloorError", "run_floor"]
