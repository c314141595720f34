"""One explore trial = one ordinary `harness run` of a generated scenario, in its own run folder.

Run as a subprocess of the same interpreter, exactly as a user would run the written scenario, so a
trial's folder (scenario.toml, ledger, verdict, report) reproduces by itself. What counts as a finding is
judged against the target's own claims: a **violation** is a verdict ``valid = false`` whose claim check
failed (lost on an at-least-once target, duplicated on an effectively-once one, reordered on an ordered
one, anything unexpected). Loss a target does not claim to prevent (an at-most-once target, or memory
lost in a restart by a target that does not claim to survive one) is recorded, not a finding. An
``unknown`` verdict (the experiment itself was not sound) never counts as a finding.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from harness.config import Scenario
from harness.run.process import child_dies_with_parent

__all__ = ["Outcome", "TrialResult", "classify", "run_trial", "write_scenario"]

Outcome = Literal["violation", "loss-within-claim", "pass", "unknown", "error", "interrupted"]


@dataclass
class TrialResult:
    """What one run of one scenario showed."""

    outcome: Outcome
    folder: str
    seconds: float
    valid: Any = None
    reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def classify(verdict: dict[str, Any]) -> tuple[Outcome, list[str]]:
    """A verdict.json's meaning for the search, and the claim's violations (``lost=3``, …)."""
    claim = (verdict.get("details") or {}).get("claim") or {}
    violations = [str(v) for v in claim.get("violations") or []]
    valid = verdict.get("valid")
    if valid is False and claim.get("held") is False:
        return "violation", violations
    if valid is False:
        return "loss-within-claim", violations
    if valid is True:
        return "pass", violations
    return "unknown", violations


def write_scenario(trial: dict[str, Any], path: Path) -> None:
    """Validate the trial as the run will, then write it as TOML (a generator bug fails here, not mid-run)."""
    Scenario.model_validate(trial)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(trial), encoding="utf-8")


def _stop(proc: subprocess.Popen[bytes], sig: int, grace_s: float) -> None:
    """Ask the run to stop; kill it if it has not after ``grace_s``."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_trial(trial: dict[str, Any], target: str, folder: Path, budget_s: float = 300.0) -> TrialResult:
    """Write ``folder/scenario.toml``, run it on ``target`` into ``folder/run``, read the verdict."""
    scenario = folder / "scenario.toml"
    write_scenario(trial, scenario)
    run_dir = folder / "run"
    argv = [sys.executable, "-m", "harness", "run", str(scenario), "--target", target, "--out", str(run_dir)]
    started = time.monotonic()
    with open(folder / "harness.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=child_dies_with_parent(),
                                start_new_session=True)  # Ctrl-C reaches the search first; it stops the run
        try:
            proc.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            _stop(proc, signal.SIGTERM, 30)
        except KeyboardInterrupt:
            _stop(proc, signal.SIGINT, 60)  # the run writes what it has and says it is incomplete
            raise
    seconds = round(time.monotonic() - started, 1)
    verdict_path = run_dir / "verdict.json"
    if not verdict_path.exists():
        lines = (folder / "harness.log").read_text(errors="replace").strip().splitlines()
        errors = [line.removeprefix("error: ") for line in lines if line.startswith("error:")]
        reason = errors[0] if errors else " | ".join(lines[-3:]) or f"exit {proc.returncode}"
        return TrialResult("error", str(folder), seconds, reason=reason)
    verdict = json.loads(verdict_path.read_text())
    outcome, violations = classify(verdict)
    return TrialResult(outcome, str(folder), seconds, verdict.get("valid"), verdict.get("reason"),
                       {k: int(v) for k, v in (verdict.get("counts") or {}).items() if isinstance(v, int)},
                       violations)
