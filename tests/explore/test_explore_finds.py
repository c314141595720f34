"""`harness explore` on real runs: it finds bugs the shipped scenarios miss, shrinks them, and raises no
false alarm on a correct design.

The broken targets (tests/explore/broken/) are copies of the redis-store design with one flaw each:
``write-behind`` acknowledges a send before storing it (lost only if the process dies mid-traffic),
``outage-buffer`` buffers sends in memory while Redis is down (lost only if the target stops during a
store outage). The default suite runs one short search; the full searches are marked slow (minutes each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.integration.helpers import ROOT, harness, verdict

pytestmark = pytest.mark.integration

BASE = ROOT / "tests" / "explore" / "broken_targets.toml"


def _explore(out: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the broken targets are modules of the test tree
    return subprocess.run([sys.executable, "-m", "harness", "explore", "--base", str(BASE), "--out", str(out),
                           *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def _record(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "explore.json").read_text())
    return doc


def test_a_short_search_finds_the_ack_before_store_bug_and_writes_a_reproducer(tmp_path: Path) -> None:
    # Seed 2 draws a mid-traffic kill_target in its first trial (test_vocabulary pins the generator).
    run = _explore(tmp_path, "--target", "write-behind", "--seed", "2", "--trials", "1", "--no-shrink",
                   "--confirm", "1", timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    doc = _record(tmp_path)
    assert doc["status"] == "done" and doc["found"] is True
    assert [t["outcome"] for t in doc["trials"]] == ["violation"]
    assert doc["trials"][0]["moves"] == ["kill_target"]
    assert doc["reproducer"]["confirmed"] in ("fails 1 of 1", "fails 0 of 1")
    minimal = tomllib.loads((tmp_path / "minimal.toml").read_text())
    assert [f["type"] for f in minimal["faults"]] == ["kill_target"]
    trial = verdict(tmp_path / "trials" / "000" / "run")
    assert trial["valid"] is False and trial["counts"]["lost"] > 0
    assert trial["details"]["claim"]["violations"][0].startswith("lost=")
    assert "reproduce: harness run" in run.stdout and "explore.md" in run.stdout


def test_seed_two_draws_a_kill_first() -> None:
    from harness.explore.search import _trial_rng
    from harness.explore.vocabulary import Bounds, Capabilities, propose

    base = tomllib.loads(BASE.read_text())
    trial, moves = propose(_trial_rng(2, 0), base, "write-behind", Capabilities(True, True), Bounds())
    assert moves == ["kill_target"]


def test_bad_input_is_refused_with_a_reason(tmp_path: Path) -> None:
    run = _explore(tmp_path, "--target", "no-such-target", "--trials", "1", timeout=120)
    assert run.returncode == 2 and "unknown target 'no-such-target'" in run.stderr
    run = _explore(tmp_path, "--target", "write-behind", "--budget", "ten minutes", timeout=120)
    assert run.returncode == 2 and "not a duration" in run.stdout + run.stderr


def _with_broken_targets(scenario: Path, folder: Path) -> Path:
    """A shipped scenario with the broken targets' definitions added, so it can run against them."""
    raw = tomllib.loads(scenario.read_text())
    raw["target"] = tomllib.loads(BASE.read_text())["target"]
    raw["targets"] = ["write-behind", "outage-buffer"]
    raw["expect"] = {}
    raw.setdefault("store", {})["persistence"] = "always"
    path = folder / scenario.name
    path.write_text(tomli_w.dumps(raw))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["server-restart", "store-crash-aof", "heartbeat-timeout", "half-open",
                                  "flapping", "latency-jitter"])
def test_the_shipped_scenarios_miss_both_bugs(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _with_broken_targets(ROOT / "scenarios" / f"{name}.toml", tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for target in ("write-behind", "outage-buffer"):
        run = harness("run", str(path), "--target", target, "--out", str(tmp_path / target), timeout=400)
        doc = verdict(tmp_path / target)
        assert doc["details"]["claim"]["held"] is not False, (name, target, run.stdout)


@pytest.mark.slow
@pytest.mark.parametrize(("target", "seed", "moves"), [("write-behind", 1, {"kill_target"}),
                                                       ("outage-buffer", 1, {"kill_store", "restart_store"})])
def test_explore_finds_and_shrinks_each_bug_to_at_most_two_faults(tmp_path: Path, target: str, seed: int,
                                                                  moves: set[str]) -> None:
    run = _explore(tmp_path, "--target", target, "--seed", str(seed), "--budget", "15m", "--confirm", "3",
                   timeout=2400)
    assert run.returncode == 1, run.stdout + run.stderr
    doc = _record(tmp_path)
    minimal = tomllib.loads((tmp_path / "minimal.toml").read_text())
    types = {f["type"] for f in minimal["faults"]}
    assert len(minimal["faults"]) <= 2 and types & moves, minimal["faults"]
    failed = int(doc["reproducer"]["confirmed"].split()[1])
    assert failed >= 1, doc["reproducer"]
    print(f"{target}: {len(doc['trials'])} trials, {doc['runs']} runs, {doc['elapsed_s']} s; "
          f"reproducer {doc['reproducer']['faults']} ({doc['reproducer']['confirmed']})")


@pytest.mark.slow
def test_a_correct_design_explored_for_the_same_budget_gives_no_false_alarm(tmp_path: Path) -> None:
    run = _explore(tmp_path, "--target", "redis-store", "--seed", "1", "--budget", "15m", timeout=2400)
    doc = _record(tmp_path)
    assert run.returncode == 0 and doc["found"] is False, run.stdout
    assert doc["outcomes"].get("pass", 0) >= len(doc["trials"]) // 2, doc["outcomes"]  # judged, not hollow
