"""Names of the system calls a process of ours can be blocked in, by number, for the machine
this runs on (/proc/PID/syscall gives the number). Only the calls worth explaining are named;
any other is shown by its number."""

from __future__ import annotations

import platform

_X86_64 = {
    0: "read", 1: "write", 7: "poll", 19: "readv", 20: "writev", 23: "select",
    34: "pause", 35: "nanosleep", 42: "connect", 43: "accept", 44: "sendto",
    45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 61: "wait4", 64: "semget", 65: "semop",
    202: "futex", 220: "semtimedop", 230: "clock_nanosleep", 232: "epoll_wait",
    242: "mq_timedsend", 243: "mq_timedreceive", 257: "openat", 270: "pselect6",
    271: "ppoll", 281: "epoll_pwait", 288: "accept4", 307: "sendmmsg", 299: "recvmmsg",
    422: "futex_time64", 449: "futex_waitv",
}  # fmt: skip
_AARCH64 = {
    63: "read", 64: "write", 65: "readv", 66: "writev", 73: "ppoll", 72: "pselect6",
    98: "futex", 101: "nanosleep", 115: "clock_nanosleep", 182: "mq_timedsend",
    183: "mq_timedreceive", 193: "semop", 192: "semtimedop", 202: "accept", 203: "connect",
    206: "sendto", 207: "recvfrom", 211: "sendmsg", 212: "recvmsg", 242: "accept4",
    22: "epoll_pwait", 56: "openat", 260: "wait4", 449: "futex_waitv",
}  # fmt: skip
NAMES = {"x86_64": _X86_64, "aarch64": _AARCH64}.get(platform.machine(), {})

#: Calls whose first argument is the descriptor they wait on.
ON_A_DESCRIPTOR = {
    "read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "sendmmsg", "recvmmsg", "accept", "accept4", "connect", "mq_timedsend", "mq_timedreceive",
}  # fmt: skip
#: What a call does, in the words of a sentence: "blocked in write(2)".
WRITES = {"write", "writev", "sendto", "sendmsg", "sendmmsg", "mq_timedsend"}
READS = {"read", "readv", "recvfrom", "recvmsg", "recvmmsg", "mq_timedreceive"}


def name_of(number: int) -> str:
    return NAMES.get(number, f"syscall {number}")


def manual_name(call: str) -> str:
    """How a man page names it: write(2); the mq calls are library calls over mq_timed*."""
    return f"{call}(3)" if call.startswith("mq_") else f"{call}(2)"
