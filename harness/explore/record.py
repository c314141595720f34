"""What a search did, written to ``explore.json`` and ``explore.md`` after every event (an interrupted search
keeps everything so far)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.explore.trial import TrialResult

__all__ = ["ExploreRecord"]


class ExploreRecord:
    """Trials, shrink steps, the minimal reproducer and its confirmation runs, with times."""

    def __init__(self, out: Path, target: str, seed: int, budget_s: float) -> None:
        self.out = out
        self.target = target
        self.seed = seed
        self.budget_s = budget_s
        self.started = time.time()
        self.status = "running"
        self.trials: list[dict[str, Any]] = []
        self.shrinks: list[dict[str, Any]] = []
        self.confirms: list[dict[str, Any]] = []
        self.reproducer: dict[str, Any] | None = None
        self.runs = 0
        out.mkdir(parents=True, exist_ok=True)
        self._write()

    # -- events ----------------------------------------------------------------------------------------------
    def trial(self, index: int, moves: list[str], scenario: dict[str, Any], result: TrialResult) -> None:
        self.runs += 1
        self.trials.append({"index": index, "moves": moves, "faults": _faults(scenario),
                            "users": sum(int(c["users"]) for c in scenario["cohorts"]),
                            "rate_per_user": scenario["load"]["rate_per_user"],
                            "duration_s": scenario["load"]["duration_s"], **result.as_dict()})
        self._write()

    def shrink_step(self, step: int, change: str, scenario: dict[str, Any], kept: bool,
                    result: TrialResult | None, size: tuple[Any, ...]) -> None:
        self.shrinks.append({"step": step, "change": change, "kept": kept, "faults": _faults(scenario),
                             "size": list(size), "folder": result.folder if result else None})
        self._write()

    def minimal(self, scenario: dict[str, Any]) -> None:
        self.reproducer = scenario
        self._write()

    def confirmation(self, attempt: int, result: TrialResult) -> None:
        self.runs += 1
        self.confirms.append({"attempt": attempt, **result.as_dict()})
        self._write()

    def finish(self, status: str) -> None:
        self.status = status
        self._write()

    # -- what it adds up to ------------------------------------------------------------------------------------
    @property
    def violations(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t["outcome"] == "violation"]

    @property
    def confirmed(self) -> tuple[int, int]:
        """(violating runs, runs) of the reproducer's confirmation."""
        return sum(c["outcome"] == "violation" for c in self.confirms), len(self.confirms)

    @property
    def found(self) -> bool:
        return bool(self.violations)

    def as_dict(self) -> dict[str, Any]:
        failed, runs = self.confirmed
        return {"target": self.target, "seed": self.seed, "budget_s": self.budget_s, "status": self.status,
                "elapsed_s": round(time.time() - self.started, 1), "runs": self.runs,
                "outcomes": _tally(self.trials), "found": self.found,
                "reproducer": {"faults": _faults(self.reproducer), "path": str(self.out / "minimal.toml"),
                               "users": sum(int(c["users"]) for c in self.reproducer["cohorts"]),
                               "rate_per_user": self.reproducer["load"]["rate_per_user"],
                               "duration_s": self.reproducer["load"]["duration_s"],
                               "confirmed": f"fails {failed} of {runs}" if runs else None}
                if self.reproducer else None,
                "trials": self.trials, "shrink": self.shrinks, "confirm": self.confirms}

    def _write(self) -> None:
        doc = self.as_dict()
        (self.out / "explore.json").write_text(json.dumps(doc, indent=2, default=str))
        (self.out / "explore.md").write_text(render_markdown(doc))


def _faults(scenario: dict[str, Any] | None) -> list[str]:
    """Each fault in one phrase: ``kill_target at 3.2 s for 0.8 s`` / ``timeout on u1 (both) …``."""
    out = []
    for f in (scenario or {}).get("faults", []):
        where = f" on {f['cohort']} ({f.get('stream', 'both')})" if f.get("cohort") else ""
        attrs = ", ".join(f"{k}={v}" for k, v in (f.get("attributes") or {}).items())
        out.append(f"{f['type']}{where} at {f['at_s']:g} s for {f['duration_s']:g} s"
                   + (f" [{attrs}]" if attrs else ""))
    return out


def _tally(trials: list[dict[str, Any]]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for t in trials:
        tally[t["outcome"]] = tally.get(t["outcome"], 0) + 1
    return tally


def render_markdown(doc: dict[str, Any]) -> str:
    """explore.md: the finding first, then every trial and shrink step."""
    lines = [f"# harness explore on {doc['target']}", "",
             f"Seed {doc['seed']}, budget {doc['budget_s']:g} s, {doc['elapsed_s']:g} s spent, {doc['runs']} runs, "
             f"status **{doc['status']}**.", ""]
    tally = ", ".join(f"{n} {k}" for k, n in sorted(doc["outcomes"].items())) or "none"
    lines += [f"Trials: {len(doc['trials'])} ({tally}).", ""]
    repro = doc.get("reproducer")
    if repro:
        lines += ["## Minimal reproducer", "", f"`harness run {repro['path']} --target {doc['target']}` "
                  f"({repro['confirmed'] or 'not confirmed yet'}):", ""]
        lines += [f"- {f}" for f in repro["faults"]]
        lines += [f"- {repro['users']} users, {repro['rate_per_user']:g} msg/s each, "
                  f"{repro['duration_s']:g} s of sending", ""]
    elif doc["found"]:
        lines += ["A violation was found; shrinking did not finish.", ""]
    else:
        lines += ["No trial violated the target's claims.", ""]
    lines += ["## Trials", "", "| # | moves | users | rate | s | outcome | reason |", "|---|---|---|---|---|---|---|"]
    for t in doc["trials"]:
        reason = (t.get("reason") or "").replace("|", "/")[:120]
        lines.append(f"| {t['index']} | {', '.join(t['moves'])} | {t['users']} | {t['rate_per_user']:g} | "
                     f"{t['duration_s']:g} | {t['outcome']} | {reason} |")
    if doc["shrink"]:
        lines += ["", "## Shrinking", "", "| step | change | kept |", "|---|---|---|"]
        lines += [f"| {s['step']} | {s['change']} | {'yes' if s['kept'] else 'no'} |" for s in doc["shrink"]]
    if doc["confirm"]:
        lines += ["", "## Confirmation", ""]
        lines += [f"- run {c['attempt']}: {c['outcome']} ({c.get('reason') or ''})" for c in doc["confirm"]]
    return "\n".join(lines) + "\n"
