"""A small crowd (200 users, 20 of them on a flaky network) end to end: the verdict holds at more than toy
scale, loss lands only on the flaky cohort, and the experiment's health is measured and reported."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import ROOT, experiment_unsound, harness, verdict

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_crowd")]  # one module fixture, one worker

CROWD = ROOT / "scenarios" / "crowd-outage.toml"


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("crowd")
    small = folder / "crowd-200.toml"
    text = CROWD.read_text().replace("users = 360", "users = 180").replace("users = 40", "users = 20")
    small.write_text(text.replace('targets = ["naive", "ackmap", "memory-resume", "redis-store", "sse", '
                                  '"node-socketio-csr"]', 'targets = ["naive", "ackmap"]'))
    return folder, harness("run", str(small), "--out", str(folder / "runs"), "--expect", timeout=600)


def test_the_design_with_redelivery_loses_nothing_and_the_naive_one_loses_to_the_flaky_cohort(
    crowd: tuple[Path, Any]
) -> None:
    folder, run = crowd
    assert (folder / "runs" / "ackmap" / "verdict.json").exists(), run.stdout + run.stderr
    naive, ackmap = verdict(folder / "runs" / "naive"), verdict(folder / "runs" / "ackmap")
    assert all(">flaky-" in i for i in naive["lost_ids"]), "only the blackholed cohort can lose messages"
    assert ackmap["counts"]["lost"] == 0, ackmap["reason"]  # never, however busy the machine
    busy = [d for d in (naive, ackmap) if d["valid"] == "unknown" and experiment_unsound(d)]
    if busy:  # 200 users on a machine shared with other jobs: the harness says so instead of judging
        pytest.skip("inconclusive on this machine: " + "; ".join(str(d["reason"]) for d in busy))
    assert run.returncode == 0, run.stdout + run.stderr
    assert naive["valid"] is False and naive["counts"]["lost"] > 0
    assert ackmap["valid"] is True and ackmap["counts"]["unseen"] == 0


def test_the_experiment_was_measured_and_healthy(crowd: tuple[Path, Any]) -> None:
    for target in ("naive", "ackmap"):
        doc = verdict(crowd[0] / "runs" / target)
        health = doc["details"]["health"]
        assert {"load", "proxy", "target"} <= set(health["cpu_peak_pct"])  # measured, busy or not
        if not health["healthy"]:
            assert health["problems"] and doc["valid"] is not True  # an unhealthy run is never a PASS
            pytest.skip(f"{target} inconclusive on this machine: {'; '.join(health['problems'])}")
        assert health["healthy"] is True, health
        assert health["connected_at_start"] == {"connected": 200, "users": 200}
        assert health["acknowledged_share"]["share"] >= 0.5
        assert {"load", "proxy", "target"} <= set(health["cpu_peak_pct"])
        faults = doc["details"]["faults"]
        assert {k: faults[k] for k in ("scheduled", "applied", "problems")} == {"scheduled": 1, "applied": 1,
                                                                                 "problems": []}
        assert faults["effects"][0]["disconnects"] >= 20  # the whole flaky cohort dropped
