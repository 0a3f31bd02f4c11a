"""``ipc-explorer serve`` driven from a real browser: the distribution's Chromium through
Playwright (never a downloaded browser), and the text of the page's terminal.

xterm.js draws on a canvas, so the text is read from its buffer; textual-serve keeps its
Terminal in a closure, so the page is given, before any of its scripts runs, a setter that
notices the object stored as ``terminal`` (as textual.js does: ``this.terminal = new
Terminal(...)``) and keeps it as ``window.__terminal``. Shared by tests/test_serve.py and
screenshots/browser.py.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent

CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {
      value, writable: true, configurable: true, enumerable: true,
    });
    if (value && value.buffer && value.buffer.active) window.__terminal = value;
  },
});
"""

READ_SCREEN = """() => {
  const term = window.__terminal;
  if (!term) return "";
  const buffer = term.buffer.active, lines = [];
  for (let row = 0; row < term.rows; row++) {
    const line = buffer.getLine(buffer.viewportY + row);
    lines.push(line ? line.translateToString(true) : "");
  }
  return lines.join("\\n");
}"""


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def open_tab(browser, url: str, size: tuple[int, int] = (1400, 900)):
    """A page on ``url`` (in a browser or a browser context) with the terminal catcher in
    place; returns (page, response)."""
    page = browser.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.add_init_script(CATCH_TERMINAL)
    return page, page.goto(url)


def screen_text(page) -> str:
    return page.evaluate(READ_SCREEN)


def wait_for_screen(page, pattern: str, timeout: float = 15.0) -> str:
    """The terminal's text once it matches ``pattern`` (a regular expression)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = screen_text(page)
        if re.search(pattern, text):
            return text
        page.wait_for_timeout(100)
    raise AssertionError(f"{pattern!r} not on the page's screen within {timeout} s:\n{text}")


def press(page, key: str) -> None:
    """A key typed into the terminal, as a user types it (the terminal has the focus)."""
    page.locator(".xterm-helper-textarea").focus()
    page.keyboard.press(key)


def start_serve(*args: str, timeout: float = 15.0) -> tuple[subprocess.Popen, str]:
    """``ipc-explorer serve --port 0 ARGS`` as a user runs it; returns it and the URL it
    printed (any free port: no race for one)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipc_explorer", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    out = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (found := re.search(rb"open (http://\S+) ", out)) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                stop_serve(proc)
                raise AssertionError(f"serve printed no URL within {timeout} s: {out!r}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                err = proc.stderr.read().decode()
                raise AssertionError(f"serve ended: {out.decode()}{err}")
            out += chunk
    return proc, found.group(1).decode()


def stop_serve(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 20.0) -> str:
    """Stop the server as ctrl+c does; what it printed after the URL."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _err = proc.communicate()
        raise AssertionError(f"serve did not stop within {timeout} s: {out.decode()}") from None
    return out.decode()
