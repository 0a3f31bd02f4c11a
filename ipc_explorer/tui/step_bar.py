"""Step mode in the app: the bar that drives it and shows it.

The bar owns the session's Stepper while step mode is on: a press enters step mode (both
children held at the barrier), each next press moves the message one stage, and leaving lets
the flow go on. It shows the stages of the message with the current one marked, what just
happened in one line, and what the kernel holds now with where that figure comes from; it
posts StageDone so that the app can point at the panel the stage concerns.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from ipc_explorer.explain import step as words
from ipc_explorer.session import Session
from ipc_explorer.teach.step import ONE_WAY, StageReport, StepError, Stepper

#: Kernel facts worth a glance, in this order; the why screen (w) shows them all.
GLANCE = (
    "consumer_queued_bytes",
    "queued_bytes",
    "next_datagram_bytes",
    "queue_depth",
    "full",
    "empty",
)


class StepBar(Static):
    """Hidden until step mode; ``press`` enters it or moves one stage, ``leave`` ends it."""

    class StageDone(Message):
        def __init__(self, report: StageReport) -> None:
            super().__init__()
            self.report = report

    class Left(Message):
        """Step mode is over (left by the user, or the session went away)."""

    report: reactive[StageReport | None] = reactive(None)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stepper: Stepper | None = None
        self.busy = False
        #: The stages of a message in the current pattern, as the bar lists them.
        self.stages: tuple[str, ...] = ONE_WAY

    @property
    def active(self) -> bool:
        return self.stepper is not None

    @work(exclusive=False, group="step")
    async def press(self, session: Session) -> None:
        """Enter step mode on ``session``, or move the message one stage."""
        if self.busy:
            self.notify("a stage is still under way", severity="warning", timeout=2)
            return
        self.busy = True
        try:
            if self.stepper is None or self.stepper.session is not session:
                self.reset()
                stepper = Stepper(session)
                self.stepper = stepper
                self.stages = stepper.stages
                self.add_class("-shown")
                self.update(self._line(None, "entering step mode: holding both processes…"))
                await stepper.enter()
                self.update(self._line(None, words.ENTERED + ". Press . for each stage."))
                return
            report = await self.stepper.advance()
            self.report = report
            self.post_message(self.StageDone(report))
        except Exception as exc:  # a stage that fails must not take the app with it
            text = str(exc) if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
            self.notify(text, title="step mode", severity="error")
            await self.leave()
        finally:
            self.busy = False

    async def leave(self) -> None:
        """Let both children go: the flow resumes at its rate."""
        stepper, self.stepper = self.stepper, None
        if stepper is not None:
            await stepper.leave()
            stepper.close()
        self.report = None
        self.remove_class("-shown")
        self.post_message(self.Left())

    def reset(self) -> None:
        """The session is being replaced: forget its stepper without talking to it."""
        if self.stepper is not None:
            self.stepper.close()
            self.stepper = None
            self.report = None
            self.remove_class("-shown")
            self.post_message(self.Left())

    def watch_report(self, report: StageReport | None) -> None:
        if report is not None:
            self.update(self._line(report, report.narration))

    def _line(self, report: StageReport | None, said: str) -> Text:
        stages = self.stages
        line = Text()
        line.append(" STEP ", "bold reverse")
        line.append(f" message {report.seq} " if report else " ")
        done = stages.index(report.stage) if report else -1
        for index, stage in enumerate(stages):
            if index:
                line.append(" › ")
            if index == done:
                line.append(stage, "bold reverse")
            elif index < done:
                line.append(stage, "bold")
            else:
                line.append(stage)
        line.append("\n")
        line.append(said)
        if report is not None:
            facts = report.kernel.values()
            shown = [name for name in GLANCE if name in facts]
            if shown:
                sources = report.kernel.sources()
                line.append("\nkernel: ", "bold")
                line.append(", ".join(f"{name} {facts[name]}" for name in shown))
                line.append(f"  ({sources[shown[0]]})")
        line.append("\n. next stage · space leaves step mode · w why", "italic")
        return line
