"""Drift between a saved comparison cell and a fresh run: only what must not change with timing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.compare import (
    COMMITTED_COMPARISON,
    drift,
    drift_from_saved,
    load_cell,
    report_link,
    write_comparison,
)
from harness.report.saved import saved_targets


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


def _saved_cell(root: Path, target: str, doc: dict[str, Any], html: bool = True) -> None:
    folder = root / target
    folder.mkdir(parents=True)
    (folder / "verdict.json").write_text(json.dumps(doc))
    (folder / "report.md").write_text("# report\n")
    if html:
        (folder / "report.html").write_text("<html></html>")


def test_a_comparison_page_has_no_none_and_at_most_three_columns(tmp_path: Path) -> None:
    doc = {**_doc(True, 0), "latency_ms": {"delivery": {"p50": 1.5, "p95": None, "p99": None, "max": None},
                                           "redelivery": {"p50": None, "p95": None, "p99": None, "max": None}}}
    names = [f"t{i}" for i in range(5)]
    for name in names:
        _saved_cell(tmp_path, name, doc)
    write_comparison(tmp_path, "s", [load_cell("s", n, tmp_path / n) for n in names])
    page = (tmp_path / "comparison.html").read_text()
    assert "None" not in page and "None" not in (tmp_path / "comparison.md").read_text()
    assert "grid-template-columns: repeat(3, minmax(0, 1fr))" in page
    assert page.count('<a href="t0/report.html">report.html</a>') == 2  # table row and card
    assert (tmp_path / "latency_compared.png").stat().st_size > 1000


def test_committed_comparison_links_report_md_and_other_folders_report_html(tmp_path: Path) -> None:
    _saved_cell(tmp_path, "with-html", _doc(True, 0))
    _saved_cell(tmp_path, "md-only", _doc(True, 0), html=False)
    assert report_link(load_cell("s", "with-html", tmp_path / "with-html"), tmp_path) == "with-html/report.html"
    assert report_link(load_cell("s", "md-only", tmp_path / "md-only"), tmp_path) == "md-only/report.md"
    committed = COMMITTED_COMPARISON / "heartbeat-timeout"
    assert report_link(load_cell("heartbeat-timeout", "naive", committed / "naive"), committed) == "naive/report.md"


def test_saved_targets_keep_the_order_of_the_saved_table(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        _saved_cell(tmp_path, name, _doc(True, 0))
    (tmp_path / "comparison.md").write_text("| target | verdict |\n|---|---|\n| c | PASS | x |\n| b | FAIL | x |\n")
    assert saved_targets(tmp_path) == ["c", "b", "a"]


def test_a_cell_whose_faults_did_not_all_bite_says_so() -> None:
    from harness.report.compare import RunCell

    bit = _doc(True, 0)
    missed = {**_doc("unknown", 0, held=None),
              "details": {"claim": {"held": None}, "faults": {"problems": ["fault f touched no traffic: …"]}}}
    assert RunCell("s", "t", Path("."), bit).cell() == "0 / 0 / 0 / - ms · claim held"
    assert RunCell("s", "t", Path("."), missed).cell() == "0 / 0 / 0 / - ms · claim unknown · faults did not all bite"


def test_a_comparison_of_room_runs_shows_fan_out_and_stable_latency_and_none_without(tmp_path: Path) -> None:
    from harness.checker import check
    from tests.checker.test_rooms import _mixed

    with_rooms = check(_mixed().frame()).to_dict()
    _saved_cell(tmp_path, "rooms", with_rooms)
    _saved_cell(tmp_path, "plain", _doc(True, 0))
    write_comparison(tmp_path, "s", [load_cell("s", n, tmp_path / n) for n in ("rooms", "plain")])
    md = (tmp_path / "comparison.md").read_text()
    assert "| rooms | 3 | 2 | 2.3 | 7 | 3 | 4 | 0 | - | - |" in md and "| plain |" not in md.split("## Rooms")[1]
    page = (tmp_path / "comparison.html").read_text()
    assert 'id="rooms-compared"' in page and page.count('class="small room-line"') == 1
    assert "3 room sends to 2 rooms → 7 expected copies (fan-out 2.3): 3 delivered, 4 lost" in page

    (tmp_path / "rooms" / "verdict.json").write_text(json.dumps(_doc(True, 0)))
    write_comparison(tmp_path, "s", [load_cell("s", n, tmp_path / n) for n in ("rooms", "plain")])
    assert "## Rooms" not in (tmp_path / "comparison.md").read_text()
    assert 'id="rooms-compared"' not in (tmp_path / "comparison.html").read_text()
