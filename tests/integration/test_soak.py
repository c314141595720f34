"""The soak: ten minutes of seeded random faults on a design that claims no loss (slow: scripts/test.sh
--slow). It must end with nothing lost, every fault injected and healed as scheduled, and the same
outcome as the committed comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import load_scenario
from tests.integration.helpers import ROOT, assert_as_committed, harness, verdict

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SOAK = ROOT / "scenarios" / "soak.toml"


def test_ackmap_survives_ten_minutes_of_random_faults(tmp_path: Path) -> None:
    run = harness("run", str(SOAK), "--target", "ackmap", "--out", str(tmp_path), "--expect", timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is True and result["counts"]["lost"] == 0 and result["counts"]["acknowledged"] > 10_000
    rows = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    injected = [r["data"]["fault"] for r in rows if r["f"] == "fault" and r["data"]["action"] == "inject"]
    scenario = load_scenario(SOAK)
    assert sorted(injected) == sorted(f.name for f in scenario.faults for _ in range(f.repeat))
    assert_as_committed("soak", "ackmap", tmp_path)
