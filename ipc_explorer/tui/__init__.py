"""The Textual app: panels fed by the engine's state, never doing IPC themselves."""

import os

# Textual paces screen updates on a grid of 1/TEXTUAL_FPS, and after a frame the next one can
# come only one to two periods later. The panels repaint at 10 Hz, so a key press often lands
# just after a frame and waits for that window: at 120 (Textual's default is 60) the wait is
# halved (benchmarks/ui_latency.py: p99 key to screen 54-63 ms -> 44-46 ms at full rate).
# It must be set before Textual is first imported, which is why it is here.
os.environ.setdefault("TEXTUAL_FPS", "120")
