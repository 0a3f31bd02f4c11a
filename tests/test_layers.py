"""The core knows no UI: nothing below the TUI imports Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.timeout(60)

CORE = ["session", "lab", "inspector", "children", "transports", "codecs", "sync", "telemetry", "explain"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", CORE)
def test_no_core_module_imports_textual(package):
    for path in (ROOT / "ipc_explorer" / package).rglob("*.py"):
        bad = {name for name in imported_modules(path) if name.split(".")[0] == "textual"}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_importing_the_whole_core_loads_no_textual():
    base = ROOT / "ipc_explorer"
    modules = [
        "ipc_explorer." + p.relative_to(base).with_suffix("").as_posix().replace("/", ".")
        for package in CORE
        for p in sorted((base / package).rglob("*.py"))
        if p.name != "__main__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('textual' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
