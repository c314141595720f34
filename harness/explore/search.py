"""The search: draw trials until one violates the target's claims or the budget ends, shrink that trial to
a minimal reproducer, confirm it by repeated runs. Everything found is written as it is found, so an
interrupted search keeps it (``explore.json`` / ``explore.md`` in the output folder).

Timing is not deterministic: a shrink candidate is run up to ``retries`` times and kept as soon as one run
violates (a bug that shows in some runs is still a bug); the reproducer is then run ``confirm`` times and
its failure rate reported ("fails 4 of 5").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.explore.record import ExploreRecord
from harness.explore.shrink import size, variants
from harness.explore.trial import TrialResult, run_trial, write_scenario
from harness.explore.vocabulary import Bounds, Capabilities, propose

__all__ = ["SearchAborted", "SearchSettings", "explore", "Runner"]


class SearchAborted(Exception):
    """The trials cannot run at all (the first ones never started): a setup problem, not a finding."""

Runner = Callable[[dict[str, Any], str, Path], TrialResult]
"""(scenario, target, folder) -> result; ``run_trial`` in real use."""


@dataclass(frozen=True)
class SearchSettings:
    target: str
    base: dict[str, Any]
    caps: Capabilities
    out: Path
    seed: int = 1
    budget_s: float = 1200.0
    trials: int | None = None
    bounds: Bounds = field(default_factory=Bounds)
    shrink: bool = True
    retries: int = 2
    confirm: int = 5
    shrink_runs: int = 40
    """At most this many runs spent shrinking (a budget of its own: shrinking a real find matters more than
    drawing more trials)."""


Progress = Callable[[str, dict[str, Any]], None]
"""(event, details): "trial", "found", "shrink", "confirm", "done"."""


def _trial_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"explore:{seed}:{index}")


def explore(settings: SearchSettings, progress: Progress = lambda event, info: None,
            runner: Runner = run_trial) -> ExploreRecord:
    """Run the search; the record is complete, or marked interrupted when Ctrl-C stopped it."""
    record = ExploreRecord(settings.out, settings.target, settings.seed, settings.budget_s)
    started = time.monotonic()
    try:
        found = _search(settings, record, progress, runner, started)
        if found is not None and settings.shrink:
            found = _shrink(settings, record, progress, runner, found)
        if found is not None:
            _confirm(settings, record, progress, runner, found)
        record.finish("done")
    except KeyboardInterrupt:
        record.finish("interrupted")
    except SearchAborted as exc:
        record.finish(f"error: {exc}")
    progress("done", {"record": record})
    return record


def _search(settings: SearchSettings, record: ExploreRecord, progress: Progress, runner: Runner,
            started: float) -> dict[str, Any] | None:
    index = 0
    while time.monotonic() - started < settings.budget_s and (settings.trials is None or index < settings.trials):
        rng = _trial_rng(settings.seed, index)
        trial, moves = propose(rng, settings.base, settings.target, settings.caps, settings.bounds,
                               name=f"explore-{settings.seed}-{index}")
        result = runner(trial, settings.target, settings.out / "trials" / f"{index:03d}")
        record.trial(index, moves, trial, result)
        progress("trial", {"index": index, "moves": moves, "result": result})
        index += 1
        if result.outcome == "interrupted":
            raise KeyboardInterrupt
        if result.outcome == "error" and len(record.trials) >= 2 and record.trials[-2]["outcome"] == "error":
            # the run never started (a target that cannot start, a missing secret): every trial would fail
            # the same way for the whole budget; say it once instead
            raise SearchAborted(result.reason or "the run did not start")
        if result.outcome == "violation":
            progress("found", {"index": index - 1, "result": result})
            return trial
    return None


def _fails(settings: SearchSettings, runner: Runner, trial: dict[str, Any], folder: Path,
           record: ExploreRecord) -> TrialResult | None:
    """The first violating run of up to ``retries`` runs, or None."""
    for attempt in range(settings.retries):
        result = runner(trial, settings.target, folder / f"run{attempt}")
        record.runs += 1
        if result.outcome == "violation":
            return result
    return None


def _shrink(settings: SearchSettings, record: ExploreRecord, progress: Progress, runner: Runner,
            trial: dict[str, Any]) -> dict[str, Any]:
    current = trial
    spent = 0
    step = 0
    improved = True
    while improved and spent < settings.shrink_runs:
        improved = False
        for change, candidate in variants(current):
            if spent >= settings.shrink_runs:
                break
            before = record.runs
            result = _fails(settings, runner, candidate, settings.out / "shrink" / f"{step:03d}", record)
            spent += record.runs - before
            kept = result is not None
            record.shrink_step(step, change, candidate, kept, result, size(candidate))
            progress("shrink", {"step": step, "change": change, "kept": kept})
            step += 1
            if kept:
                current = candidate
                improved = True
                break
    current = {**current, "name": f"minimal-{settings.target}"}
    write_scenario(current, settings.out / "minimal.toml")
    record.minimal(current)
    return current


def _confirm(settings: SearchSettings, record: ExploreRecord, progress: Progress, runner: Runner,
             trial: dict[str, Any]) -> None:
    if not settings.shrink:
        write_scenario({**trial, "name": f"minimal-{settings.target}"}, settings.out / "minimal.toml")
        record.minimal(trial)
    failures = 0
    for attempt in range(settings.confirm):
        result = runner(trial, settings.target, settings.out / "confirm" / f"{attempt:02d}")
        failures += result.outcome == "violation"
        record.confirmation(attempt, result)
        progress("confirm", {"attempt": attempt, "result": result, "failures": failures})
