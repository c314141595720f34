"""Bad input gets a clear error and nothing recorded so far is lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, STORY, harness, verdict

pytestmark = pytest.mark.integration


def test_unknown_field_names_file_field_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(STORY.read_text().replace("[load]\n", "[load]\nrate_per_usr = 5\n"))
    run = harness("run", str(bad))
    assert run.returncode == 2
    assert f"{bad}: field 'load.rate_per_usr': unknown field" in run.stderr


def test_unknown_target_and_fault_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(STORY.read_text().replace('targets = ["naive", "ackmap"]', 'targets = ["naive", "nope"]'))
    run = harness("run", str(bad))
    assert run.returncode == 2
    assert "field 'targets.1': unknown target 'nope'" in run.stderr
    bad.write_text(STORY.read_text().replace('type = "timeout"', 'type = "meteor"'))
    run = harness("run", str(bad))
    assert run.returncode == 2
    assert "field 'faults.0.type'" in run.stderr and "unknown fault type 'meteor'" in run.stderr


def test_target_that_fails_to_start_shows_its_log(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.toml"
    scenario.write_text(STORY.read_text().replace('targets = ["naive", "ackmap"]', 'targets = ["broken"]')
                        + '\n[target.broken]\ncommand = ["{python}", "-c", '
                          '"import sys; print(\'cannot bind: config missing\'); sys.exit(3)"]\n')
    run = harness("run", str(scenario), "--out", str(tmp_path / "run"))
    assert run.returncode == 2
    assert "target 'broken' failed to start: process exited with code 3" in run.stderr
    assert "cannot bind: config missing" in run.stderr


def test_sigterm_mid_run_keeps_the_ledger_and_says_unknown(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(STORY), "--target", "naive",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ledger = out / "ledger.jsonl"
    deadline = time.monotonic() + 180  # a busy machine may take a while to start sending
    while time.monotonic() < deadline and (not ledger.exists() or ledger.read_text().count('"f":"send"') < 40):
        time.sleep(0.2)
    assert ledger.read_text().count('"f":"send"') >= 40, "the run never got to sending"
    rows_before = ledger.read_text().count("\n")
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 3, stdout + stderr
    result = verdict(out)
    assert result["valid"] == "unknown"
    assert result["complete"] is False
    assert result["counts"]["lost"] == 0
    assert result["counts"]["attempted"] >= 20
    assert "run incomplete" in result["reason"] and "interrupted" in result["reason"]
    assert ledger.read_text().count("\n") >= rows_before
    rows = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [r["data"]["phase"] for r in rows[-2:]] == ["interrupted", "node_closed"]
