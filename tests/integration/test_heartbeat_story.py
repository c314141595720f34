"""The acceptance story end to end: real targets, real proxy, real Locust, real TCP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import STORY, harness, verdict

pytestmark = pytest.mark.integration


def test_naive_loses_messages_and_check_agrees(tmp_path: Path) -> None:
    run = harness("run", str(STORY), "--target", "naive", "--out", str(tmp_path))
    assert run.returncode == 1, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is False
    assert result["complete"] is True
    assert result["counts"]["lost"] > 0
    assert len(result["lost_ids"]) == min(result["counts"]["lost"], 32)
    assert all(">u1-0#" in i for i in result["lost_ids"]), "only U1, the blackholed user, can lose messages"
    assert result["counts"]["unexpected"] == 0
    assert "[FAIL] naive" in run.stdout and "lost ids:" in run.stdout
    for name in ("ledger.jsonl", "ledger.parquet", "manifest.json", "report.md", "target-naive.log"):
        assert (tmp_path / name).exists(), name

    again = harness("check", str(tmp_path / "ledger.jsonl"), "--out", str(tmp_path / "recheck"))
    assert again.returncode == 1
    assert verdict(tmp_path / "recheck") == result
    from_parquet = harness("check", str(tmp_path / "ledger.parquet"), "--out", str(tmp_path / "parquet"))
    assert from_parquet.returncode == 1
    assert verdict(tmp_path / "parquet") == result


def test_ackmap_loses_nothing(tmp_path: Path) -> None:
    run = harness("run", str(STORY), "--target", "ackmap", "--out", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is True
    assert result["counts"]["lost"] == 0
    assert result["counts"]["unseen"] == 0
    assert result["counts"]["acknowledged"] > 100
    assert result["counts"]["delivered"] >= result["counts"]["acknowledged"]
    # The outage really happened: U1 reconnected, and messages queued meanwhile arrived late.
    ledger = (tmp_path / "ledger.jsonl").read_text()
    assert '"process":"u1-0","type":"event","f":"connect","conn":2' in ledger
    assert result["latency_ms"]["delivery"]["max"] > 1000
