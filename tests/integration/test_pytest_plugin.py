"""Users assert delivery guarantees from their own pytest suites through our plugin (entry point)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import STORY

pytestmark = pytest.mark.integration

USER_TESTS = '''
from harness.pytest_plugin import assert_delivery

def test_ackmap_keeps_every_message(delivery_run):
    verdict = delivery_run(r"{story}", target="ackmap")
    assert_delivery(verdict)
    assert verdict["counts"]["lost"] == 0

def test_naive_fails_with_the_reason(delivery_run):
    verdict = delivery_run(r"{story}", target="naive")
    try:
        assert_delivery(verdict)
    except AssertionError as error:
        assert "lost = " in str(error) and "report.md" in str(error)
    else:
        raise AssertionError("assert_delivery passed a run that lost messages")
'''


def test_plugin_fixture_runs_a_scenario_from_a_user_suite(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS.format(story=STORY))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout
