"""Comparison pages: targets side by side for one scenario, or a scenarios × targets matrix.

Each cell comes from a run folder's verdict.json, so the pages can be regenerated from saved runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report.html import TEMPLATES
from harness.report.summary import held, label

__all__ = ["RunCell", "load_cell", "write_comparison", "matrix_markdown", "outcome", "drift", "drift_from_saved"]


@dataclass(frozen=True)
class RunCell:
    """One run's headline numbers."""

    scenario: str
    target: str
    folder: Path
    doc: dict[str, Any]

    @property
    def counts(self) -> dict[str, int]:
        return self.doc.get("counts") or {}

    def p99(self, name: str) -> float | None:
        value = ((self.doc.get("latency_ms") or {}).get(name) or {}).get("p99")
        return None if value is None else float(value)

    @property
    def claim_held(self) -> Any:
        return ((self.doc.get("details") or {}).get("claim") or {}).get("held")

    def cell(self) -> str:
        """lost / duplicated / reordered / p99 redelivery ms, and the claim check."""
        c = self.counts
        if not c:
            return f"{label(self.doc.get('valid'))}: {self.doc.get('reason')}"
        redelivery = self.p99("redelivery")
        claim = {"held": "claim held", "violated": "claim VIOLATED"}.get(held(self.claim_held), "claim unknown")
        return (f"{c.get('lost', 0)} / {c.get('duplicated', 0)} / {c.get('reordered', 0)} / "
                f"{'-' if redelivery is None else round(redelivery)} ms · {claim}")


def outcome(doc: dict[str, Any]) -> dict[str, Any]:
    """What must not change between two runs of the same cell: the verdict, whether the target's claim
    held, and whether anything was lost, duplicated or reordered (exact counts vary with timing)."""
    counts = doc.get("counts") or {}
    claim = ((doc.get("details") or {}).get("claim") or {}).get("held")
    # Reordering and duplicates of targets that do not claim to prevent them come and go with timing; where
    # a target claims order or effectively-once, they already decide ``valid``.
    return {"valid": doc.get("valid"), "claim": held(claim),
            **{f"any_{k}": counts.get(k, 0) > 0 for k in ("lost", "unexpected")}}


def drift(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """How ``actual``'s outcome differs from ``expected``'s, one line per field (empty: same outcome)."""
    want, got = outcome(expected), outcome(actual)
    return [f"{k}: {want[k]} -> {got[k]}" for k in want if want[k] != got[k]]


def drift_from_saved(saved_root: Path, scenario: str, target: str, doc: dict[str, Any]) -> list[str]:
    """``drift`` of a fresh verdict from the saved comparison's cell ``saved_root/scenario/target``."""
    saved = saved_root / scenario / target / "verdict.json"
    if not saved.exists():
        return [f"not in {saved_root}"]
    return drift(json.loads(saved.read_text()), doc)


def load_cell(scenario: str, target: str, folder: Path) -> RunCell:
    path = folder / "verdict.json"
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {
        "valid": "unknown", "reason": "no verdict.json (run did not start)"}
    return RunCell(scenario, target, folder, doc)


def _table(cells: list[RunCell]) -> list[str]:
    lines = ["| target | verdict | claim | lost | unseen | duplicated | reordered | unexpected | p50 ms | p99 ms | "
             "p99 redelivery ms | gate |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for cell in cells:
        c = cell.counts
        claim = (cell.doc.get("details") or {}).get("claim") or {}
        delivery = ((cell.doc.get("latency_ms") or {}).get("delivery") or {})
        lines.append(
            f"| {cell.target} | {label(cell.doc.get('valid'))} | {claim.get('delivery', '?')}: "
            f"{held(claim.get('held'))} | {c.get('lost', '-')} | "
            f"{c.get('unseen', '-')} | {c.get('duplicated', '-')} | {c.get('reordered', '-')} | "
            f"{c.get('unexpected', '-')} | {delivery.get('p50', '-')} | {delivery.get('p99', '-')} | "
            f"{cell.p99('redelivery') or '-'} | exit {cell.doc.get('exit_code', '-')} |")
    return lines


def write_comparison(out_dir: Path, scenario: str, cells: list[RunCell]) -> None:
    """comparison.md and comparison.html for one scenario's targets (run folders under ``out_dir``)."""
    lines = [f"# {scenario}: targets compared", ""] + _table(cells) + [""]
    (out_dir / "comparison.md").write_text("\n".join(lines))
    page = TEMPLATES.get_template("compare.html.j2").render(
        scenario=scenario, cells=cells, label=label, held=held,
        rel=lambda cell, name: (cell.folder / f"{name}.png").relative_to(out_dir).as_posix())
    (out_dir / "comparison.html").write_text(page)


def matrix_markdown(scenarios: list[str], targets: list[str], cells: dict[tuple[str, str], RunCell]) -> str:
    """scenarios × targets; each cell: lost / duplicated / reordered / p99 redelivery, and the claim check."""
    lines = ["| scenario | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
    for scenario in scenarios:
        row = [cells[(scenario, t)].cell() if (scenario, t) in cells else "n/a" for t in targets]
        lines.append(f"| {scenario} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
