"""A shared counter loses updates without a lock and none with one."""

from __future__ import annotations

from ipc_explorer.lab.config import ContendConfig
from ipc_explorer.teach.lessons.base import Check, Lesson, contend

SHOWN = ("workers", "iterations", "expected", "actual", "lost_updates")


class LostUpdates(Lesson):
    name = "lost-updates"
    face = "lab"

    def lab_config(self) -> ContendConfig:
        return ContendConfig(scenario="counter", lock="none")

    async def check(self) -> list[Check]:
        unguarded = await contend(ContendConfig(scenario="counter", lock="none"))
        guarded = await contend(ContendConfig(scenario="counter", lock="sem"))

        def seen(result: dict) -> dict:
            return {k: result[k] for k in SHOWN}

        return [
            Check(
                "without a lock, increments are lost",
                seen(unguarded),
                unguarded["state"] == "finished" and unguarded["lost_updates"] > 0,
            ),
            Check(
                "with a semaphore as a mutex, none is lost",
                seen(guarded),
                guarded["state"] == "finished"
                and guarded["lost_updates"] == 0
                and guarded["actual"] == guarded["expected"],
            ),
        ]
