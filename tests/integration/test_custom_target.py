"""docs/custom-target.md's worked example: a user's own server and driver, no harness code touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, harness, verdict

pytestmark = pytest.mark.integration


def test_the_documented_polling_example_runs_and_passes(tmp_path: Path) -> None:
    run = harness("run", str(ROOT / "examples" / "polling" / "scenario.toml"), "--out", str(tmp_path), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is True and result["counts"]["lost"] == 0
    assert result["counts"]["replayed"] > 0  # the phone's backlog came on its next poll after the outage
    assert result["details"]["claim"]["ordered"] is True and result["details"]["claim"]["held"] is True
    assert '"process":"phone-0","type":"event","f":"disconnect"' in (tmp_path / "ledger.jsonl").read_text()


def test_an_unknown_driver_is_a_clear_startup_error(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    text = (ROOT / "examples" / "polling" / "scenario.toml").read_text()
    scenario.write_text(text.replace("examples.polling.driver:PollingUser", "examples.polling.driver:Nope"))
    run = harness("run", str(scenario), "--out", str(tmp_path / "run"))
    assert run.returncode == 2
    assert "driver 'examples.polling.driver:Nope'" in run.stderr
