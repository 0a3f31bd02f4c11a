"""The floor: a package of its own that shares nothing with the instrument but the percentile
rule, runs real children over real kernel objects, and works where the package alone is.

Also the one nearest-rank percentile rule and the one instrument-against-floor comparison.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipc_explorer.floor import MECHANISMS, PATTERNS, FloorError, run_floor
from ipc_explorer.floor.families import family_of
from ipc_explorer.session.bench import floor_ratios, floor_wire_bytes
from ipc_explorer.telemetry.histogram import Histogram, bucket_mid, bucket_of
from ipc_explorer.telemetry.percentiles import median, nearest_rank, percentile, summary

from .conftest import ROOT, TEST_TMP, wait_until

pytestmark = pytest.mark.timeout(60)

FLOOR = ROOT / "ipc_explorer" / "floor"
#: What the floor may import from the product: itself and the percentile rule, nothing else.
FLOOR_MAY_IMPORT = ("ipc_explorer.floor", "ipc_explorer.telemetry.percentiles")
RESULT_KEYS = {
    "mechanism",
    "pattern",
    "size",
    "count",
    "received",
    "elapsed_s",
    "msgs_per_s",
    "mb_per_s",
    "rtt_us",
    "placement",
}


def floor_processes() -> list[psutil.Process]:
    """Floor children started by this test run (found by the TMPDIR they inherit)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "ipc_explorer.floor" not in cmdline or "--role" not in cmdline:
            continue
        try:
            if proc.environ().get("TMPDIR") == TEST_TMP:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.fixture(autouse=True)
def no_floor_leaks():
    """The suite's leak check knows the instrument's children and temp dirs; these are the
    floor's (/dev/shm and /dev/mqueue are checked there already)."""
    before = {name for name in os.listdir(TEST_TMP) if name.startswith("ipcfloor-")}
    yield
    wait_until(lambda: not floor_processes(), 3.0)
    left = floor_processes()
    for proc in left:
        proc.kill()
    assert not left, f"floor children left running: {[p.pid for p in left]}"
    after = {name for name in os.listdir(TEST_TMP) if name.startswith("ipcfloor-")}
    assert after - before == set(), "floor temp dirs left behind"


def floor_env(root: Path = ROOT) -> dict[str, str]:
    env = dict(os.environ)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(root) + (os.pathsep + rest if rest else "")
    return env


# --------------------------------------------------------------------------- the import rule


def imports_of(path: Path) -> set[str]:
    """Every module name ``path`` imports; ``from pkg import name`` counts as ``pkg.name``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            assert node.module is not None
            if node.module.split(".")[0] == "ipc_explorer":
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def allowed_in_the_floor(name: str) -> bool:
    top = name.split(".")[0]
    if top == "ipc_explorer":
        # "ipc_explorer.floor.protocol.LEN" is a name in an allowed module: a prefix match
        return any(name == ok or name.startswith(ok + ".") for ok in FLOOR_MAY_IMPORT)
    return top == "posix_ipc" or top == "__future__" or top in sys.stdlib_module_names


def test_the_floor_imports_only_the_stdlib_posix_ipc_and_the_percentile_rule():
    modules = sorted(FLOOR.glob("*.py"))
    assert len(modules) >= 8
    bad = [
        f"{path.name} imports {name}"
        for path in modules
        for name in sorted(imports_of(path))
        if not allowed_in_the_floor(name)
    ]
    assert not bad, "\n".join(bad)


def test_the_import_check_refuses_the_instrument():
    assert allowed_in_the_floor("ipc_explorer.telemetry.percentiles.summary")
    assert allowed_in_the_floor("ipc_explorer.floor.streams")
    assert not allowed_in_the_floor("ipc_explorer.telemetry.histogram")
    assert not allowed_in_the_floor("ipc_explorer.transports")
    assert not allowed_in_the_floor("msgpack")


def test_importing_the_floor_loads_nothing_else_of_the_product():
    code = (
        "import sys, ipc_explorer.floor.__main__\n"
        "print(sorted(m for m in sys.modules if m.startswith('ipc_explorer')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=floor_env()
    )
    assert result.returncode == 0, result.stderr
    loaded = set(ast.literal_eval(result.stdout.strip()))
    others = {m for m in loaded if not m.startswith("ipc_explorer.floor")}
    assert others == {
        "ipc_explorer",
        "ipc_explorer.telemetry",
        "ipc_explorer.telemetry.percentiles",
    }


def test_every_module_of_the_floor_is_short():
    lines = {p.name: len(p.read_text().splitlines()) for p in FLOOR.glob("*.py")}
    assert max(lines.values()) <= 350, lines


def test_every_mechanism_belongs_to_one_family():
    for mechanism in MECHANISMS:
        family = family_of(mechanism)
        assert mechanism in family.MECHANISMS
        assert callable(family.sender) and callable(family.receiver)


# --------------------------------------------------------------------------- real runs


@pytest.mark.parametrize("mechanism", ["pipe", "tcp"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_run_floor_moves_every_message_and_reports_the_documented_keys(mechanism, pattern):
    result = run_floor(mechanism, pattern, 100, 300, timeout=30)
    assert set(result) == RESULT_KEYS
    assert (result["mechanism"], result["pattern"], result["size"]) == (mechanism, pattern, 100)
    assert result["count"] == result["received"] == 300
    assert result["msgs_per_s"] > 0 and result["elapsed_s"] > 0
    assert result["mb_per_s"] == pytest.approx(result["msgs_per_s"] * 100 / 1e6, abs=0.001)
    assert "sender" in result["placement"] and "receiver" in result["placement"]
    if pattern == "stream":
        assert result["rtt_us"] is None
    else:
        rtt = result["rtt_us"]
        assert list(rtt) == ["p50", "p90", "p99", "max"]
        assert 0 < rtt["p50"] <= rtt["p90"] <= rtt["p99"] <= rtt["max"]


def test_run_floor_refuses_a_size_the_mechanism_cannot_carry():
    with pytest.raises(FloorError, match="udp carries messages of 5..65507"):
        run_floor("udp", "stream", 4, 10)
    with pytest.raises(FloorError, match="unknown mechanism"):
        run_floor("carrier-pigeon", "stream", 100, 10)


def test_the_command_line_prints_one_json_object():
    result = subprocess.run(
        [sys.executable, "-m", "ipc_explorer.floor", "--mechanism", "unix-stream",
         "--pattern", "ping-pong", "--size", "64", "--count", "200", "--json"],
        capture_output=True, text=True, timeout=30, cwd=ROOT, env=floor_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == RESULT_KEYS
    assert figures["received"] == 200 and figures["rtt_us"]["p50"] > 0


def test_the_benchmarks_script_is_the_same_command_line():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "floor.py"), "--mechanism", "mq",
         "--pattern", "stream", "--size", "9000", "--count", "10"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == "floor: mq carries messages of 1..8192 wire bytes, not 9000"


def test_bench_floor_works_from_the_package_alone(tmp_path):
    """No benchmarks/ folder next to the package, nothing installed from the clone: what a
    wheel gives."""
    copy = tmp_path / "ipc_explorer"
    shutil.copytree(ROOT / "ipc_explorer", copy, ignore=shutil.ignore_patterns("__pycache__"))
    env = floor_env(tmp_path)
    env["COLUMNS"] = "120"
    where = subprocess.run(
        [sys.executable, "-c", "import ipc_explorer.floor; print(ipc_explorer.floor.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert where.stdout.strip() == str(copy / "floor" / "__init__.py")
    result = subprocess.run(
        [sys.executable, "-m", "ipc_explorer", "bench", "--floor", "--mechanisms", "pipe",
         "--sizes", "64", "--count", "200", "--round-trips", "50", "--json"],
        capture_output=True, text=True, timeout=50, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    assert row["floor_rtt_p50_us"] > 0 and row["floor_msgs_per_s"] > 0
    assert row["rtt_ratio"] > 0 and row["throughput_ratio"] > 0


# --------------------------------------------------------------------------- one comparison


def test_the_floor_moves_the_instruments_bytes_per_message():
    assert floor_wire_bytes({"wire_bytes": 132_200, "sent": 1000}) == 132
    assert floor_wire_bytes({"wire_bytes": 132_600, "sent": 1000}) == 133
    assert floor_wire_bytes({"wire_bytes": 0, "sent": 0}) == 8


def test_the_ratios_say_how_far_the_instrument_is_from_the_floor():
    ours = {"rtt_p50_us": 40.0, "msgs_per_s": 100_000.0}
    floor = {"rtt_p50_us": 15.0, "msgs_per_s": 1_500_000.0}
    assert floor_ratios(ours, floor) == {"rtt_ratio": 2.67, "throughput_ratio": 0.07}
    assert floor_ratios(ours, {"rtt_p50_us": 0, "msgs_per_s": 0}) == {
        "rtt_ratio": None,
        "throughput_ratio": None,
    }


# --------------------------------------------------------------------------- one percentile rule


def test_nearest_rank_on_hand_checked_lists():
    assert [nearest_rank(q, 1) for q in (0, 50, 90, 99, 100)] == [1, 1, 1, 1, 1]
    assert [nearest_rank(q, 2) for q in (0, 50, 51, 90, 100)] == [1, 1, 2, 2, 2]
    one_to_ten = list(range(1, 11))
    assert percentile(one_to_ten, 90) == 9
    assert percentile(one_to_ten, 91) == 10
    assert percentile(one_to_ten, 50) == 5
    one_to_hundred = list(range(1, 101))
    assert percentile(one_to_hundred, 99) == 99
    assert percentile(one_to_hundred, 90) == 90
    assert percentile(one_to_hundred, 100) == 100
    assert percentile([7], 99) == 7


def test_the_median_is_a_measured_value_the_lower_middle_for_an_even_count():
    assert median([1, 2, 3, 4]) == 2
    assert median([4, 1, 3]) == 3
    assert median([]) == 0


def test_summary_gives_p50_p90_p99_and_max():
    assert summary(range(100, 0, -1)) == {"p50": 50, "p90": 90, "p99": 99, "max": 100}
    assert summary([]) == {}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=300),
    st.floats(min_value=0, max_value=100),
)
def test_the_histogram_uses_the_same_rule_on_its_buckets(values, q):
    """Buckets keep the order of values, so the bucket at the nearest rank is the bucket of
    the exact value at that rank."""
    histogram = Histogram()
    histogram.add_many(values)
    histogram.drain()
    assert histogram.percentile(q) == bucket_mid(bucket_of(percentile(sorted(values), q)))
