"""Does the app stay responsive at full rate, and does its memory stay flat?

Runs `ipc-explorer` in a real terminal (tmux), raises the rate to "as fast as possible" on the
chosen mechanism, then presses `space` (pause/resume the flow) many times and measures the time
from the key press to the screen showing the change, by polling tmux's copy of the screen. Then
samples the app's RSS for a while.

    python benchmarks/ui_latency.py --presses 60 --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session: str, predicate, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate(screen(session)):
            return time.monotonic() - start
        time.sleep(0.001)
    raise TimeoutError("the screen did not change")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mechanism", default="mq")
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate-steps",
        type=int,
        default=3,
        help="'+' presses from the app's 100/s: 3 reaches 'as fast as possible', -2 gives 1/s",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    session = f"ipcx-ui-{os.getpid()}"
    env = f"PYTHONPATH={ROOT}"
    command = f"{env} {sys.executable} -m ipc_explorer --mechanism {args.mechanism}"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", command)
    try:
        wait_for(session, lambda s: "received" in s, 10)
        for _ in range(abs(args.rate_steps)):  # 100/s -> 1000 -> 10000 -> as fast as possible
            tmux("send-keys", "-t", session, "+" if args.rate_steps > 0 else "-")
            time.sleep(0.3)
        if args.rate_steps >= 3:
            wait_for(session, lambda s: "· max" in s)
        time.sleep(2)
        app = next(
            p
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"]
            and "ipc_explorer" in p.info["cmdline"]
            and "--mechanism" in p.info["cmdline"]
            and "tmux" not in p.info["cmdline"][0]
        )
        latencies = []
        for _ in range(args.presses):
            paused_now = "[paused]" in screen(session)
            sent = time.monotonic()
            tmux("send-keys", "-t", session, "space")
            wait_for(session, lambda s, want=not paused_now: ("[paused]" in s) == want)
            latencies.append((time.monotonic() - sent) * 1000)
            time.sleep(0.2)
        if "[paused]" in screen(session):
            tmux("send-keys", "-t", session, "space")
        rss = []
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            rss.append(app.memory_info().rss / 2**20)
            time.sleep(5)
        rss.append(app.memory_info().rss / 2**20)
        last_screen = screen(session)
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=False)
        time.sleep(3)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)
    latencies.sort()
    result = {
        "mechanism": args.mechanism,
        "presses": len(latencies),
        "key_to_screen_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
            "max": round(latencies[-1], 1),
        },
        "rss_mib": {
            "first": round(rss[0], 1),
            "last": round(rss[-1], 1),
            "max": round(max(rss), 1),
            "samples": len(rss),
            "minutes": args.minutes,
        },
        "rate_line": next(
            (line.strip() for line in last_screen.splitlines() if "msgs/s" in line), ""
        ),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
