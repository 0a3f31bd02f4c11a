"""Replaying a lab recording with no processes: every record checked for the types of what
replay reads (the file itself is checked by telemetry/recording.py), folded into a ContendRun
that never starts, through the same code the live run folds its workers' reports and its
readings of the board with; the lab's screen and its summary read it as they read a live run.
"""

from __future__ import annotations

import copy
from collections import deque
from pathlib import Path
from typing import Any

from ipc_explorer.lab.board import MAX_WORKERS, WAITING
from ipc_explorer.lab.record_checks import config_from_dict, record_problem
from ipc_explorer.lab.recording import KINDS, histogram_from_dict
from ipc_explorer.lab.run import ContendRun, describe_cycle
from ipc_explorer.lab.stats import TIMELINE_SAMPLES, LockStats, WorkerView
from ipc_explorer.telemetry.recording import (
    Anomaly,
    Recording,
    RecordingCursor,
    read_recording,
)

#: A worker waiting this long for one lock, without acquiring it once, is an anomaly.
BLOCKED_LONG_NS = 1_000_000_000


def read_lab_recording(path: str | Path) -> Recording:
    """A lab recording, every record checked for what replay reads from it."""
    recording = read_recording(path, "lab")
    recording.keep(KINDS, record_problem)
    return recording


# -- the run, again ------------------------------------------------------------------------------
class ReplayedRun(ContendRun):
    """A ContendRun that never starts: its workers, locks and facts are folded from recorded
    records with the live run's own code, so that the screen and ``result`` read it as they
    read the live one."""

    def __init__(self, header: dict[str, Any]) -> None:
        super().__init__(config_from_dict(header["config"]))
        self.host = str(header.get("host", "?"))
        self._elapsed = 0.0
        self.events: list[dict[str, Any]] = []
        #: The last step-mode event (a step, or step mode on or off), for the screen's note.
        self.last_step: dict[str, Any] | None = None
        #: The last why-blocked snapshot (Diagnosis.as_json of each worker).
        self.why: list[dict[str, Any]] | None = None

    # a replay has no processes and no kernel objects
    async def start(self) -> None:
        raise RuntimeError("a replayed run does not start")

    async def stop(self) -> None:
        return None

    def kill_now(self) -> None:
        return None

    def destroy(self) -> None:
        return None

    def elapsed_s(self) -> float:
        return self._elapsed

    def _worker(self, index: int) -> WorkerView | None:
        return next((w for w in self.workers if w.index == index), None)

    def _ensure_locks(self) -> None:
        """Every lock the config makes, whatever a damaged file left out."""
        if any(label not in self.stats for label in self.lock_order):
            old = self.stats
            kind = self.config.lock_kind
            self.stats = {
                label: old.get(label) or LockStats(label, kind) for label in self.lock_order
            }

    def fold(self, record: dict[str, Any]) -> None:
        kind = record["k"]
        if kind == "sample":
            self._ensure_locks()
            self.apply_sample(record, record["t"] / 1e9)
            self._elapsed = record["elapsed"]
        elif kind == "report":
            view = self._worker(record["worker"])
            if view is not None:
                self.fold_report(view, copy.deepcopy(record["report"]))
        elif kind == "exit":
            view = self._worker(record["worker"])
            if view is not None:
                view.exit_code = record["code"]
        elif kind == "worker":
            if record["index"] == len(self.workers) < MAX_WORKERS:
                self.workers.append(WorkerView(record["index"], record["role"], record["pid"]))
        elif kind == "lock":
            if record["label"] in self.lock_order:
                self.stats[record["label"]] = LockStats(record["label"], record["lock_kind"])
        elif kind == "run":
            self._set_facts(record)
        elif kind == "state":
            self._load(record)
        elif kind == "event":
            self._event(record)
        elif kind == "why":
            self.why = record["diagnoses"]

    def _event(self, record: dict[str, Any]) -> None:
        self.events.append(record)
        if record["what"] == "pause":
            for w in self.workers:
                if w.role in ("consumer", "reader") and w.exit_code is None:
                    w.paused = record["paused"]
        elif record["what"] in ("step", "step_mode"):
            self.last_step = record

    def _set_facts(self, facts: dict[str, Any]) -> None:
        names = {
            "state": "state",
            "error": "error",
            "cycle": "cycle",
            "detected_after_s": "cycle_detected_after_s",
            "stepping": "stepping",
            "elapsed_s": "_elapsed",
            "counter": "last_counter",
        }
        for name, attribute in names.items():
            if name in facts:
                setattr(self, attribute, copy.deepcopy(facts[name]))

    def _load(self, state: dict[str, Any]) -> None:
        """A recording begun mid-run: everything so far."""
        self._set_facts(state["run"])
        self.workers = []
        for w in state["workers"]:
            view = WorkerView(w["index"], w["role"], w["pid"], w["state"], w["done"], w["events"])
            view.paused, view.exit_code = w["paused"], w["exit_code"]
            view.timeline = deque(w["timeline"], maxlen=TIMELINE_SAMPLES)
            view.final, view.acq = copy.deepcopy(w["final"]), dict(w["acq"])
            self.workers.append(view)
        self.stats = {}
        for label in self.lock_order:
            s = state["locks"].get(label)
            if s is None:
                continue
            stats = LockStats(label, s["kind"], s["value"], s["kernel_waiters"])
            stats.kernel_last_pid = s["kernel_last_pid"]
            stats.holders, stats.waiting = list(s["holders"]), list(s["waiting"])
            stats.acquisitions, stats.acq_per_s = s["acquisitions"], s["acq_per_s"]
            stats.wait, stats.hold = histogram_from_dict(s["wait"]), histogram_from_dict(s["hold"])
            stats.history = deque(s["history"], maxlen=TIMELINE_SAMPLES)
            self.stats[label] = stats

    _SAVED = (
        "workers", "stats", "state", "error", "cycle", "cycle_detected_after_s", "stepping",
        "_elapsed", "last_counter", "_acq_mark", "events", "last_step", "why",
    )  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy({name: getattr(self, name) for name in self._SAVED})

    def restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in copy.deepcopy(snapshot).items():
            setattr(self, name, value)


# -- the moments worth jumping to ------------------------------------------------------------------
class _AnomalyWatch:
    """Compares the folded run after each record with what it was: a cycle found, an error,
    the first lost update or torn read, a worker stuck on one lock."""

    def __init__(self) -> None:
        self.cycle = False
        self.error = ""
        self.seen: set[str] = set()  # loss, torn: said once
        #: worker index -> (since, lock, its acquisitions then, said already)
        self.waits: dict[int, tuple[int, str, int, bool]] = {}

    def after(self, run: ReplayedRun, index: int, record: dict[str, Any]) -> list[Anomaly]:
        t, found = record["t"], []
        if run.cycle and not self.cycle:
            found.append(Anomaly(index, t, "deadlock", describe_cycle(run.cycle)))
        self.cycle = bool(run.cycle)
        if run.error and run.error != self.error:
            found.append(Anomaly(index, t, "error", run.error))
        self.error = run.error
        if record["k"] in ("sample", "report", "run", "state", "exit"):
            found += self._outcome(run, index, t)
        if record["k"] == "sample":
            found += self._blocked(run, index, t)
        return found

    def _outcome(self, run: ReplayedRun, index: int, t: int) -> list[Anomaly]:
        out = run.outcome()
        said = []
        lost = out.get("lost_updates", 0) or out.get("overwritten", 0) or out.get("duplicated", 0)
        if lost and "loss" not in self.seen:
            what = "lost updates" if run.config.scenario == "counter" else "items lost or doubled"
            said.append(Anomaly(index, t, "loss", f"{lost:,} {what}: fewer than expected"))
            self.seen.add("loss")
        if out.get("torn_reads") and "torn" not in self.seen:
            said.append(Anomaly(index, t, "torn", "a reader saw a torn record"))
            self.seen.add("torn")
        return said

    def _blocked(self, run: ReplayedRun, index: int, t: int) -> list[Anomaly]:
        said = []
        for w in run.workers:
            label = next(
                (lb for lb, s in run.stats.items() if w.state == WAITING and w.pid in s.waiting),
                None,
            )
            if label is None or w.exit_code is not None:
                self.waits.pop(w.index, None)
                continue
            acq = w.acq.get(label, 0)
            since, was, acq_then, told = self.waits.get(w.index, (t, label, acq, False))
            if (was, acq_then) != (label, acq):
                since, told = t, False
            if not told and t - since >= BLOCKED_LONG_NS:
                text = f"worker {w.index} (pid {w.pid}) has waited for {label} over 1 s"
                said.append(Anomaly(index, t, "block", text))
                told = True
            self.waits[w.index] = (since, label, acq, told)
        return said


class LabReplay(RecordingCursor):
    """A lab recording and a position in it (see RecordingCursor)."""

    def __init__(self, recording: Recording) -> None:
        """One pass to the end finds the anomalies and leaves checkpoints on the way."""
        super().__init__(recording)
        self.run = ReplayedRun(recording.header)
        watch = _AnomalyWatch()
        self.seek(0)
        for index in range(1, self.length + 1):
            self.seek(index)
            self.anomalies += watch.after(self.run, index, recording.records[index - 1])
        self.seek(0)

    def fold(self, record: dict[str, Any]) -> None:
        self.run.fold(record)

    def snapshot(self) -> dict[str, Any]:
        return self.run.snapshot()

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.run.restore(snapshot)

    def said(self) -> str:
        """What happened last up to here: an event of the lab, or an anomaly, in words."""
        anomaly = next((a for a in reversed(self.anomalies) if a.index <= self.position), None)
        event = self.run.events[-1] if self.run.events else None
        if event is not None and (anomaly is None or event["t"] >= anomaly.t):
            return f"{event['what'].replace('_', ' ')}: {event['text']}"
        return f"last anomaly: {anomaly.kind}, {anomaly.text}" if anomaly else ""

    def summary(self) -> dict[str, Any]:
        """The run's result, made again by the live run's own code from the folded records."""
        return self.run.result()
