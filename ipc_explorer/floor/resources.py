"""The kernel objects of a run: created by the parent, so that the parent can always remove
them, and removed by the children too when the parent is killed."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from typing import Any

import posix_ipc

from ipc_explorer.floor.shm import SEMAPHORES, SHM_SLOTS


def create_resources(mechanism: str, size: int) -> tuple[dict[str, Any], list[int]]:
    """The run's setup (names and fds the children open) and the parent's fds to close.

    Both directions exist in both patterns: the warm-up is a round trip in every case.
    """
    setup: dict[str, Any] = {"mechanism": mechanism}
    fds: list[int] = []
    tag = f"ipcfloor-{os.getpid()}-{secrets.token_hex(4)}"
    if mechanism == "pipe":
        s2r_r, s2r_w = os.pipe()
        r2s_r, r2s_w = os.pipe()
        fds = [s2r_r, s2r_w, r2s_r, r2s_w]
        setup["fds"] = {"s2r_r": s2r_r, "s2r_w": s2r_w, "r2s_r": r2s_r, "r2s_w": r2s_w}
    elif mechanism in ("fifo", "unix-stream", "unix-dgram"):
        setup["dir"] = tempfile.mkdtemp(prefix=tag + "-")  # mode 0700
        setup["s2r"] = os.path.join(setup["dir"], "s2r")
        setup["r2s"] = os.path.join(setup["dir"], "r2s")
        if mechanism == "fifo":
            os.mkfifo(setup["s2r"], 0o600)
            os.mkfifo(setup["r2s"], 0o600)
    elif mechanism == "shm":
        setup["rings"] = []
        for direction in ("s2r", "r2s"):
            ring = {part: f"/{tag}-{direction}-{part}" for part in ("shm", *SEMAPHORES)}
            setup["rings"].append(ring)  # recorded first: a failure below still cleans up
            posix_ipc.SharedMemory(
                ring["shm"], posix_ipc.O_CREX, mode=0o600, size=size * SHM_SLOTS
            ).close_fd()
            for part, initial in SEMAPHORES.items():
                posix_ipc.Semaphore(
                    ring[part], posix_ipc.O_CREX, mode=0o600, initial_value=initial
                ).close()
    elif mechanism == "mq":
        setup["queues"] = []
        for direction in ("s2r", "r2s"):
            name = f"/{tag}-{direction}"
            setup["queues"].append(name)
            posix_ipc.MessageQueue(name, posix_ipc.O_CREX, mode=0o600).close()
    return setup, fds


def remove_resources(setup: dict[str, Any]) -> None:
    """Unlink every named object of a run; missing ones are fine (the other side was first)."""
    for ring in setup.get("rings", ()):
        for part, name in ring.items():
            unlink = posix_ipc.unlink_shared_memory if part == "shm" else posix_ipc.unlink_semaphore
            try:
                unlink(name)
            except posix_ipc.ExistentialError:
                pass
    for name in setup.get("queues", ()):
        try:
            posix_ipc.unlink_message_queue(name)
        except posix_ipc.ExistentialError:
            pass
    if "dir" in setup:
        shutil.rmtree(setup["dir"], ignore_errors=True)
