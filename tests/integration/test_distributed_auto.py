"""``harness run --workers auto``: one worker process per core, each shipping its ledger to the master, and
the verdict of a local run (blip on ackmap: nothing lost)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run.process import cores
from tests.integration.helpers import ROOT, harness, verdict

pytestmark = pytest.mark.integration

BLIP = ROOT / "scenarios" / "blip.toml"


def test_workers_auto_starts_one_worker_per_core(tmp_path: Path) -> None:
    run = harness("run", str(BLIP), "--target", "ackmap", "--workers", "auto", "--out", str(tmp_path), timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is True and result["counts"]["lost"] == 0 and result["counts"]["unseen"] == 0
    workers = sorted(p.name for p in tmp_path.glob("ledger-worker-*.jsonl"))
    assert workers == [f"ledger-worker-{i}.jsonl" for i in range(1, cores() + 1)]
    nodes = [json.loads(line)["data"] for line in (tmp_path / "ledger.jsonl").read_text().splitlines()
             if '"f":"node"' in line]
    assert len(nodes) == cores() and all(n["complete"] for n in nodes)


def test_workers_refuses_a_word_other_than_auto(tmp_path: Path) -> None:
    run = harness("run", str(BLIP), "--target", "ackmap", "--workers", "many", "--out", str(tmp_path), timeout=60)
    assert run.returncode == 2
    assert "--workers must be a number >= 0 or 'auto', not 'many'" in run.stderr
    assert not (tmp_path / "ledger.jsonl").exists()
