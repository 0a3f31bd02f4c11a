"""Record and replay of the contention lab: real runs recorded, files cut, damaged and fuzzed,
the lab's screen recording with R, and the lab's replay screen driven with its keys."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.app import App
from textual.widgets import Static

from ipc_explorer.lab.config import ContendConfig
from ipc_explorer.lab.recording import LabRecorder
from ipc_explorer.lab.replay import LabReplay, read_lab_recording
from ipc_explorer.lab.run import ContendRun
from ipc_explorer.session.replay import read_session_recording
from ipc_explorer.teach.why import Child, diagnose
from ipc_explorer.telemetry.recording import RecordingError, RecordingWriter
from ipc_explorer.tui.contend_screen import ContendScreen
from ipc_explorer.tui.lab_panels import lock_rows, result_text, timeline_text
from ipc_explorer.tui.lab_replay import LabReplayApp
from ipc_explorer.tui.timeline import Timeline
from ipc_explorer.tui.why_screen import WhyScreen

from .conftest import agent_processes, run_cli
from .test_tui import SIZE, text_of, until

pytestmark = pytest.mark.timeout(60)

DEADLOCK = ("--scenario", "deadlock", "--lock", "sem")
#: Two seconds of a ring backing off: a recording of many blocks (one per 0.1 s flush).
BACKING_OFF = ("--scenario", "deadlock", "--lock", "sem", "--fix", "timeout")


def recorded_contend(path: Path, *args: str) -> dict:
    result = run_cli("contend", "--json", "--record", str(path), *args)
    assert result.returncode in (0, 1), result.stderr
    assert f"to {path}" in result.stderr and "Traceback" not in result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ("--scenario", "counter"),  # the race: lost updates
        ("--scenario", "counter", "--lock", "sysv", "-k", "3", "-n", "5000"),
        DEADLOCK,
        ("--scenario", "torn"),
        ("--scenario", "buffer", "--lock", "sem"),
    ],
    ids=["counter-race", "counter-sysv", "deadlock", "torn", "buffer"],
)
def test_a_lab_recording_replays_to_the_summary_contend_printed(tmp_path, args):
    path = tmp_path / "lab.ipcx"
    live = recorded_contend(path, *args)
    result = run_cli("replay", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == live
    assert path.stat().st_mode & 0o777 == 0o600
    replay = LabReplay(read_lab_recording(path))
    assert replay.end["summary"] == live  # and the recorder's own copy says the same
    kinds = {a.kind for a in replay.anomalies}
    if live["scenario"] == "deadlock":
        assert "deadlock" in kinds and live["deadlock_detected"]
    elif live["lost_updates"]:
        assert "loss" in kinds
    elif live["torn_reads"]:
        assert "torn" in kinds


@pytest.fixture(scope="module")
def backing_off(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("lab") / "backing-off.ipcx"
    return path, recorded_contend(path, *BACKING_OFF)


@pytest.fixture(scope="module")
def deadlocked(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("lab") / "deadlock.ipcx"
    return path, recorded_contend(path, *DEADLOCK)


@pytest.fixture(scope="module")
def torn_mid_run(tmp_path_factory) -> Path:
    """Recorded from the middle of a run (its state so far first), readers paused and
    resumed, and what the why-blocked screen would show of each worker."""
    path = tmp_path_factory.mktemp("lab") / "torn.ipcx"

    async def record() -> None:
        run = ContendRun(ContendConfig(scenario="torn", iterations=3_000_000))
        try:
            await run.start()
            await asyncio.sleep(0.3)
            recorder = LabRecorder(run, path, command="app")
            recorder.start()
            run.pause_consumers(True)
            await asyncio.sleep(0.3)
            why = [diagnose(w.pid, child=Child(w.pid, "contender"), peer=None) for w in run.workers]
            recorder.add_why([d.as_json() for d in why])
            run.pause_consumers(False)
            recorder.close(await run.wait())
        finally:
            await run.stop()

    asyncio.run(record())
    return path


def test_a_recording_begun_mid_run_replays_to_its_summary(torn_mid_run):
    replay = LabReplay(read_lab_recording(torn_mid_run))
    first = replay.recording.records[0]
    assert first["k"] == "state" and len(first["workers"]) == 3 and first["workers"][0]["done"]
    replay.seek(replay.length)
    assert replay.summary() == replay.end["summary"] and replay.summary()["torn_reads"] > 0
    said = [e["text"] for e in replay.run.events]
    assert said == ["readers stopped (SIGSTOP)", "readers resumed (SIGCONT)"]
    assert len(replay.run.why) == 3 and "torn" in {a.kind for a in replay.anomalies}


def test_a_truncated_lab_file_replays_its_complete_part(tmp_path, backing_off):
    path, _ = backing_off
    whole = read_lab_recording(path)
    assert len(whole.blocks) > 8
    data = path.read_bytes()
    second_block = whole.blocks[2][1]
    for cut in (second_block + 5, len(data) // 3, len(data) // 2, len(data) - 7):
        short = tmp_path / f"cut-{cut}.ipcx"
        short.write_bytes(data[:cut])
        part = read_lab_recording(short)
        assert "cut short" in part.problem and "at byte" in part.problem
        assert 0 < len(part.records) < len(whole.records)
        assert part.records == whole.records[: len(part.records)]
        result = run_cli("replay", str(short), "--json")
        assert result.returncode == 1  # said and flagged, with the summary of what is there
        assert "cut short" in result.stderr and "Traceback" not in result.stderr
        assert json.loads(result.stdout)["scenario"] == "deadlock"


def test_a_damaged_byte_is_reported_with_its_offset_and_the_records_before_it_stay(
    tmp_path, backing_off
):
    path, _ = backing_off
    whole = read_lab_recording(path)
    data = bytearray(path.read_bytes())
    offset = whole.blocks[len(whole.blocks) // 2][1]
    data[offset + 30] ^= 0xFF
    damaged = tmp_path / "damaged.ipcx"
    damaged.write_bytes(bytes(data))
    part = read_lab_recording(damaged)
    assert f"at byte {offset:,}" in part.problem
    assert part.records and part.records == whole.records[: len(part.records)]
    replay = LabReplay(part)
    replay.seek(replay.length)
    assert replay.summary()["scenario"] == "deadlock"


def _unpacked(path: Path) -> tuple[dict, list[dict]]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(gzip.decompress(path.read_bytes()))
    header, *body = list(unpacker)
    return {k: v for k, v in header.items() if k not in ("format", "version")}, body


def _repacked(path: Path, header: dict, records: list[dict]) -> None:
    """Records written back one block each by the container's own writer."""
    writer = RecordingWriter(path, header, 64)
    for record in records:
        writer._put(record)
        writer.flush()
    writer.close()


def test_a_record_of_the_wrong_shape_is_named_with_its_block_and_the_rest_before_it_stays(
    tmp_path, backing_off
):
    header, body = _unpacked(backing_off[0])
    victim = next(i for i, r in enumerate(body) if r["k"] == "sample" and i > 10)
    bad = dict(body[victim], slots=[["pid", 1, 2, 3, 4, 5]])
    path = tmp_path / "bad.ipcx"
    _repacked(path, header, [*body[:victim], bad, *body[victim + 1 :]])
    recording = read_lab_recording(path)
    assert f"record {victim + 1}, in the block at byte" in recording.problem
    assert "a sample with a bad slot" in recording.problem
    assert len(recording.records) == victim
    result = run_cli("replay", str(path), "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"record {victim + 1}" in result.stderr


def test_a_session_file_and_a_lab_file_each_go_to_their_own_replay(tmp_path, backing_off):
    header, body = _unpacked(backing_off[0])
    path = tmp_path / "config.ipcx"
    _repacked(path, {**header, "config": {**header["config"], "workers": 99}}, body)
    result = run_cli("replay", str(path), "--json")
    assert result.returncode == 2 and "--workers must be 2..16" in result.stderr
    with pytest.raises(RecordingError, match="not of a session"):
        read_session_recording(backing_off[0])


def test_the_size_cap_stops_a_lab_recording_with_a_note(tmp_path):
    path = tmp_path / "capped.ipcx"
    eight = ("--scenario", "counter", "--lock", "sem", "-k", "8", "-n", "20000")
    result = run_cli("contend", *eight, "--json", "--record", str(path), "--record-limit", "0.01")
    assert result.returncode == 0, result.stderr
    assert "recording stopped at 0.01 MiB" in result.stderr
    replayed = run_cli("replay", str(path), "--json")
    assert "recording stopped at 0.01 MiB" in replayed.stderr
    assert json.loads(replayed.stdout)["scenario"] == "counter"


def _replays_or_says_why(path: Path) -> None:
    """What a stranger's file may do: be refused in words, or be read, folded, summed up and
    drawn, at any position."""
    try:
        replay = LabReplay(read_lab_recording(path))
    except RecordingError:
        return
    for position in (replay.length, replay.length // 2, 0, replay.length):
        replay.seek(position)
        json.dumps(replay.summary())
        run = replay.run
        result_text(run, "a step"), lock_rows(run), timeline_text(run, 60), replay.said()
    replay.next_anomaly(1), replay.next_anomaly(-1)


ANYTHING = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _mutate(value: object, data: st.DataObject, depth: int = 0) -> object:
    """``value`` with one thing somewhere inside it replaced, dropped or added."""
    if isinstance(value, dict) and value and depth < 4 and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value, key=str)))
        out = dict(value)
        action = data.draw(st.sampled_from(["deeper", "replace", "drop", "add"]))
        if action == "deeper":
            out[key] = _mutate(value[key], data, depth + 1)
        elif action == "replace":
            out[key] = data.draw(ANYTHING)
        elif action == "drop":
            del out[key]
        else:
            out[data.draw(st.text(max_size=6))] = data.draw(ANYTHING)
        return out
    if isinstance(value, list) and value and depth < 4 and data.draw(st.booleans()):
        out = list(value)
        i = data.draw(st.integers(0, len(value) - 1))
        out[i] = _mutate(value[i], data, depth + 1)
        return out
    return data.draw(ANYTHING)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_fuzzed_lab_file_never_crashes_the_reader_the_fold_or_the_screen(
    tmp_path, backing_off, deadlocked, torn_mid_run, data
):
    """Flipped and cut bytes of real recordings, and their records re-typed anywhere inside."""
    base = data.draw(st.sampled_from([backing_off[0], deadlocked[0], torn_mid_run]))
    raw = bytearray(base.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    flipped = tmp_path / "flipped.ipcx"
    flipped.write_bytes(bytes(raw[: data.draw(st.integers(1, len(raw)))]))
    _replays_or_says_why(flipped)

    header, body = _unpacked(base)
    for _ in range(data.draw(st.integers(1, 3))):
        victim = data.draw(st.integers(0, len(body) - 1))
        record = body[victim]
        changed = _mutate(record, data)
        if not isinstance(changed, dict):
            changed = {"k": record.get("k"), "x": changed}
        if data.draw(st.booleans()):  # mostly a record of a kind replay reads
            changed["k"] = record.get("k")
        body[victim] = {**changed, "t": record["t"]}
    if data.draw(st.integers(0, 9)) == 0:
        header = {**header, "config": _mutate(header["config"], data)}
    mutated = tmp_path / "mutated.ipcx"
    _repacked(mutated, header, body)
    _replays_or_says_why(mutated)


# -- the screens ---------------------------------------------------------------------------


class LabApp(App):
    def __init__(self, screen: ContendScreen):
        super().__init__()
        self.lab = screen

    def on_mount(self) -> None:
        self.push_screen(self.lab)


def _result(app: App) -> str:
    return text_of(app.query_one("#lab-result", Static))


async def test_the_lab_replay_screen_scrubs_to_the_deadlock(deadlocked):
    path, live = deadlocked
    replay = LabReplay(read_lab_recording(path))
    app = LabReplayApp(replay, autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.query_one(Timeline)
        assert timeline.position == 0 and not timeline.playing
        await pilot.press("end")
        assert replay.position == replay.length == timeline.position
        assert "deadlocked" in _result(app) and "cycle after" in _result(app)
        assert f"pid {live['cycle'][0]['pid']} waits" in _result(app)
        await pilot.press("comma")
        assert replay.position == replay.length - 1
        await pilot.press("home")
        assert replay.position == 0 and "cycle after" not in _result(app)
        await pilot.press("n")
        deadlock = replay.anomalies[0]
        assert deadlock.kind == "deadlock" and replay.position == deadlock.index
        assert "cycle after" in _result(app) and "deadlock" in timeline.said
        await pilot.press("l")  # a key of the live lab: said, nothing else
        await pilot.pause()
        assert any("runs no processes" in str(n.message) for n in app._notifications)
        await pilot.press("minus", "minus", "home", "space")  # a quarter of the speed
        assert timeline.playing and timeline.speed == 0.25 and replay.position < replay.length
        await pilot.press("plus", "plus", "plus", "plus", "plus", "plus")
        assert timeline.speed == 16.0
        await until(pilot, lambda: not timeline.playing, 5)  # at the end, it stops
        assert replay.position == replay.length


async def test_r_in_the_lab_records_the_run_and_what_why_showed(tmp_path, monkeypatch):
    """R mid-run (held in step mode), w while recording, then the deadlock ends the run and
    the recording; the replay has the deadlock, the step events and the why-blocked facts."""
    monkeypatch.chdir(tmp_path)
    lab = ContendScreen("deadlock", autostart=False)
    async with LabApp(lab).run_test(size=SIZE) as pilot:
        await pilot.press("full_stop")  # a run held before its first lock operation
        await until(pilot, lambda: lab.run is not None and len(lab.run.held_workers()) == 2, 10)
        await pilot.press("R")
        assert lab.recorder is not None and "recording" in lab.sub_title
        for _ in range(2):  # each takes its own lock, in turn
            await until(pilot, lambda: len(lab.run.held_workers()) == 2, 5)
            await pilot.press("full_stop")
        await until(pilot, lambda: len(lab.run.held_workers()) == 2, 5)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(lab.app.screen, WhyScreen), 5)
        await until(pilot, lambda: "contender (pid" in text_of(lab.app.screen.query_one(Static)))
        await pilot.press("escape", "space")  # let go: the deadlock
        await until(pilot, lambda: lab.recorder is None, 10)  # the run's end closed it
        assert any(n.title == "recording saved" for n in lab.app._notifications)
    assert not agent_processes()
    files = list(tmp_path.glob("ipcx-lab-*.ipcx"))
    assert len(files) == 1
    recording = read_lab_recording(files[0])
    assert recording.problem is None and recording.records[0]["k"] == "state"
    replay = LabReplay(recording)
    replay.seek(replay.length)
    assert replay.summary() == replay.end["summary"]
    assert replay.summary()["state"] == "deadlocked"
    assert "deadlock" in {a.kind for a in replay.anomalies}
    steps = [e for e in replay.run.events if e["what"] == "step"]
    assert [e["text"].split(": ")[1] for e in steps] == ["acquire L0", "acquire L1"]
    assert replay.run.why and all("contender" in d["role"] for d in replay.run.why)

    app = LabReplayApp(replay, autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end", "w")
        await until(pilot, lambda: isinstance(app.screen, WhyScreen), 5)
        await until(pilot, lambda: "contender (pid" in text_of(app.screen.query_one(Static)))
