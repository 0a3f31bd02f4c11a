"""Starting the programs a parent runs (the sender, the receiver): separate processes,
``python -m ipc_explorer.children``, started from the event loop's thread (PR_SET_PDEATHSIG is
tied to the thread that forks), each in a session of its own."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import ipc_explorer
from ipc_explorer.session.remote import TOKEN_VARIABLE
from ipc_explorer.transports import ChannelPlan


def child_env(plan: ChannelPlan) -> dict[str, str]:
    """A child's environment: ours less the agents' shared token (a child has no use for it,
    and whatever can read a child's environment could take it), the package on its path, and
    the plan's secrets (a broker's credentials), which must never go on a command line."""
    env = dict(os.environ)
    env.pop(TOKEN_VARIABLE, None)
    env.update(plan.env)
    root = str(Path(ipc_explorer.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


async def start_child(
    side: str, config: dict[str, Any], plan: ChannelPlan
) -> tuple[asyncio.subprocess.Process, int]:
    """Start a child (``python -m ipc_explorer.children``) from the event loop's thread, with
    the plan's descriptors for its role and a telemetry pipe; the process and the pipe's read
    end. A separate program in its own session: the terminal's Ctrl-C is the parent's."""
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ipc_explorer.children",
            "--role",
            side,
            "--parent-pid",
            str(os.getpid()),
            "--telemetry-fd",
            str(write_fd),
            "--config",
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=[write_fd, *plan.fds_for(side)],  # type: ignore[arg-type]
            start_new_session=True,
            env=child_env(plan),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return proc, read_fd


def read_available(fd: int) -> bytes | None:
    """What a child's non-blocking telemetry pipe holds now: None when nothing has come yet,
    b"" once the child has closed it (or it broke)."""
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return None
    except OSError:
        return b""
