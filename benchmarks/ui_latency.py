"""Does the app stay responsive at full rate, and does its memory stay flat?

Runs `ipc-explorer` on a pseudo-terminal of 120x36 (what a terminal emulator gives it), raises
the rate to "as fast as possible", then presses `space` (pause the flow) many times and
measures the time from writing the key to the terminal to the app writing the changed header
("[paused]") back: the app's whole key-to-screen path, without a terminal emulator's own
delay. Then samples the app's RSS for a while and prints the trend.

    python benchmarks/ui_latency.py --presses 100 --minutes 10
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import random
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipc_explorer.telemetry.percentiles import summary  # noqa: E402


class Terminal:
    """A pty the app draws on; a thread drains it (an undrained pty would block the app)."""

    def __init__(self, argv: list[str], cols: int = 120, rows: int = 36):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", PYTHONPATH=str(ROOT), COLUMNS=str(cols))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._events: list[tuple[float, bytes]] = []
        self._stop = False
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            now = time.monotonic()
            with self._lock:
                self._buf += data
                self._events.append((now, data))
                if len(self._buf) > 1 << 20:
                    del self._buf[: len(self._buf) - (1 << 19)]

    def press(self, key: bytes) -> float:
        with self._lock:
            self._events.clear()
        sent = time.monotonic()
        os.write(self.master, key)
        return sent

    def wait_for(self, needle: bytes, since: float, timeout: float = 5.0) -> float:
        """Monotonic time of the first output chunk after ``since`` containing ``needle``."""
        deadline = time.monotonic() + timeout
        tail = b""
        while time.monotonic() < deadline:
            with self._lock:
                events = list(self._events)
            for at, data in events:
                if at >= since and needle in tail + data:
                    return at
                tail = data[-len(needle) :]
            time.sleep(0.0005)
        raise TimeoutError(f"{needle!r} did not appear")

    def seen(self, needle: bytes) -> bool:
        with self._lock:
            return needle in self._buf

    def close(self) -> None:
        os.write(self.master, b"q")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._stop = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mechanism", default="pipe")
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate-steps",
        type=int,
        default=3,
        help="'+' presses from the app's 100/s (3 reaches 'as fast as possible'; -2 gives 1/s)",
    )
    args = parser.parse_args(argv)
    term = Terminal([sys.executable, "-m", "ipc_explorer", "--mechanism", args.mechanism])
    try:
        start = time.monotonic()
        while not term.seen(b"received"):
            assert time.monotonic() - start < 15, "the app did not start"
            time.sleep(0.05)
        for _ in range(abs(args.rate_steps)):
            term.press(b"+" if args.rate_steps > 0 else b"-")
            time.sleep(0.3)
        time.sleep(3)
        app = psutil.Process(term.proc.pid)
        children = app.children()
        cpu_before = {c.pid: sum(c.cpu_times()[:2]) for c in children}
        app_before = sum(app.cpu_times()[:2])
        timed_from = time.monotonic()
        latencies = []
        for _ in range(args.presses):
            sent = term.press(b" ")
            shown = term.wait_for(b"flow paused", sent)
            latencies.append((shown - sent) * 1000)
            time.sleep(0.15)
            term.press(b" ")  # resume (not timed: the header loses text, harder to spot)
            # A random gap: a fixed one phase-locks the presses to the app's 10 Hz refresh,
            # and every press of a run then lands at the same point of the refresh cycle.
            time.sleep(random.uniform(0.25, 0.45))
        # Where the CPU went while the keys were timed: proof the flow ran at full rate.
        wall = time.monotonic() - timed_from
        cpu = {"app": round((sum(app.cpu_times()[:2]) - app_before) / wall * 100)}
        for child in children:
            role = "sender" if "sender" in child.cmdline() else "receiver"
            cpu[role] = round((sum(child.cpu_times()[:2]) - cpu_before[child.pid]) / wall * 100)
        rss: list[tuple[float, float]] = []
        began = time.monotonic()
        end = began + args.minutes * 60
        while True:
            rss.append(((time.monotonic() - began) / 60, app.memory_info().rss / 2**20))
            if time.monotonic() >= end:
                break
            time.sleep(min(10, max(end - time.monotonic(), 0)))
    finally:
        term.close()
    marks = [r for r in rss if r[0] >= 0] if rss else []
    trend = {f"{m:.0f} min": round(v, 1) for m, v in marks[:: max(1, len(marks) // 10)]}
    result = {
        "mechanism": args.mechanism,
        "presses": len(latencies),
        "key_to_screen_ms": {k: round(v, 1) for k, v in summary(latencies).items()},
        "cpu_percent_while_timed": cpu,
        "rss_mib": {"trend": trend, "first": round(rss[0][1], 1), "last": round(rss[-1][1], 1)},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
