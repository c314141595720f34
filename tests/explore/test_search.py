"""The search loop over a stand-in runner (pure logic; the real runs are in test_explore_finds.py).

The stand-in "server" breaks exactly when a trial kills the target while more than one user is connected:
the search must stop at the first such trial, shrink it to that one fault and two users, confirm it, and
write everything down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.explore.search import SearchSettings, explore
from harness.explore.trial import TrialResult
from harness.explore.vocabulary import DEFAULT_BASE, Bounds, Capabilities


def _runner(calls: list[dict[str, Any]], flaky_every: int = 0) -> Any:
    def run(trial: dict[str, Any], target: str, folder: Path) -> TrialResult:
        calls.append(trial)
        folder.mkdir(parents=True, exist_ok=True)
        breaks = any(f["type"] == "kill_target" for f in trial["faults"])
        if breaks and flaky_every and len(calls) % flaky_every == 0:
            breaks = False  # timing: this run did not hit the bug
        if breaks:
            return TrialResult("violation", str(folder), 1.0, False, "3 acknowledged message(s) lost",
                               {"lost": 3}, ["lost=3"])
        return TrialResult("pass", str(folder), 1.0, True)

    return run


def _settings(tmp_path: Path, **kw: Any) -> SearchSettings:
    return SearchSettings(target="redis-store", base=DEFAULT_BASE, caps=Capabilities(True, True), out=tmp_path,
                          seed=kw.pop("seed", 1), budget_s=600, bounds=Bounds(max_moves=2), **kw)


def test_finds_shrinks_to_the_one_fault_and_confirms(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    record = explore(_settings(tmp_path, trials=200, confirm=3), runner=_runner(calls))
    assert record.found and record.status == "done"
    first = record.violations[0]
    assert "kill_target" in " ".join(first["faults"])
    assert all(t["outcome"] == "pass" for t in record.trials[:-1])  # stopped at the first violation
    assert record.reproducer is not None
    faults = record.reproducer["faults"]
    assert [f["type"] for f in faults] == ["kill_target"]
    assert sum(c["users"] for c in record.reproducer["cohorts"]) == 2  # users shrunk to the minimum
    assert record.confirmed == (3, 3)
    doc = json.loads((tmp_path / "explore.json").read_text())
    assert doc["reproducer"]["confirmed"] == "fails 3 of 3" and doc["found"] is True
    assert (tmp_path / "minimal.toml").exists()
    assert "fails 3 of 3" in (tmp_path / "explore.md").read_text()


def test_a_candidate_that_fails_only_sometimes_is_still_kept(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    record = explore(_settings(tmp_path, trials=200, confirm=4, retries=3), runner=_runner(calls, flaky_every=2))
    assert record.reproducer is not None
    assert [f["type"] for f in record.reproducer["faults"]] == ["kill_target"]
    failed, runs = record.confirmed
    assert runs == 4 and 1 <= failed <= 3  # "fails 2 of 4": the rate is reported, not hidden


def test_a_correct_target_gives_no_finding_and_respects_the_trial_cap(tmp_path: Path) -> None:
    record = explore(_settings(tmp_path, trials=7),
                     runner=lambda t, n, f: TrialResult("pass", str(f), 1.0, True))
    assert not record.found and len(record.trials) == 7 and record.reproducer is None
    assert json.loads((tmp_path / "explore.json").read_text())["outcomes"] == {"pass": 7}


def test_runs_that_never_start_stop_the_search_with_their_error(tmp_path: Path) -> None:
    calls: list[Path] = []

    def never_starts(trial: dict[str, Any], target: str, folder: Path) -> TrialResult:
        calls.append(folder)
        return TrialResult("error", str(folder), 1.0, reason="target 'remote' is given by URL and has no secret")

    record = explore(_settings(tmp_path, trials=200), runner=never_starts)
    assert len(calls) == 2 and record.status == "error: target 'remote' is given by URL and has no secret"
    assert json.loads((tmp_path / "explore.json").read_text())["status"].startswith("error:")


def test_one_run_that_did_not_start_does_not_stop_the_search(tmp_path: Path) -> None:
    def once(trial: dict[str, Any], target: str, folder: Path) -> TrialResult:
        failed = folder.name == "001"
        return TrialResult("error" if failed else "pass", str(folder), 1.0, True, "flaky start" if failed else None)

    record = explore(_settings(tmp_path, trials=5), runner=once)
    assert record.status == "done" and [t["outcome"] for t in record.trials].count("error") == 1


def test_ctrl_c_keeps_what_was_found(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    inner = _runner(calls)

    def interrupted_while_shrinking(trial: dict[str, Any], target: str, folder: Path) -> TrialResult:
        if "shrink" in folder.parts:
            raise KeyboardInterrupt
        return inner(trial, target, folder)

    record = explore(_settings(tmp_path, trials=200), runner=interrupted_while_shrinking)
    doc = json.loads((tmp_path / "explore.json").read_text())
    assert doc["status"] == "interrupted" and doc["found"] is True and doc["trials"][-1]["outcome"] == "violation"
    assert record.reproducer is None
