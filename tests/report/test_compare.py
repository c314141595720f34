"""Drift between a saved comparison cell and a fresh run: only what must not change with timing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.compare import drift, drift_from_saved


def _doc(valid: Any, lost: int, reordered: int = 0, held: Any = True) -> dict[str, Any]:
    return {"valid": valid, "counts": {"lost": lost, "reordered": reordered, "unexpected": 0},
            "details": {"claim": {"held": held}}}


def test_same_outcome_with_other_counts_is_no_drift() -> None:
    assert drift(_doc(False, 105), _doc(False, 98, reordered=3)) == []


def test_verdict_claim_and_loss_changes_are_named() -> None:
    assert drift(_doc(True, 0), _doc(False, 2, held=False)) == [
        "valid: True -> False", "claim: held -> violated", "any_lost: False -> True"]
    assert drift(_doc(True, 0), _doc("unknown", 0, held=None)) == ["valid: True -> unknown", "claim: held -> unknown"]


def test_a_cell_missing_from_the_saved_comparison_is_a_difference(tmp_path: Path) -> None:
    (tmp_path / "s" / "t").mkdir(parents=True)
    (tmp_path / "s" / "t" / "verdict.json").write_text(json.dumps(_doc(True, 0)))
    assert drift_from_saved(tmp_path, "s", "t", _doc(True, 0)) == []
    assert drift_from_saved(tmp_path, "s", "t", _doc(False, 3)) == ["valid: True -> False", "any_lost: False -> True"]
    assert drift_from_saved(tmp_path, "s", "other", _doc(True, 0)) == [f"not in {tmp_path}"]
