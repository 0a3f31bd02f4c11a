"""A lesson's text beside the live panels: what to watch, what to press, the question for
the class; the answer shows behind a key (a), so that the class can think first."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ipc_explorer.explain.lessons import LessonText


class LessonPanel(Static):
    answer_shown: reactive[bool] = reactive(False)

    def __init__(self, name: str, text: LessonText, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lesson_name = name
        self.text = text

    def on_mount(self) -> None:
        self.border_title = f"Lesson: {self.text.title}"
        self.border_subtitle = "a: the answer"
        self.update(self._body())

    def watch_answer_shown(self) -> None:
        self.update(self._body())

    def _body(self) -> Text:
        t = self.text
        body = Text()
        for label, words in (("Watch", t.watch), ("Press", t.press), ("Ask", t.question)):
            body.append(f"{label}: ", "bold")
            body.append_text(with_keys(words))
            body.append("\n")
        if self.answer_shown:
            body.append("Answer: ", "bold")
            body.append(t.answer)
        else:
            body.append("(a shows the answer)", "italic")
        return body


def with_keys(words: str) -> Text:
    """The text with each `key` in bold, without its backquotes."""
    out = Text()
    for index, part in enumerate(words.split("`")):
        out.append(part, "bold reverse" if index % 2 else "")
    return out
