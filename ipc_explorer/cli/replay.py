"""``ipc-explorer replay FILE``: a recording on the app's screens with no processes, or with
``--json`` the recorded run's summary, computed again from what was recorded."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from ipc_explorer.cli.args import EXIT_FAILED, EXIT_OK
from ipc_explorer.cli.step import step_result
from ipc_explorer.lab.replay import LabReplay, read_lab_recording
from ipc_explorer.session.replay import Replay, read_session_recording
from ipc_explorer.telemetry.recording import read_header


def add_parser(sub: Any) -> None:
    replay = sub.add_parser(
        "replay",
        help="open a recording (made with --record) on the app's screens, no processes started",
    )
    replay.add_argument("file", metavar="FILE", help="the recording")
    replay.add_argument(
        "--json", action="store_true", help="print the recorded run's summary as one JSON object"
    )
    replay.add_argument(
        "--theme", default="default", help="default, or projector: high contrast for a classroom"
    )
    replay.set_defaults(execute=execute)


def execute(args: argparse.Namespace, console: Console, err: Console) -> int:
    lab = read_header(args.file)["kind"] == "lab"  # the contention lab's: its own screen
    replay: Replay | LabReplay
    if lab:
        replay = LabReplay(read_lab_recording(args.file))
    else:
        replay = Replay(read_session_recording(args.file))
    recording = replay.recording
    for note in recording.notes:
        err.print(f"[dim]{escape(note)}[/]")
    if recording.problem:
        err.print(f"[yellow]warning:[/] {escape(recording.problem)}")
    if args.json:
        replay.seek(replay.length)
        summary = replay.summary()
        if isinstance(replay, Replay) and recording.header.get("command") == "step":
            summary = _step_summary(replay)  # what `step --json` printed
        print(json.dumps(summary))
        return EXIT_FAILED if recording.problem else EXIT_OK
    # Textual loads only when it draws.
    if isinstance(replay, LabReplay):
        from ipc_explorer.tui.lab_replay import run_lab_replay

        run_lab_replay(replay, theme=args.theme)
    else:
        from ipc_explorer.tui.replay_app import run_replay

        run_replay(replay, theme=args.theme)
    return EXIT_OK


def _step_summary(replay: Replay) -> dict[str, Any]:
    """A step run's result again: its stages grouped by message, as ``step`` grouped them."""
    count = replay.recording.header.get("count")
    messages: dict[int, list[dict[str, Any]]] = {}
    for record in replay.session.steps:
        messages.setdefault(record["message"], []).append(record["stage"])
    error = replay.end.get("summary", {}).get("error", "")
    stages = [messages[i] for i in sorted(messages)]
    return step_result(replay.session.config, count if isinstance(count, int) else 0, stages, error)
