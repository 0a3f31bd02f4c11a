"""What each record of a lab recording must hold: the types of everything replay reads,
checked before it is folded in (the file may come from anyone), and the recorded settings
checked as the command line's are."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ipc_explorer.lab.board import MAX_WORKERS
from ipc_explorer.lab.config import ContendConfig, LabUsageError
from ipc_explorer.telemetry.recording import RecordingError

#: No 64-bit duration falls in a histogram bucket past this (telemetry/histogram.py).
MAX_BUCKET = 2048
RUN_STATES = ("idle", "starting", "running", "finished", "deadlocked", "failed", "stopped")
CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "scenario": (str,),
    "workers": (int, type(None)),
    "iterations": (int, type(None)),
    "lock": (str,),
    "fix": (str,),
    "cs_us": (int, type(None)),
    "consumer_delay_us": (int,),
    "slots": (int,),
    "timeout_s": (int, float),
}
FINDINGS = ("reads", "torn", "retries", "received", "duplicates", "bogus", "backoffs", "events")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return _int(value) and 0 <= value < 1 << 62


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _opt_int(value: Any) -> bool:
    return value is None or _int(value)


def _ints(value: Any, most: int = 100_000) -> bool:
    return isinstance(value, list) and len(value) <= most and all(_int(v) for v in value)


def _str_map(value: Any, ok: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and ok(v) for k, v in value.items())


def _bucket(key: Any) -> bool:
    """A histogram bucket as a report (a JSON string of digits) or a state (an int) has it."""
    if isinstance(key, str):
        return key.isascii() and key.isdigit() and len(key) <= 5 and int(key) < MAX_BUCKET
    return _int(key) and 0 <= key < MAX_BUCKET


def _buckets(value: Any) -> bool:
    return isinstance(value, dict) and all(_bucket(k) and _count(n) for k, n in value.items())


def _histogram_ok(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _buckets(value.get("counts"))
        and all(_count(value.get(k)) for k in ("total", "sum", "max", "min"))
        and value["total"] == sum(value["counts"].values())
    )


def _findings_problem(report: dict[str, Any]) -> str | None:
    """A worker's last report: its scenario's findings, as ``outcome`` adds them up."""
    bad = [name for name in FINDINGS if name in report and not _count(report[name])]
    if bad:
        return f"a report with a bad {bad[0]}"
    example = report.get("example", {})
    if not _str_map(example, _int) or (example and set(example) != {"seq", "a", "b", "check"}):
        return "a report with a bad torn example"
    if "seen" in report:
        try:
            base64.b64decode(report["seen"])
        except (binascii.Error, ValueError, TypeError):
            return "a report with a bad list of items seen"
    return None


def _report_problem(report: Any) -> str | None:
    if not isinstance(report, dict):
        return "a report that is not a map"
    if not isinstance(report.get("error", ""), str):
        return "a report with a bad error"
    if not _str_map(report.get("acq", {}), _count):
        return "a report with bad acquisitions"
    for name in ("wait", "hold"):
        if not _str_map(report.get(name, {}), _buckets):
            return f"a report with bad {name} times"
    if not isinstance(report.get("final", False), bool):
        return "a report with a bad final flag"
    return _findings_problem(report)


def _edge_ok(edge: Any) -> bool:
    """An edge of a deadlock's cycle, as the summary prints it: those fields, nothing else."""
    ints = ("worker", "pid", "held_by_worker", "held_by_pid")
    return (
        isinstance(edge, dict)
        and set(edge) == {*ints, "waits_for_lock"}
        and all(_int(edge[k]) for k in ints)
        and isinstance(edge["waits_for_lock"], str)
    )


def _facts_problem(facts: dict[str, Any]) -> str | None:
    checks = {
        "state": lambda v: v in RUN_STATES,
        "error": lambda v: isinstance(v, str),
        "cycle": lambda v: isinstance(v, list) and len(v) <= MAX_WORKERS and all(map(_edge_ok, v)),
        "detected_after_s": lambda v: v is None or _number(v),
        "stepping": lambda v: isinstance(v, bool),
        "elapsed_s": _number,
        "counter": _int,
    }
    bad = [name for name, ok in checks.items() if name in facts and not ok(facts[name])]
    return f"the run's facts with a bad {bad[0]}" if bad else None


def _worker_problem(w: Any) -> str | None:
    if not isinstance(w, dict) or not (_int(w.get("index")) and 0 <= w["index"] < MAX_WORKERS):
        return "a worker without its number"
    if not isinstance(w.get("role"), str) or not isinstance(w.get("paused"), bool):
        return "a worker with a bad role"
    if not all(_int(w.get(k)) for k in ("pid", "state", "done", "events")):
        return "a worker with a bad state"
    if "exit_code" not in w or not _opt_int(w["exit_code"]) or not _ints(w.get("timeline"), 10_000):
        return "a worker with a bad timeline"
    if not _str_map(w.get("acq"), _count) or _report_problem(w.get("final")):
        return "a worker with a bad report"
    return None


def _lock_problem(s: Any) -> str | None:
    if not isinstance(s, dict) or not isinstance(s.get("kind"), str):
        return "a lock without its kind"
    if not all(k in s and _opt_int(s[k]) for k in ("value", "kernel_waiters", "kernel_last_pid")):
        return "a lock with a bad value"
    if not (_ints(s.get("holders")) and _ints(s.get("waiting")) and _ints(s.get("history"))):
        return "a lock with a bad holder, waiter or history"
    if not _count(s.get("acquisitions")) or not _number(s.get("acq_per_s")):
        return "a lock with bad acquisitions"
    if not (_histogram_ok(s.get("wait")) and _histogram_ok(s.get("hold"))):
        return "a lock with bad wait or hold times"
    return None


def _state_problem(record: dict[str, Any]) -> str | None:
    facts, workers, locks = record.get("run"), record.get("workers"), record.get("locks")
    if not isinstance(facts, dict) or not isinstance(workers, list) or not isinstance(locks, dict):
        return "a state without the run, its workers and its locks"
    if len(workers) > MAX_WORKERS:
        return "a state with too many workers"
    return (
        _facts_problem(facts)
        or next(filter(None, map(_worker_problem, workers)), None)
        or next(filter(None, map(_lock_problem, locks.values())), None)
        or (None if all(isinstance(k, str) for k in locks) else "a lock without a name")
    )


def _sample_problem(record: dict[str, Any]) -> str | None:
    slots = record.get("slots")
    if not isinstance(slots, list) or len(slots) > MAX_WORKERS:
        return "a sample without the workers' slots"
    if not all(_ints(slot) and len(slot) == 6 for slot in slots):
        return "a sample with a bad slot"
    if not _str_map(record.get("locks"), lambda v: isinstance(v, list) and len(v) == 3):
        return "a sample without the locks"
    if not all(_opt_int(v) for values in record["locks"].values() for v in values):
        return "a sample with a bad lock value"
    if not _int(record.get("counter")) or not _number(record.get("elapsed")):
        return "a sample with a bad counter or time"
    return None


def _why_problem(diagnoses: Any) -> str | None:
    if not isinstance(diagnoses, list) or len(diagnoses) > MAX_WORKERS:
        return "a why-blocked snapshot that is not a list"
    for d in diagnoses:
        texts = ("role", "mechanism", "state", "sentence")
        if not isinstance(d, dict) or not _int(d.get("pid")):
            return "a diagnosis without its process"
        if not all(isinstance(d.get(k), str) for k in texts):
            return "a diagnosis with a bad text"
        if not _str_map(d.get("facts"), lambda v: True):
            return "a diagnosis with bad facts"
        if not _str_map(d.get("sources"), lambda v: isinstance(v, str)):
            return "a diagnosis with bad sources"
        for name in ("self_reported", "peer"):
            if not _str_map(d.get(name, {}), lambda v: True):
                return f"a diagnosis with a bad {name}"
    return None


def record_problem(record: dict[str, Any]) -> str | None:
    """Why a record cannot be folded in, or None: the types of what replay reads."""
    kind = record["k"]
    if kind == "sample":
        return _sample_problem(record)
    if kind == "report":
        if not _int(record.get("worker")):
            return "a report without its worker"
        return _report_problem(record.get("report"))
    if kind == "exit" and not (_int(record.get("worker")) and _opt_int(record.get("code", ""))):
        return "an exit without its worker or code"
    if kind == "worker":
        ok = _int(record.get("index")) and _int(record.get("pid"))
        return None if ok and isinstance(record.get("role"), str) else "a worker without its role"
    if kind == "lock":
        ok = isinstance(record.get("label"), str) and isinstance(record.get("lock_kind"), str)
        return None if ok else "a lock without its name"
    if kind == "run":
        return _facts_problem(record)
    if kind == "state":
        return _state_problem(record)
    if kind == "event":
        if not isinstance(record.get("what"), str) or not isinstance(record.get("text"), str):
            return "an event without its words"
        if record["what"] == "pause" and not isinstance(record.get("paused"), bool):
            return "a pause that says neither"
    if kind == "why":
        return _why_problem(record.get("diagnoses"))
    if kind == "note" and not isinstance(record.get("text"), str):
        return "a note without text"
    if kind == "end" and not isinstance(record.get("summary"), dict | None):
        return "an end without a summary"
    return None


def config_from_dict(values: Any) -> ContendConfig:
    """The recorded lab settings, each checked for its type and then as the command line's."""
    if not isinstance(values, dict):
        raise RecordingError("the recording's settings are not a map")
    kwargs = {}
    for name, types in CONFIG_TYPES.items():
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise RecordingError(f"the recording's settings: {name} is {value!r}")
        kwargs[name] = value
    config = ContendConfig(**kwargs)
    try:
        config.validate()
    except LabUsageError as exc:
        raise RecordingError(f"the recording's settings are not valid: {exc}") from None
    return config
