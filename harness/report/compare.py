"""Comparison pages: targets side by side for one scenario, or a scenarios × targets matrix.

Each cell comes from a run folder's verdict.json, so the pages can be regenerated from saved runs.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.paths import REPORTS_DIR
from harness.report.charts import latency_comparison_chart
from harness.report.html import TEMPLATES
from harness.report.rooms import room_summary
from harness.report.summary import experiment_line, held, label
from harness.report.words import claim_sentence, headline, number

__all__ = ["RunCell", "load_cell", "write_comparison", "matrix_markdown", "outcome", "drift", "drift_from_saved",
           "COMMITTED_COMPARISON", "report_link", "MAX_COLUMNS", "ROOM_COMPARISON", "room_comparison"]

COMMITTED_COMPARISON = REPORTS_DIR / "comparison"
"""The comparison committed to the repository. Its run folders keep report.md, verdict.json and the chart PNGs,
but not report.html (git-ignored there, with the ledgers: .gitignore), so its pages link to report.md."""

MAX_COLUMNS = 3
"""Charts per row on a comparison page: more shrink each chart below what a person can read."""


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
        problems = ((self.doc.get("details") or {}).get("faults") or {}).get("problems") or []
        bite = " · faults did not all bite" if problems else ""  # the fault evidence failed: nothing proven
        return (f"{c.get('lost', 0)} / {c.get('duplicated', 0)} / {c.get('reordered', 0)} / "
                f"{'-' if redelivery is None else round(redelivery)} ms · {claim}{bite}")


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


def _quantile(cell: RunCell, name: str, key: str) -> Any:
    return ((cell.doc.get("latency_ms") or {}).get(name) or {}).get(key)


def _table(cells: list[RunCell]) -> list[str]:
    lines = ["| target | verdict | claim | lost | unseen | duplicated | reordered | unexpected | p50 ms | p99 ms | "
             "p99 redelivery ms | gate |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for cell in cells:
        c = cell.counts
        claim = (cell.doc.get("details") or {}).get("claim") or {}
        lines.append(
            f"| {cell.target} | {label(cell.doc.get('valid'))} | {claim.get('delivery', '?')}: "
            f"{held(claim.get('held'))} | "
            + " | ".join(number(c.get(k)) for k in ("lost", "unseen", "duplicated", "reordered", "unexpected"))
            + f" | {number(_quantile(cell, 'delivery', 'p50'))} | {number(_quantile(cell, 'delivery', 'p99'))} | "
            f"{number(cell.p99('redelivery'))} | exit {number(cell.doc.get('exit_code'))} |")
    return lines


ROOM_COMPARISON = ("target", "room sends", "rooms", "fan-out", "expected receipts", "delivered", "lost", "unseen",
                   "stable p50 ms", "stable p99 ms")
"""Columns of the comparison's rooms table, one row per target whose run had rooms (the per-room and
per-member detail stays in each run's report: a page of every target's rooms would not be small)."""


def room_comparison(cells: list[RunCell]) -> list[list[str]]:
    """Rows of ``ROOM_COMPARISON`` for the cells whose verdict has ``details.rooms`` (empty: no room runs)."""
    rows: list[list[str]] = []
    for cell in cells:
        rooms = (cell.doc.get("details") or {}).get("rooms")
        if not rooms:
            continue
        totals = (rooms.get("per_member") or {}).get("totals") or {}
        stable = rooms.get("stable_latency_ms") or {}
        rows.append([cell.target, number(rooms.get("sends")), number(len(rooms.get("per_room") or {})),
                     number(rooms.get("fanout")), number(rooms.get("expected_receipts")),
                     number(totals.get("delivered")), number(totals.get("lost")), number(totals.get("unseen")),
                     number(stable.get("p50")), number(stable.get("p99"))])
    return rows


def report_link(cell: RunCell, out_dir: Path) -> str:
    """The run's report, relative to the comparison page: report.html where it exists and is kept, report.md in
    the committed comparison (where report.html is not committed) or when no HTML was written."""
    committed = out_dir.resolve().is_relative_to(COMMITTED_COMPARISON.resolve())
    name = "report.html" if (cell.folder / "report.html").exists() and not committed else "report.md"
    return (cell.folder / name).relative_to(out_dir).as_posix()


def _card(cell: RunCell, out_dir: Path) -> dict[str, Any]:
    """What the page shows for one target, with no missing value printed as None."""
    doc = cell.doc

    def chart(*names: str) -> str | None:
        for name in names:
            if (cell.folder / f"{name}.png").exists():
                return (cell.folder / f"{name}.png").relative_to(out_dir).as_posix()
        return None

    counts = cell.counts
    return {
        "target": cell.target, "badge": label(doc.get("valid")), "headline": headline(doc),
        "reason": doc.get("reason"), "claim": claim_sentence(doc), "experiment": experiment_line(doc),
        "report": report_link(cell, out_dir), "verdict": (cell.folder / "verdict.json").relative_to(out_dir).as_posix(),
        "messages": chart("messages", "over_time"), "over_time": chart("over_time") if chart("messages") else None,
        "cohorts": chart("cohorts") if any(
            counts.get(k) for k in ("lost", "unseen", "duplicated")) else None,
        "row": [number(counts.get(k)) for k in ("lost", "unseen", "duplicated", "reordered", "unexpected")]
        + [number(_quantile(cell, "delivery", "p50")), number(_quantile(cell, "delivery", "p99")),
           number(cell.p99("redelivery"))],
        "held": held(((doc.get("details") or {}).get("claim") or {}).get("held")),
        "delivery": ((doc.get("details") or {}).get("claim") or {}).get("delivery") or "-",
        "exit": number(doc.get("exit_code")),
        "rooms": room_summary(doc["details"]["rooms"]) if (doc.get("details") or {}).get("rooms") else None,
    }


def write_comparison(out_dir: Path, scenario: str, cells: list[RunCell]) -> None:
    """comparison.md, comparison.html and latency_compared.png for one scenario's targets (run folders under
    ``out_dir``). Everything comes from each folder's verdict.json and chart files, so saved runs redraw it."""
    lines = [f"# {scenario}: targets compared", ""] + _table(cells) + [""]
    rooms = room_comparison(cells)
    if rooms:
        lines += ["## Rooms", "", "| " + " | ".join(ROOM_COMPARISON) + " |",
                  "|---|" + "---:|" * (len(ROOM_COMPARISON) - 1)] + ["| " + " | ".join(r) + " |" for r in rooms]
        lines += ["", "Per room and per member: each target's report.", ""]
    (out_dir / "comparison.md").write_text("\n".join(lines))
    uri = latency_comparison_chart([(cell.target, cell.doc.get("latency_ms") or {}) for cell in cells],
                                   f"{scenario}: latency by target")
    (out_dir / "latency_compared.png").write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    page = TEMPLATES.get_template("compare.html.j2").render(
        scenario=scenario, cards=[_card(cell, out_dir) for cell in cells], columns=min(MAX_COLUMNS, len(cells)) or 1,
        room_columns=ROOM_COMPARISON, rooms=rooms)
    (out_dir / "comparison.html").write_text(page)


def matrix_markdown(scenarios: list[str], targets: list[str], cells: dict[tuple[str, str], RunCell]) -> str:
    """scenarios × targets; each cell: lost / duplicated / reordered / p99 redelivery, and the claim check."""
    lines = ["| scenario | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
    for scenario in scenarios:
        row = [cells[(scenario, t)].cell() if (scenario, t) in cells else "n/a" for t in targets]
        lines.append(f"| {scenario} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
