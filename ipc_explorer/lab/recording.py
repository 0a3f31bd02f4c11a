"""Recording a contention-lab run as it happens (the file format: telemetry/recording.py).

What the run hears through its tap is written as it comes: the locks and workers it makes, each
worker's report, each reading of the board and the locks (20 Hz), lab events (deadlock, error,
step mode, pause); the run's facts (state, error, cycle) when they change; first the state so
far, when the recording starts mid-run; at the end the state the summary was made from, then
the summary. A replay folds the same records through the same code (lab/replay.py).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from ipc_explorer.lab.config import ContendConfig
from ipc_explorer.lab.stats import LockStats, WorkerView
from ipc_explorer.telemetry.histogram import Histogram
from ipc_explorer.telemetry.recording import DEFAULT_LIMIT_MIB, Recorder

#: Record kinds of a lab recording (others, from a newer writer, are skipped).
KINDS = (
    "state", "lock", "worker", "report", "exit", "sample", "run", "event", "why", "note", "end",
)  # fmt: skip
#: The run's facts besides what workers and samples say: written when they change.
FACTS = ("state", "error", "cycle", "detected_after_s", "stepping")


def config_to_dict(config: ContendConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(config)}


def histogram_to_dict(h: Histogram) -> dict[str, Any]:
    """Everything of a histogram (its sum too: merged delta by delta, it is not the buckets')."""
    return {"counts": dict(h.counts), "total": h.total, "sum": h.sum, "max": h.max, "min": h.min}


def histogram_from_dict(values: dict[str, Any]) -> Histogram:
    h = Histogram()
    h.counts = {int(b): n for b, n in values["counts"].items()}
    h.total, h.sum, h.max, h.min = (values[k] for k in ("total", "sum", "max", "min"))
    return h


def worker_to_dict(w: WorkerView) -> dict[str, Any]:
    return {
        "index": w.index,
        "role": w.role,
        "pid": w.pid,
        "state": w.state,
        "done": w.done,
        "events": w.events,
        "paused": w.paused,
        "exit_code": w.exit_code,
        "timeline": list(w.timeline),
        "final": w.final,
        "acq": dict(w.acq),
    }


def lock_to_dict(s: LockStats) -> dict[str, Any]:
    return {
        "kind": s.kind,
        "value": s.value,
        "kernel_waiters": s.kernel_waiters,
        "kernel_last_pid": s.kernel_last_pid,
        "holders": list(s.holders),
        "waiting": list(s.waiting),
        "acquisitions": s.acquisitions,
        "acq_per_s": s.acq_per_s,
        "wait": histogram_to_dict(s.wait),
        "hold": histogram_to_dict(s.hold),
        "history": list(s.history),
    }


def run_facts(run: Any) -> dict[str, Any]:
    return {
        "state": run.state,
        "error": run.error,
        "cycle": run.cycle,
        "detected_after_s": run.cycle_detected_after_s,
        "stepping": run.stepping,
    }


def run_state(run: Any) -> dict[str, Any]:
    """All a run knows so far, as plain values: a recording that starts mid-run starts here."""
    return {
        "run": {**run_facts(run), "elapsed_s": run.elapsed_s(), "counter": run.last_counter},
        "workers": [worker_to_dict(w) for w in run.workers],
        "locks": {label: lock_to_dict(s) for label, s in run.stats.items()},
    }


def plain(value: Any) -> Any:
    """A value as JSON has it (a why-blocked diagnosis may hold tuples or paths)."""
    return json.loads(json.dumps(value, default=str))


class LabRecorder(Recorder):
    """Records one ContendRun through its tap; ``close`` ends the file with the summary."""

    def __init__(
        self, run: Any, path: str | Path, limit_mib: float = DEFAULT_LIMIT_MIB, **about: Any
    ) -> None:
        """``about``: more of the header (``command="contend"``, or the app's)."""
        header = {"kind": "lab", "config": config_to_dict(run.config)}
        super().__init__(path, header, limit_mib, **about)
        self.run = run
        self._facts: dict[str, Any] = run_facts(run)
        self.closed = False
        self.guarded(self.writer.add, "state", **run_state(run))
        run.tap = self._on_tap

    async def before_flush(self) -> None:
        self._note_facts()

    def _on_tap(self, kind: str, values: dict[str, Any]) -> None:
        self._note_facts()
        self.guarded(self.writer.add, kind, **values)

    def _note_facts(self) -> None:
        facts = run_facts(self.run)
        changed = {k: v for k, v in facts.items() if self._facts.get(k) != v}
        if changed:
            self._facts.update(changed)
            self.guarded(self.writer.add, "run", **changed)

    def add_why(self, diagnoses: list[dict[str, Any]]) -> None:
        """What the why-blocked screen showed (Diagnosis.as_json of each worker)."""
        if not self.closed:
            self.guarded(self.writer.add, "why", diagnoses=plain(diagnoses))

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """The run's last facts (what its summary was made from), then the summary (the run's
        result now, unless given: the one printed)."""
        if self.closed:
            return
        self.closed = True
        self.stop_timer()
        if self.run.tap == self._on_tap:
            self.run.tap = None
        run = self.run
        if summary is None:
            summary = run.result()
        elapsed = run.elapsed_s()
        if not run.ended_at and isinstance(summary.get("elapsed_s"), float):
            elapsed = summary["elapsed_s"]  # still going: the moment the summary was taken
        final = {**run_facts(run), "elapsed_s": elapsed, "counter": run.last_counter}
        self.guarded(self.writer.add, "run", **final)
        self.guarded(self.writer.close, {"summary": summary})
