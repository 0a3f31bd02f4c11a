"""The floor's command line: one measurement, printed as a line or as one JSON object.

    python -m ipc_explorer.floor --mechanism tcp --pattern ping-pong --size 100 --count 20000

The same program, with ``--role``, is each of the two children the parent starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ipc_explorer import floor
from ipc_explorer.floor.child import run_child
from ipc_explorer.floor.protocol import DEFAULT_TIMEOUT_S, MECHANISMS, PATTERNS, ROLES, FloorError
from ipc_explorer.floor.runner import format_result, run_floor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipc_explorer.floor", description=(floor.__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--mechanism", required=True, choices=MECHANISMS)
    parser.add_argument("--pattern", required=True, choices=PATTERNS)
    parser.add_argument("--size", required=True, type=int, help="wire bytes per message")
    parser.add_argument("--count", required=True, type=int, help="messages to time")
    parser.add_argument("--pin", metavar="S,R", help="pin sender and receiver to these CPUs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    # Used by the parent to start its two children.
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=ROLES, help=hidden)
    parser.add_argument("--setup", help=hidden)
    parser.add_argument("--cpu", type=int, help=hidden)
    parser.add_argument("--parent-pid", type=int, help=hidden)
    args = parser.parse_args(argv)
    if args.role:
        run_child(
            args.role,
            args.mechanism,
            args.pattern,
            args.size,
            args.count,
            args.setup,
            args.cpu,
            args.parent_pid,
        )
        return 0
    try:
        result = run_floor(
            args.mechanism, args.pattern, args.size, args.count, args.pin, timeout=args.timeout
        )
    except FloorError as error:
        print(f"floor: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("floor: interrupted; children stopped, kernel objects removed", file=sys.stderr)
        return 130
    print(json.dumps(result) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
