"""Every lesson checks its own claims on a real run, and they hold."""

from __future__ import annotations

import json

import pytest

from ipc_explorer.teach.lessons import LESSONS, get_lesson

from .conftest import run_cli

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("name", LESSONS)
async def test_every_claim_of_the_lesson_holds_on_a_real_run(name):
    lesson = get_lesson(name)
    checks = await lesson.check()
    assert len(checks) >= 2
    failed = [(c.claim, c.observed) for c in checks if not c.holds]
    assert not failed, failed
    assert all(c.observed for c in checks), "every claim says what was observed"
    text = lesson.text
    assert text.watch and text.press and text.question and text.answer


def test_the_pipe_lesson_as_json_shows_the_blocked_write_and_a_full_pipe():
    result = run_cli("lesson", "full-pipe", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["lesson"] == "full-pipe"
    observed = [check["observed"] for check in data["checks"]]
    assert all(check["holds"] for check in data["checks"])
    assert observed[0]["blocked_in"] == "write"
    assert observed[1]["queued_bytes"] == observed[1]["capacity_bytes"] > 0


def test_the_list_names_every_lesson():
    result = run_cli("lesson", "--list")
    assert result.returncode == 0
    for name in LESSONS:
        assert name in result.stdout


@pytest.mark.parametrize("args", [("nope",), ("nope", "--json"), ()])
def test_an_unknown_or_missing_lesson_is_one_line_and_exit_2(args):
    result = run_cli("lesson", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
