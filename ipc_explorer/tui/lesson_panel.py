"""A lesson's text beside the live panels: what to watch, what to press, the question for
the class; the answer shows behind a key (a), so that the class can think first.

On a short screen (a projector's large font, 80x24) only what to press and the question are
shown, and the answer takes the question's place.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ipc_explorer.explain.lessons import LessonText

#: Below this many rows the panel keeps to what to press and the question (or the answer).
SHORT_SCREEN = 32


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

    def on_resize(self) -> None:
        self.update(self._body())

    def watch_answer_shown(self) -> None:
        self.update(self._body())

    def _body(self) -> Text:
        t = self.text
        short = self.app.size.height < SHORT_SCREEN
        sections = [] if short else [("Watch", t.watch)]
        sections.append(("Press", t.press))
        if self.answer_shown:
            sections += [] if short else [("Ask", t.question)]
            sections.append(("Answer", t.answer))
        else:
            sections.append(("Ask", t.question))
        body = Text()
        for index, (label, words) in enumerate(sections):
            if index:
                body.append("\n")
            body.append(f"{label}: ", "bold")
            body.append_text(with_keys(words))
        if not self.answer_shown and not short:
            body.append("\n(a shows the answer)", "italic")
        return body


def with_keys(words: str) -> Text:
    """The text with each `key` in bold and underlined, without its backquotes."""
    out = Text()
    for index, part in enumerate(words.split("`")):
        out.append(part, "bold underline" if index % 2 else "")
    return out
