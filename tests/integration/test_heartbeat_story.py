"""The acceptance story end to end: real targets, real proxy, real Locust, real TCP. One run of both targets
(as scripts/demo.sh does) serves every test here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import STORY, assert_as_committed, harness, verdict

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_heartbeat_story")]  # one fixture, one worker


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("story")
    return out, harness("run", str(STORY), "--out", str(out), "--expect", timeout=400)


def test_both_verdicts_are_as_the_scenario_expects(story: tuple[Path, Any]) -> None:
    out, run = story
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[FAIL] naive" in run.stdout and "[PASS] ackmap" in run.stdout
    assert run.stdout.count("as expected") == 2 and "NOT as expected" not in run.stdout
    for target in ("naive", "ackmap"):
        assert_as_committed("heartbeat-timeout", target, out / target)


def test_naive_loses_messages_and_check_agrees(story: tuple[Path, Any], tmp_path: Path) -> None:
    folder = story[0] / "naive"
    result = verdict(folder)
    assert result["valid"] is False and result["exit_code"] == 1
    assert result["complete"] is True
    assert result["counts"]["lost"] > 0
    assert len(result["lost_ids"]) == min(result["counts"]["lost"], 32)
    assert all(">u1-0#" in i for i in result["lost_ids"]), "only U1, the blackholed user, can lose messages"
    assert result["counts"]["unexpected"] == 0
    for name in ("ledger.jsonl", "ledger.parquet", "manifest.json", "report.md", "report.html", "junit.xml",
                 "target-naive.log", "proxy.log"):
        assert (folder / name).exists(), name

    again = harness("check", str(folder / "ledger.jsonl"), "--out", str(tmp_path / "recheck"))
    assert again.returncode == 1
    assert _judged(verdict(tmp_path / "recheck")) == _judged(result)
    from_parquet = harness("check", str(folder / "ledger.parquet"), "--out", str(tmp_path / "parquet"))
    assert from_parquet.returncode == 1
    assert _judged(verdict(tmp_path / "parquet")) == _judged(result)
    assert [f["path"] for f in verdict(tmp_path / "parquet")["ledger_files"]] == ["ledger.parquet"]


def _judged(doc: dict[str, Any]) -> dict[str, Any]:
    """A verdict without the record of which files it read (their names differ from folder to folder)."""
    return {k: v for k, v in doc.items() if k != "ledger_files"}


def test_ackmap_loses_nothing(story: tuple[Path, Any]) -> None:
    folder = story[0] / "ackmap"
    result = verdict(folder)
    assert result["valid"] is True and result["exit_code"] == 0
    assert result["counts"]["lost"] == 0
    assert result["counts"]["unseen"] == 0
    assert result["counts"]["acknowledged"] > 100
    assert result["counts"]["delivered"] >= result["counts"]["acknowledged"]
    # The outage really happened: U1 reconnected, and messages queued meanwhile were replayed after it.
    ledger = (folder / "ledger.jsonl").read_text()
    assert '"process":"u1-0","type":"event","f":"connect","conn":2' in ledger
    assert result["counts"]["replayed"] > 0
    assert result["latency_ms"]["redelivery"]["max"] > 1000
    catch_up = result["details"]["catch_up"]
    assert catch_up and catch_up[0]["never_arrived"] == 0 and catch_up[0]["catch_up_ms"] is not None


def test_comparison_page_covers_both_targets(story: tuple[Path, Any]) -> None:
    out = story[0]
    table = (out / "comparison.md").read_text()
    assert "| naive | FAIL | at-most-once: held |" in table
    assert "| ackmap | PASS | at-least-once: held | 0 |" in table
    html = (out / "comparison.html").read_text()
    assert 'src="naive/over_time.png"' in html and 'src="ackmap/over_time.png"' in html
    manifest = json.loads((out / "naive" / "manifest.json").read_text())
    assert manifest["seed"] == 1
    assert manifest["claims"] == {"delivery": "at-most-once", "ordered": True, "survives_restart": False}
