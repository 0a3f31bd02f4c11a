"""Entry point of a child: ``python -m ipc_explorer.children --role sender|receiver|contender``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from ipc_explorer.children.runtime import StopRequested, die_with_parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ipc_explorer.children")
    parser.add_argument("--role", choices=["sender", "receiver", "contender"], required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--telemetry-fd", type=int, help="sender and receiver only")
    parser.add_argument("--config", required=True, help="JSON: plan, format, pattern, size...")
    args = parser.parse_args(argv)
    if args.role == "contender":  # it asks for its parent's death signal once it can clean up
        from ipc_explorer.children import contender

        os._exit(contender.main(json.loads(args.config), args.parent_pid))
    die_with_parent(args.parent_pid)

    from ipc_explorer.children.receiver import Receiver
    from ipc_explorer.children.sender import Sender
    from ipc_explorer.transports import TransportError

    runtime = (Sender if args.role == "sender" else Receiver)(args)
    runtime.install_signals()
    code = 0
    try:
        runtime.start_control_thread()
        runtime.start_status_thread()
        runtime.run()
    except StopRequested:
        pass
    except TransportError as exc:
        runtime.in_loop = False
        if not runtime.stopping:
            runtime.state = "error"
            runtime.event("error", str(exc), reason=getattr(exc, "reason", "error"))
            code = 3
    except Exception as exc:  # report, never die silently
        runtime.in_loop = False
        # posix_ipc raises SignalError when the stop signal cuts a blocking wait: a normal stop.
        if not runtime.stopping:
            runtime.state = "error"
            runtime.event("error", f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            code = 4
    finally:
        runtime.in_loop = False
        try:
            if runtime.state not in ("error", "done"):
                runtime.state = "stopped"
            runtime.write_record()
        except Exception:
            pass
        runtime.cleanup()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
