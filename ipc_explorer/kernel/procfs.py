"""A process as /proc shows it: its state, the system call it is in, where in the kernel it
sleeps, what its descriptors are and which file a memory address belongs to."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ipc_explorer.kernel.syscalls import name_of

STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "in uninterruptible sleep",
    "T": "stopped",
    "t": "stopped by a tracer",
    "Z": "a zombie",
    "X": "dead",
    "I": "idle",
}


class ProcessGone(Exception):
    """The process does not exist (any more)."""


@dataclass(frozen=True)
class SystemCall:
    """The call a process is in, from /proc/PID/syscall: number, name and its arguments."""

    number: int
    name: str
    args: tuple[int, ...]


def _read(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return f.read()
    except FileNotFoundError:
        raise ProcessGone(f"no process {pid}") from None
    except ProcessLookupError:
        raise ProcessGone(f"no process {pid}") from None


def state(pid: int) -> str:
    """The one-letter state of /proc/PID/stat (R, S, D, T...)."""
    text = _read(pid, "stat")
    return text[text.rindex(")") + 2]


def thread_group(pid: int) -> int:
    """The process a task id belongs to (a thread's id is not its process's pid)."""
    for line in _read(pid, "status").splitlines():
        if line.startswith("Tgid:"):
            return int(line.split()[1])
    return pid


def parent_pid(pid: int) -> int:
    text = _read(pid, "stat")
    return int(text[text.rindex(")") + 2 :].split()[1])


def start_time(pid: int) -> int:
    """Clock ticks after boot at which the process started: with the pid, who it is."""
    text = _read(pid, "stat")
    return int(text[text.rindex(")") + 2 :].split()[19])


def command_line(pid: int) -> list[str]:
    return [part for part in _read(pid, "cmdline").split("\0") if part]


def system_call(pid: int) -> SystemCall | None:
    """The call the process (its main thread) is in; None when it is running in user space.

    Reading it needs the right to trace the process (ours: a parent may, root may).
    """
    fields = _read(pid, "syscall").split()
    if not fields or fields[0] in ("running", "-1"):
        return None
    number = int(fields[0])
    return SystemCall(number, name_of(number), tuple(int(a, 16) for a in fields[1:7]))


def wait_channel(pid: int) -> str:
    """The kernel function the process sleeps in (/proc/PID/wchan), "" when it does not."""
    text = _read(pid, "wchan").strip()
    return "" if text in ("0", "") else text


def fd_target(pid: int, fd: int) -> str:
    """What descriptor ``fd`` of ``pid`` is: "pipe:[123]", "socket:[456]", a path."""
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except FileNotFoundError:
        return ""


def descriptors(pid: int) -> dict[int, str]:
    """Every descriptor of the process and its target."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        raise ProcessGone(f"no process {pid}") from None
    return {int(name): fd_target(pid, int(name)) for name in names}


def mapping_of(pid: int, address: int) -> str:
    """The file mapped at ``address`` in the process (/proc/PID/maps), "" when anonymous."""
    for line in _read(pid, "maps").splitlines():
        parts = line.split(maxsplit=5)
        low, high = (int(x, 16) for x in parts[0].split("-"))
        if low <= address < high:
            return parts[5].strip() if len(parts) == 6 else ""
    return ""
