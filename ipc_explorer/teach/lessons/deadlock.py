"""Two locks taken in opposite order deadlock; one global order fixes it."""

from __future__ import annotations

from ipc_explorer.lab.config import ContendConfig
from ipc_explorer.teach.lessons.base import Check, Lesson, contend


class Deadlock(Lesson):
    name = "deadlock"
    face = "lab"

    def lab_config(self) -> ContendConfig:
        return ContendConfig(scenario="deadlock", lock="sem", workers=2)

    async def check(self) -> list[Check]:
        stuck = await contend(ContendConfig(scenario="deadlock", lock="sem", workers=2))
        fixed = await contend(
            ContendConfig(scenario="deadlock", lock="sem", workers=2, fix="order")
        )
        cycle = stuck.get("cycle", [])
        return [
            Check(
                "each worker holds one lock and waits for the other's: a cycle, a deadlock",
                {
                    "deadlock_detected": stuck["deadlock_detected"],
                    "cycle": [
                        f"worker {e['worker']} waits for {e['waits_for_lock']}, held by worker "
                        f"{e['held_by_worker']}"
                        for e in cycle
                    ],
                    "rounds_done": stuck["actual"],
                    "rounds_asked": stuck["expected"],
                },
                stuck["deadlock_detected"] and len(cycle) == 2,
            ),
            Check(
                "taking the locks in one global order, every round completes",
                {
                    "deadlock_detected": fixed["deadlock_detected"],
                    "rounds_done": fixed["actual"],
                    "rounds_asked": fixed["expected"],
                },
                not fixed["deadlock_detected"]
                and fixed["state"] == "finished"
                and fixed["actual"] == fixed["expected"],
            ),
        ]
