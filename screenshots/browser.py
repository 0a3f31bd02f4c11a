"""Write screenshots/browser.png: the app in a web browser, from a real ``ipc-explorer serve``
in the distribution's Chromium (``apt-get install chromium``; Playwright drives it, no browser
download).

    python screenshots/browser.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser import launch, open_tab, start_serve, stop_serve, wait_for_screen  # noqa: E402

#: The page's size in CSS pixels: the terminal fits 150 x 45 cells or so at the default font.
VIEWPORT = (1400, 900)
#: Seconds of flow before the picture, so that the timing panel has a histogram to show.
SETTLE_S = 4


def main() -> int:
    proc, url = start_serve("--mechanism", "shm", "--format", "json")
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page, _ = open_tab(browser, url, size=VIEWPORT)
            wait_for_screen(page, r"received [1-9]")
            page.wait_for_timeout(SETTLE_S * 1000)
            page.screenshot(path=str(HERE / "browser.png"))
            browser.close()
    finally:
        stop_serve(proc)
    print("wrote screenshots/browser.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
