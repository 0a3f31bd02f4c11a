"""The layout holds: layers point down only, the core knows no UI, modules stay readable.

Front ends (cli, tui) over teaching (teach) over the three faces (session, lab, inspector) over
the primitives (transports, codecs, sync, telemetry, kernel); the children are programs of
their own; explain holds prose only; the floor shares nothing with the instrument but the
percentile rule.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.timeout(60)

PACKAGE = ROOT / "ipc_explorer"

#: What each package may import from ipc_explorer, besides itself and the package root.
#: A dotted entry ("lab.board") allows that module only.
# fmt: off
ALLOWED = {
    # front ends
    "cli": {
        "tui", "web", "teach", "session", "lab", "inspector", "explain",
        "transports", "codecs", "telemetry", "kernel",
    },
    "tui": {
        "teach", "session", "lab", "inspector", "explain",
        "transports", "codecs", "telemetry", "kernel",
    },
    # teaching, built on the faces below it
    "teach": {
        "session", "lab", "inspector", "explain", "transports", "codecs", "telemetry", "kernel",
    },
    # the faces
    "session": {"transports", "codecs", "telemetry", "floor"},
    "lab": {"explain", "telemetry"},
    "inspector": {"codecs", "telemetry"},
    # the programs the parent starts; a lab worker shares the lab's board and locks
    "children": {"transports", "codecs", "telemetry", "lab.board", "lab.locks"},
    # primitives
    "transports": {"codecs", "sync", "kernel"},
    "kernel": set(),
    "codecs": set(),
    "sync": set(),
    "telemetry": set(),
    "explain": set(),
    # the bare-loop baseline: nothing of the instrument
    "floor": {"telemetry.percentiles"},
    # the app served to browsers: it runs `python -m ipc_explorer`, imports nothing of it
    "web": set(),
}
# fmt: on
BELOW_THE_UI = sorted(set(ALLOWED) - {"cli", "tui"})
MAX_LINES = 600


def python_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            # "from ipc_explorer.cli import run" imports the module ipc_explorer.cli.run
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def allows(package: str, module: str) -> bool:
    """Whether ``package`` may import ``module`` (a name under ipc_explorer)."""
    parts = module.split(".")[1:]
    if not parts or parts[0] == package or parts[0] not in ALLOWED:
        return True  # itself, the package root, or a name the root defines (__version__)
    for entry in ALLOWED[package]:
        allowed = entry.split(".")
        # the allowed module, anything in it, or the package it is in (its __init__)
        if parts[: len(allowed)] == allowed or parts == allowed[: len(parts)]:
            return True
    return False


def test_every_package_has_a_place_in_the_layers():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)


def test_the_package_root_holds_only_its_entry_points_and_packages():
    loose = {
        p.name
        for p in PACKAGE.iterdir()
        if p.name != "__pycache__" and (p.is_file() or not (p / "__init__.py").exists())
    }
    assert loose == {"__init__.py", "__main__.py"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down_only(package):
    bad = []
    for path in python_files(PACKAGE / package):
        for name in imported_modules(path):
            if name.startswith("ipc_explorer.") and not allows(package, name):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_layer_check_catches_an_import_that_points_up():
    assert not allows("session", "ipc_explorer.tui.app")
    assert not allows("codecs", "ipc_explorer.transports")
    assert not allows("children", "ipc_explorer.lab.run")
    assert not allows("floor", "ipc_explorer.transports.base")
    assert allows("children", "ipc_explorer.lab.board")
    assert allows("cli", "ipc_explorer.cli.args")


@pytest.mark.parametrize("package", BELOW_THE_UI)
def test_no_module_below_the_ui_imports_textual(package):
    for path in python_files(PACKAGE / package):
        bad = {name for name in imported_modules(path) if name.split(".")[0] == "textual"}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_importing_everything_below_the_ui_loads_no_textual():
    modules = [
        "ipc_explorer." + p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        for package in BELOW_THE_UI
        for p in python_files(PACKAGE / package)
        if p.name != "__main__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
        "print('textual' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_every_module_is_readable_in_one_sitting():
    lines = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in python_files(PACKAGE) + python_files(ROOT / "benchmarks")
    }
    long = {path: n for path, n in lines.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
