"""Run another program tethered to the parent: ``python -m ipc_explorer.children.tethered
--parent-pid N -- PROGRAM ARGS...`` asks the kernel for SIGKILL when the parent dies, checks
that the parent is still there, then becomes the program (exec keeps the death signal).

Used for what the project starts that is not Python of its own (a private RabbitMQ node and
its epmd), so that a SIGKILLed parent leaves no broker behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--parent-pid" or argv[2] != "--":
        print("usage: tethered --parent-pid N -- PROGRAM ARGS...", file=sys.stderr)
        return 2
    parent, program = int(argv[1]), argv[3:]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        return 0
    os.execvp(program[0], program)
    return 127  # not reached: execvp raises if it cannot run the program


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
