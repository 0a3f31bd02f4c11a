"""Record and replay of a message session: real runs recorded, files cut, damaged and fuzzed,
and the replay screen driven with its keys."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipc_explorer.session import Session, SessionConfig
from ipc_explorer.session.recording import SessionRecorder
from ipc_explorer.session.replay import Replay, read_session_recording
from ipc_explorer.telemetry.recording import RecordingError, RecordingWriter, read_recording
from ipc_explorer.tui.app import IpcExplorerApp
from ipc_explorer.tui.flow import FlowPanel
from ipc_explorer.tui.replay_app import ReplayApp
from ipc_explorer.tui.timeline import Timeline

from .conftest import ROOT, run_cli, wait_until


def recorded_run(path: Path, *args: str) -> dict:
    result = run_cli("run", "--json", "--record", str(path), *args)
    assert result.returncode in (0, 1), result.stderr
    assert f"to {path}" in result.stderr  # where it went, said on stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ("-m", "pipe", "-n", "3000"),
        ("-m", "udp", "-n", "20000"),  # lossy: the losses replay too
        ("-m", "shm", "-f", "json", "-p", "ping-pong", "-n", "500"),
        ("-m", "tcp", "-n", "2000", "--corrupt-every", "100"),  # corrupt, exit 1
    ],
    ids=["pipe", "udp", "shm-ping-pong", "tcp-corrupt"],
)
def test_a_recording_replays_to_the_summary_printed_when_it_was_made(tmp_path, args):
    path = tmp_path / "run.ipcx"
    live = recorded_run(path, *args)
    result = run_cli("replay", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == live
    assert path.stat().st_mode & 0o777 == 0o600  # payload bytes are the user's only


async def test_the_replayed_messages_have_the_exact_bytes_that_were_sampled(tmp_path):
    path = tmp_path / "run.ipcx"
    session = Session(SessionConfig(mechanism="unix-stream", format="xml", count=400, rate=2000))
    recorder = SessionRecorder(session, path)
    recorder.start()
    try:
        await session.start()
        summary = await session.run_to_completion()
    finally:
        await session.stop()
        recorder.close(session.summary())
    replay = Replay(read_session_recording(path))
    replay.seek(replay.length)
    live, replayed = list(session.stats.recent), list(replay.session.stats.recent)
    assert replayed and replayed == live
    assert all(isinstance(s["wire"], bytes) for s in replayed)
    assert replay.summary() == summary
    assert replay.end["summary"] == summary


def test_a_truncated_file_replays_its_complete_part(tmp_path):
    path = tmp_path / "run.ipcx"
    recorded_run(path, "-m", "pipe", "-n", "20000", "-r", "10000")
    whole = read_session_recording(path)
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 7):
        short = tmp_path / f"cut-{cut}.ipcx"
        short.write_bytes(data[:cut])
        part = read_session_recording(short)
        assert "cut short" in part.problem and "byte" in part.problem
        assert 0 < len(part.records) < len(whole.records)
        assert part.records == whole.records[: len(part.records)]
        result = run_cli("replay", str(short), "--json")
        assert result.returncode == 1  # said and flagged, with the summary of what is there
        assert "cut short" in result.stderr and "Traceback" not in result.stderr
        assert json.loads(result.stdout)["sent"] > 0


def test_a_damaged_byte_is_reported_with_its_offset_and_the_records_before_it_stay(tmp_path):
    path = tmp_path / "run.ipcx"
    recorded_run(path, "-m", "pipe", "-n", "20000", "-r", "10000")
    whole = read_session_recording(path)
    data = bytearray(path.read_bytes())
    offset = whole.blocks[len(whole.blocks) // 2][1]  # a block in the middle
    data[offset + 40] ^= 0xFF
    damaged = tmp_path / "damaged.ipcx"
    damaged.write_bytes(bytes(data))
    part = read_session_recording(damaged)
    assert f"at byte {offset:,}" in part.problem
    assert part.records == whole.records[: len(part.records)] and part.records


def test_a_sigkilled_recorder_leaves_a_file_that_replays(tmp_path):
    path = tmp_path / "run.ipcx"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipc_explorer", "run", "-n", "100000000", "-r", "2000"]
        + ["--record", str(path)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: path.exists() and path.stat().st_size > 4000, 20)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    recording = read_session_recording(path)
    replay = Replay(recording)
    replay.seek(replay.length)
    assert replay.summary()["received"] > 100
    assert recording.problem is None or "cut short" in recording.problem


def test_the_size_cap_stops_the_recording_with_a_note(tmp_path):
    path = tmp_path / "run.ipcx"
    result = run_cli(
        "run", "-n", "20000", "-r", "10000", "--record", str(path), "--record-limit", "0.01"
    )
    assert result.returncode == 0, result.stderr
    assert "recording stopped at 0.01 MiB" in result.stderr
    assert path.stat().st_size <= 0.01 * 1024 * 1024 + 200  # the note's block after the cap
    replayed = run_cli("replay", str(path), "--json")
    assert "recording stopped at 0.01 MiB" in replayed.stderr
    assert json.loads(replayed.stdout)["sent"] > 0


@pytest.mark.parametrize(
    "args, said",
    [
        (["replay", "/nonexistent.ipcx"], "cannot open the recording"),
        (["replay", "/etc/hostname"], "is not an ipc-explorer recording"),
        (["run", "--record", "/nonexistent-dir/run.ipcx"], "cannot write the recording"),
        (["run", "--record", "x.ipcx", "--record-limit", "0"], "cap is 0.01 to 1024 MiB"),
    ],
)
def test_bad_files_and_paths_are_one_line_and_exit_2(args, said):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    # one line that says it (argparse puts its usage before its own)
    assert result.stderr.strip().splitlines()[-1].count("error") == 1


def _writer_file(path: Path, header: dict, records: list) -> None:
    writer = RecordingWriter(path, header, 64)
    for record in records:
        writer._put(record)
        writer.flush()
    writer.close()


def test_a_newer_version_and_foreign_content_are_refused_clearly(tmp_path):
    newer = tmp_path / "newer.ipcx"
    _writer_file(newer, {"version": 99, "kind": "session", "config": {}}, [])
    with pytest.raises(RecordingError, match="newer ipc-explorer"):
        read_session_recording(newer)
    ext = tmp_path / "ext.ipcx"
    packed = msgpack.packb({"format": "ipc-explorer recording", "version": 1})
    ext.write_bytes(gzip.compress(packed + msgpack.packb(msgpack.ExtType(5, b"code"))))
    with pytest.raises(RecordingError):
        read_recording(ext, "session")
    bomb = tmp_path / "bomb.ipcx"  # 200 MiB of zeros in one member: refused, not unpacked
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    bomb.write_bytes(b"".join(compressor.compress(chunk) for _ in range(200)) + compressor.flush())
    with pytest.raises(RecordingError, match="more than"):
        read_recording(bomb, "session")


@pytest.fixture(scope="module")
def sample_recording(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("rec") / "run.ipcx"
    recorded_run(path, "-m", "udp", "-n", "3000", "-r", "20000")
    return path.read_bytes()


def _replays_or_says_why(path: Path) -> None:
    """What a stranger's file may do: be refused in words, or be read and replayed."""
    try:
        recording = read_session_recording(path)
        replay = Replay(recording)
    except RecordingError:
        return
    replay.seek(replay.length)
    replay.summary()
    replay.seek(0)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_fuzzed_file_never_crashes_the_reader(tmp_path, sample_recording, data):
    """Flipped and cut bytes of a real recording, and records re-packed with wrong types."""
    raw = bytearray(sample_recording)
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    path = tmp_path / "fuzzed.ipcx"
    path.write_bytes(bytes(raw[: data.draw(st.integers(1, len(raw)))]))
    _replays_or_says_why(path)

    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(gzip.decompress(sample_recording))
    header, *body = list(unpacker)
    anything = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats()
        | st.text()
        | st.binary(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    )
    victim = data.draw(st.integers(0, len(body) - 1))
    record = dict(body[victim])
    key = data.draw(st.sampled_from(sorted(record)))
    record[key] = data.draw(anything)
    if data.draw(st.booleans()) and isinstance(record.get("rec"), dict) and record["rec"]:
        rec = dict(record["rec"])
        rec[data.draw(st.sampled_from(sorted(rec)))] = data.draw(anything)
        record["rec"] = rec
    mutated = tmp_path / "mutated.ipcx"
    about = {k: v for k, v in header.items() if k not in ("format", "version")}
    _writer_file(mutated, about, [*body[:victim], record, *body[victim + 1 :]])
    _replays_or_says_why(mutated)


# -- the screens ---------------------------------------------------------------------------


@pytest.fixture
def udp_replay(tmp_path) -> Replay:
    path = tmp_path / "udp.ipcx"
    recorded_run(path, "-m", "udp", "-n", "20000")
    return Replay(read_session_recording(path))


async def test_scrub_keys_move_through_the_recording(udp_replay):
    app = ReplayApp(udp_replay, autoplay=False)
    async with app.run_test(size=(120, 36)) as pilot:
        timeline = app.query_one(Timeline)
        assert timeline.position == 0 and not timeline.playing
        await pilot.press("end")
        assert udp_replay.position == udp_replay.length == timeline.position
        received = udp_replay.session.stats.receiver.count("unique")
        assert f"received {received:,}" in _flow_text(app)
        await pilot.press("comma")
        assert udp_replay.position == udp_replay.length - 1
        await pilot.press("home", "full_stop", "full_stop")
        assert udp_replay.position == 2
        assert udp_replay.anomalies, "a UDP run this fast drops datagrams"
        await pilot.press("n")
        first = udp_replay.anomalies[0]
        assert udp_replay.position == first.index and first.kind == "loss"
        assert timeline.said.startswith("loss at")
        await pilot.press("space")
        assert timeline.playing
        await pilot.press("space", "plus", "plus")
        assert not timeline.playing and timeline.speed == 4.0
        await pilot.press("k")  # a key of the live app: said, nothing else
        await pilot.pause()
        assert any("runs no processes" in str(n.message) for n in app._notifications)


def _flow_text(app) -> str:
    panel = app.query_one(FlowPanel)
    return " ".join(str(w.render()) for w in panel.query("*") if hasattr(w, "render"))


async def test_playing_reaches_the_end_and_stops(udp_replay):
    app = ReplayApp(udp_replay, autoplay=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("plus", "plus", "plus", "plus")  # 16x
        for _ in range(100):
            await pilot.pause(0.05)
            if udp_replay.position == udp_replay.length:
                break
        assert udp_replay.position == udp_replay.length
        await pilot.pause(0.2)
        assert not app.query_one(Timeline).playing


async def test_the_inspector_opens_on_a_recorded_message(udp_replay):
    app = ReplayApp(udp_replay, autoplay=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("end", "d")
        await pilot.pause()
        assert type(app.screen).__name__ == "InspectorScreen"


async def test_r_in_the_app_records_from_the_middle_of_a_session(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = IpcExplorerApp(SessionConfig(mechanism="pipe", rate=1000))
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.session and app.session.stats.receiver.count("unique") > 200:
                break
        await pilot.press("R")
        assert "recording" in app.sub_title
        await pilot.pause(0.5)
        await pilot.press("R")
        assert "recording" not in app.sub_title
        await pilot.press("q")
    files = list(tmp_path.glob("ipcx-pipe-*.ipcx"))
    assert len(files) == 1
    recording = read_session_recording(files[0])
    assert recording.records[0]["k"] == "state"  # the counts so far, then what followed
    replay = Replay(recording)
    replay.seek(replay.length)
    summary = replay.summary()
    # the counts from before R were in the state it began with: the summary at the second R
    assert summary["received"] > 200 and summary == replay.end["summary"]


async def test_record_on_the_app_records_the_session_from_its_start(tmp_path):
    path = tmp_path / "app.ipcx"
    app = IpcExplorerApp(SessionConfig(mechanism="fifo", rate=500), record=str(path))
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(60):
            await pilot.pause(0.05)
            if app.session and app.session.stats.receiver.count("unique") > 50:
                break
        await pilot.press("q")
    recording = read_session_recording(path)
    assert recording.problem is None and recording.records[0]["k"] != "state"
    assert recording.records[-1]["k"] == "end"


def test_a_step_recording_replays_to_what_step_printed(tmp_path):
    path = tmp_path / "step.ipcx"
    live = run_cli("step", "-m", "mq", "-n", "2", "--json", "--record", str(path))
    assert live.returncode == 0, live.stderr
    replayed = run_cli("replay", str(path), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == json.loads(live.stdout)


async def test_w_in_a_replay_shows_the_kernels_account_as_recorded(tmp_path):
    path = tmp_path / "run.ipcx"
    recorded_run(path, "-m", "tcp", "-n", "3000", "-r", "2000")
    replay = Replay(read_session_recording(path))
    whys = [r for r in replay.recording.records if r["k"] == "why"]
    assert whys, "a recorded run of 1.5 s has a why-blocked snapshot every second"
    app = ReplayApp(replay, autoplay=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("w")  # before the first snapshot: said, no screen
        assert type(app.screen).__name__ != "WhyScreen"
        await pilot.press("end", "w")
        await pilot.pause()
        assert type(app.screen).__name__ == "WhyScreen"
        shown = app.screen._diagnose()  # what the screen draws, once a second
        assert {d.role for d in shown} <= {"sender", "receiver"} and shown
        assert all(d.mechanism == "tcp" and d.sentence for d in shown)
        assert [d.as_json() for d in shown] == replay.session.why
