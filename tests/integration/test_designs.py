"""Which design survives what: the resume and store targets on the story, and a deploy mid-outage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, STORY, assert_as_committed, harness, verdict

pytestmark = pytest.mark.integration

RESTART = ROOT / "scenarios" / "server-restart.toml"


@pytest.mark.parametrize("target", ["memory-resume", "redis-store", "sse"])
def test_resume_designs_lose_nothing_in_the_story(tmp_path: Path, target: str) -> None:
    run = harness("run", str(STORY), "--target", target, "--out", str(tmp_path), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is True and result["counts"]["lost"] == 0 and result["counts"]["unseen"] == 0
    assert result["counts"]["replayed"] > 0  # U1's backlog came back through the resume path
    assert result["counts"]["unexpected"] == 0
    assert_as_committed("heartbeat-timeout", target, tmp_path)


def test_a_restart_during_an_outage_separates_memory_from_store(tmp_path: Path) -> None:
    run = harness("run", str(RESTART), "--out", str(tmp_path), "--expect", timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    for target in ("naive", "ackmap", "memory-resume", "node-socketio-csr"):
        result = verdict(tmp_path / target)
        assert result["valid"] is False and result["counts"]["lost"] > 0, target
        assert all(">u1-0#" in i for i in result["lost_ids"]), target  # only the offline user loses
    store = verdict(tmp_path / "redis-store")
    assert store["valid"] is True and store["counts"]["lost"] == 0
    sse = verdict(tmp_path / "sse")
    assert sse["valid"] is True and sse["counts"]["lost"] == 0 and sse["counts"]["reordered"] == 0
    assert store["details"]["claim"] == {"delivery": "at-least-once", "ordered": False, "held": True,
                                         "violations": [], "survives_restart": True}
    memory = verdict(tmp_path / "memory-resume")["details"]["claim"]
    assert memory["held"] is True and memory["survives_restart"] is False and "outside" in memory["note"]
    ledger = (tmp_path / "redis-store" / "ledger.jsonl").read_text()
    assert '"action":"inject","fault":"deploy","type":"restart_target"' in ledger
    assert '"action":"heal","fault":"deploy","type":"restart_target"' in ledger
    assert (tmp_path / "redis-store" / "redis.log").exists()
    table = (tmp_path / "comparison.md").read_text()
    assert "| redis-store | PASS |" in table and "| memory-resume | FAIL |" in table
    for target in ("naive", "ackmap", "memory-resume", "node-socketio-csr", "redis-store", "sse"):
        assert_as_committed("server-restart", target, tmp_path / target)


def test_the_node_server_recovers_its_sessions_within_the_window(tmp_path: Path) -> None:
    run = harness("run", str(STORY), "--target", "node-socketio-csr", "--out", str(tmp_path), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr
    ledger = (tmp_path / "ledger.jsonl").read_text()
    assert '"f":"connect","conn":2,"data":{"cohort":"u1","recovered":true}' in ledger  # CSR really resumed
    assert "u1-0 connected (recovered=true)" in (tmp_path / "target-node-socketio-csr.log").read_text()
    assert_as_committed("heartbeat-timeout", "node-socketio-csr", tmp_path)


def test_an_outage_beyond_the_recovery_window_shows_as_loss(tmp_path: Path) -> None:
    run = harness("run", str(ROOT / "scenarios" / "beyond-window.toml"), "--out", str(tmp_path), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is False and result["counts"]["lost"] > 0
    ledger = (tmp_path / "ledger.jsonl").read_text()
    assert '"f":"connect","conn":2,"data":{"cohort":"u1","recovered":false}' in ledger  # the server said so
    assert_as_committed("beyond-window", "node-csr-2s", tmp_path)


def test_a_rolling_deploy_of_two_instances_loses_nothing_with_a_shared_store(tmp_path: Path) -> None:
    scenario = ROOT / "scenarios" / "rolling-deploy.toml"
    run = harness("run", str(scenario), "--target", "redis-store", "--out", str(tmp_path), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is True and result["counts"]["lost"] == 0
    for index in (0, 1):  # both instances ran, and each was restarted once
        log = (tmp_path / f"target-redis-store-{index}.log").read_text()
        assert log.count("$ ") == 2, log[-2000:]
    ledger = (tmp_path / "ledger.jsonl").read_text()
    assert ledger.count('"f":"connect"') >= 4  # both users were moved at least once
    assert_as_committed("rolling-deploy", "redis-store", tmp_path)


@pytest.mark.parametrize(("scenario", "loses"), [("store-crash", True), ("store-crash-aof", False)])
def test_a_store_crash_loses_only_what_was_never_persisted(tmp_path: Path, scenario: str, loses: bool) -> None:
    path = ROOT / "scenarios" / f"{scenario}.toml"
    run = harness("run", str(path), "--target", "redis-store", "--out", str(tmp_path), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert (result["counts"]["lost"] > 0) is loses
    assert (tmp_path / "redis.log").read_text().count("Ready to accept connections") == 2  # killed, restarted
    assert_as_committed(scenario, "redis-store", tmp_path)


def test_the_lean_driver_gives_the_story_the_same_outcome(tmp_path: Path) -> None:
    """The experimental hand-framed client (bench/README.md) against the same servers, same outcomes."""
    run = harness("run", str(STORY), "--driver", "socketio-lean", "--out", str(tmp_path), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr
    for target in ("naive", "ackmap"):
        assert_as_committed("heartbeat-timeout", target, tmp_path / target)
        assert '"driver": "socketio-lean"' in (tmp_path / target / "manifest.json").read_text()
    assert verdict(tmp_path / "ackmap")["counts"]["replayed"] > 0
    ledger = (tmp_path / "ackmap" / "ledger.jsonl").read_text()
    assert '"process":"u1-0","type":"event","f":"connect","conn":2' in ledger
