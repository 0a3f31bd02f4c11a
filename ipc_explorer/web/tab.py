"""One browser tab's app: the server runs ``python -m ipc_explorer.web.tab --server-pid N --
ARGS``, which becomes ``python -m ipc_explorer ARGS`` once it is tied to the server.

It leaves the server's terminal session, so a ctrl+c there reaches the server alone, which
ends each tab in turn; and it asks the kernel for SIGTERM (the app's clean quit) should the
server die without ending it: an app is never left running with nobody to see it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "--server-pid" or argv[2] != "--":
        print("usage: python -m ipc_explorer.web.tab --server-pid N -- ARGS...", file=sys.stderr)
        return 2
    if os.getpgrp() != os.getpid():  # setsid refuses a process group leader
        os.setsid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(argv[1]):
        return 0  # the server went before the tie was made
    os.execv(sys.executable, [sys.executable, "-m", "ipc_explorer", *argv[3:]])
    return 127  # not reached: execv raises if it cannot run


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
