"""A real two-worker run (Locust master + 2 worker processes): each worker's CPU reaches the master's ledger
as its own ``load-<node>`` health rows and the verdict's health judges both; the same run folder, re-checked
without one worker's ledger file, reports that worker's users' messages unseen, never lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.helpers import STORY, harness, verdict

pytestmark = pytest.mark.integration


def _health_roles(ledger: Path) -> set[str]:
    rows = [json.loads(line) for line in ledger.read_text().splitlines()]
    return {role for r in rows if r["f"] == "health" for role in r["data"]["cpu"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("two-workers")
    result = harness("run", str(STORY), "--target", "ackmap", "--workers", "2", "--out", str(folder), "--expect",
                     timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def test_both_workers_ship_their_own_cpu_and_the_verdict_judges_each(run: Path) -> None:
    assert _health_roles(run / "ledger-worker-1.jsonl") == {"load-worker-1"}
    assert _health_roles(run / "ledger-worker-2.jsonl") == {"load-worker-2"}
    health = verdict(run)["details"]["health"]
    assert {"load", "load-worker-1", "load-worker-2"} <= set(health["cpu_peak_pct"])
    assert set(health["load_cpu_saturated_share"]) == {"load", "load-worker-1", "load-worker-2"}
    assert health["healthy"] is True, health


def test_a_missing_worker_ledger_file_is_unseen_not_lost(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "ledger-worker-2.jsonl").unlink()
    (copy / "ledger.parquet").unlink(missing_ok=True)  # the folder is read from its JSON Lines files
    checked = harness("check", str(copy), "--out", str(tmp_path / "rejudged"))
    assert checked.returncode == 3, checked.stdout + checked.stderr
    doc = verdict(tmp_path / "rejudged")
    assert doc["valid"] == "unknown" and doc["counts"]["lost"] == 0 and doc["counts"]["unseen"] > 0
    assert "ledger-worker-2.jsonl is not in what was checked" in doc["details"]["unhealthy_nodes"]["worker-2"]
