"""The app's two looks: the default (Textual's dark theme) and ``projector``, high contrast
for a classroom, where dim grey text vanishes and thin colours wash out.

A Textual theme colours what CSS draws (borders, header, footer, tables); the panels draw
their own figures as Rich text, so each theme also has a ``Palette`` of Rich styles, one
per role a piece of text plays, looked up by the theme's name when a panel draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.theme import Theme

from ipc_explorer.session import UsageError
from ipc_explorer.tui.span_style import SPAN_STYLE

#: The names ``--theme`` accepts, and the Textual theme each one stands for.
THEMES = {"default": "textual-dark", "projector": "projector"}

PROJECTOR_THEME = Theme(
    name="projector",
    primary="#00d7ff",
    secondary="#ffffff",
    accent="#ffff00",
    warning="#ffff00",
    error="#ff4040",
    success="#00ff00",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1c1c1c",
    dark=True,
    text_alpha=1.0,
    variables={
        "text-muted": "#ffffff",
        "foreground-muted": "#ffffff",
        "block-cursor-foreground": "#000000",
        "block-cursor-background": "#ffff00",
        "block-cursor-blurred-foreground": "#ffffff",
        "block-cursor-blurred-background": "#005f87",
        "footer-key-foreground": "#ffff00",
        "footer-description-foreground": "#ffffff",
        "border-blurred": "#00d7ff",
        "scrollbar": "#00d7ff",
        "scrollbar-hover": "#ffff00",
        "input-selection-background": "#00d7ff 50%",
    },
)


@dataclass(frozen=True)
class Palette:
    """Rich styles by role: what a piece of text is, not what colour it has."""

    heading: str  # a block's title: "latency (one way) µs"
    label: str  # a figure's name: "p50", "lost", "last second:"
    number: str  # a figure that is the point: counts, percentiles, a semaphore's value
    hint: str  # a remark: "no messages yet", "the kernel does the waiting"
    quiet: str  # offsets beside the bytes, a stopped process
    object: str  # the kernel object's name
    good: str
    warn: str
    bad: str  # a count that should be zero and is not: lost, dropped, corrupt
    alarm: str  # a process blocked, killed, in error
    bar: str  # histogram bars
    flagged: str  # the sequence number of an injected message
    payload: str  # the size line's payload part
    framing: str  # the size line's framing part
    stages: dict[str, str] = field(default_factory=dict)
    spans: dict[str, str] = field(default_factory=dict)

    def state(self, state: str) -> str:
        """A process state's style: running is good, killed an alarm, stopped quiet."""
        role = {
            "running": self.good,
            "ready": self.warn,
            "paused": self.warn,
            "done": self.object,
            "stopped": self.quiet,
            "peer-closed": self.bad,
            "error": self.alarm,
            "killed": self.alarm,
            "exited": self.bad,
        }
        return role.get(state, "")


DEFAULT_PALETTE = Palette(
    heading="bold",
    label="grey62",
    number="bold",
    hint="dim",
    quiet="grey50",
    object="cyan",
    good="green",
    warn="yellow",
    bad="red",
    alarm="bold red",
    bar="cyan",
    flagged="bold yellow",
    payload="bold green",
    framing="bold magenta",
    stages={
        "serialize": "yellow",
        "transmit": "magenta",
        "deserialize": "green",
        "sync_wait": "red",
        "confirm": "cyan",
        "ack": "blue",
        "connect": "bright_blue",
        "handshake": "bright_magenta",
    },
    spans=SPAN_STYLE,
)

#: White and yellow on black; saturated colours only where they mean something, bold where
#: a number is the point, nothing grey that a reader needs.
PROJECTOR_PALETTE = Palette(
    heading="bold #ffffff",
    label="#ffffff",
    number="bold #ffff00",
    hint="#ffffff",
    quiet="#ffffff",
    object="bold #00ffff",
    good="bold #00ff00",
    warn="bold #ffff00",
    bad="bold #ff4040",
    alarm="bold reverse #ff4040",
    bar="#00ffff",
    flagged="bold reverse #ffff00",
    payload="bold #00ff00",
    framing="bold #ff00ff",
    stages={
        "serialize": "#ffff00",
        "transmit": "#ff00ff",
        "deserialize": "#00ff00",
        "sync_wait": "#ff4040",
        "confirm": "#00ffff",
        "ack": "#ffffff",
        "connect": "#5fd7ff",
        "handshake": "#ff87ff",
    },
    spans=SPAN_STYLE
    | {
        "framing": "#ff00ff",
        "header": "#ffff00",
        "length": "#00ffff",
        "key": "bold #5fd7ff",
        "string": "#00ff00",
        "int": "#00ffff",
        "float": "#00ffff",
        "bool": "#ff4040",
        "null": "#ff4040",
        "bytes": "#ffffff",
        "punct": "#ffffff",
        "whitespace": "#ffffff",
        "tag": "#5fd7ff",
        "attr": "#00ffff",
        "comment": "italic #ffffff",
    },
)

_PALETTES = {"textual-dark": DEFAULT_PALETTE, "projector": PROJECTOR_PALETTE}


def textual_theme(name: str) -> str:
    """The Textual theme for a ``--theme`` name; UsageError for a name it does not know."""
    if name not in THEMES:
        raise UsageError(f"unknown theme {name!r}; valid themes: {', '.join(THEMES)}")
    return THEMES[name]


def palette_for(theme: str) -> Palette:
    """The palette for a Textual theme name (any theme but projector draws as the default)."""
    return _PALETTES.get(theme, DEFAULT_PALETTE)
