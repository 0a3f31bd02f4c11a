"""Shared fixtures: every test runs under a leak check (processes, /dev/shm, temp dirs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every session of this test run (and every child, through TMPDIR) works under one private
# directory, so that the leak checks see this run's processes and files and nobody else's.
TEST_TMP = tempfile.mkdtemp(prefix="ipcx-tests-")
os.environ["TMPDIR"] = TEST_TMP
tempfile.tempdir = TEST_TMP


def shm_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


def mqueue_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/mqueue"))
    except FileNotFoundError:
        return set()


def temp_dirs() -> set[str]:
    return {name for name in os.listdir(TEST_TMP) if name.startswith("ipcx-")}


def agent_processes() -> list[psutil.Process]:
    """This run's ipc-explorer children, orphans included (a SIGKILLed parent's children are
    re-parented, so they are found by their working directory in TEST_TMP, not by ancestry)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "ipc_explorer.agent" in cmdline and any(TEST_TMP in arg for arg in cmdline):
            found.append(proc)
    return found


def pytest_unconfigure(config):
    # The leak checks have already failed any test that left something here.
    shutil.rmtree(TEST_TMP, ignore_errors=True)
