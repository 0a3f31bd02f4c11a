"""Modal screens: inject a payload, pick a mechanism or format, help, explain."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown, OptionList, Static


class InjectScreen(ModalScreen[Any]):
    """A JSON payload typed by the user; nothing is sent unless it parses (and fits)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "Input"

    def __init__(self, initial: str, check: Any) -> None:
        super().__init__()
        self._initial = initial
        self._check = check  # value -> error text or None (encodable, within the limit)

    def compose(self) -> ComposeResult:
        with Vertical(id="inject-box", classes="dialog"):
            yield Label("Inject a message: type a payload in JSON syntax, Enter sends it")
            yield Input(self._initial, id="inject-input")
            yield Static("", id="inject-error")
            with Horizontal(classes="buttons"):
                yield Button("Send", variant="primary", id="send")
                yield Button("Cancel", id="cancel")

    def _validate(self) -> Any:
        text = self.query_one(Input).value
        error = self.query_one("#inject-error", Static)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            error.update(f"[red]invalid JSON at column {exc.colno}: {exc.msg}[/]")
            return None
        problem = self._check(value)
        if problem:
            error.update(f"[red]{problem}[/]")
            return None
        error.update("")
        return value

    def on_input_changed(self) -> None:
        self._validate()

    def on_input_submitted(self) -> None:
        self._send()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            self._send()
        else:
            self.dismiss(None)

    def _send(self) -> None:
        value = self._validate()
        if value is not None:
            self.dismiss({"payload": value})

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen[str | None]):
    """Pick one name from a list (mechanism, format, pattern)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "OptionList"

    def __init__(self, title: str, names: list[str], current: str) -> None:
        super().__init__()
        self._title = title
        self._names = names
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title)
            yield OptionList(*self._names, id="choices")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = self._names.index(self._current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._names[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextScreen(ModalScreen[None]):
    """Help and explain: Markdown, closed with Escape or q."""

    BINDINGS = [Binding("escape,q,question_mark,f1,e", "close", "Close")]
    AUTO_FOCUS = "VerticalScroll"

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self._markdown = markdown

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog text-dialog"):
            yield Markdown(self._markdown)

    def action_close(self) -> None:
        self.dismiss(None)


def keys_help(bindings: list[Any], notes: list[str]) -> str:
    """The help screen's text: a table of the keys, then ``notes``."""
    lines = ["# Keys", "", "| key | action |", "|---|---|"]
    names = {
        "question_mark": "?",
        "equals_sign": "=",
        "right_square_bracket": "]",
        "left_square_bracket": "[",
        "full_stop": ".",
        "comma": ",",
        "less_than_sign": "<",
        "greater_than_sign": ">",
    }
    for binding in bindings:
        keys = binding.key
        for name, char in names.items():
            keys = keys.replace(name, char)
        lines.append(f"| `{keys}` | {binding.description} |")
    return "\n".join([*lines, *notes])
