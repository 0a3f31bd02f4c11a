"""The entry of a sender or receiver process: tie its life to the parent's, take its CPU,
run its family's loop, report one JSON line, and unlink what it knows on the way out."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

import posix_ipc

from ipc_explorer.floor.families import family_of
from ipc_explorer.floor.protocol import say
from ipc_explorer.floor.resources import remove_resources


def run_child(
    role: str,
    mechanism: str,
    pattern: str,
    size: int,
    count: int,
    setup_json: str,
    cpu: int | None,
    parent_pid: int,
) -> None:
    """Set up, run the loop, say the result (the parent reads it on this stdout)."""
    setup = json.loads(setup_json)
    loop = getattr(family_of(mechanism), role)
    try:
        _die_with_parent(parent_pid)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        result = loop(mechanism, pattern == "ping-pong", size, count, setup)
        result["placement"] = {
            "affinity": sorted(os.sched_getaffinity(0)),
            "last_cpu": _last_cpu(),
        }
        say(result)
    except posix_ipc.SignalError:  # SIGTERM while waiting on a semaphore or queue: stopped
        sys.exit(128 + signal.SIGTERM)
    finally:
        remove_resources(setup)


def _die_with_parent(parent_pid: int) -> None:
    """A killed parent must not leave a child blocked on a semaphore forever.

    PR_SET_PDEATHSIG turns the parent's death into SIGTERM, and SIGTERM into SystemExit, so
    that the ``finally`` blocks unlink the kernel objects. The parent may already be gone.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        sys.exit("parent already gone")


def _last_cpu() -> int:
    """The CPU this process last ran on (field 39 of /proc/self/stat)."""
    with open("/proc/self/stat") as stat:
        text = stat.read()
    return int(text[text.rindex(")") + 2 :].split()[36])
