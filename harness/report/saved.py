"""Rewrite saved comparison pages from their run folders' verdict.json and chart files (no ledger needed).

The committed comparison (reports/comparison/) keeps no ledgers, so ``harness matrix --from-saved`` cannot
re-judge it; its pages can still be redrawn with the current templates. Targets keep the order of each
scenario's existing comparison.md.

Run: ``.venv/bin/python -m harness.report.saved [ROOT]`` (default: the committed comparison).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from harness.report.compare import COMMITTED_COMPARISON, load_cell, write_comparison

__all__ = ["saved_targets", "rewrite_saved_comparisons"]

_ROW = re.compile(r"^\| ([^|]+?) \| (?:PASS|FAIL|UNKNOWN) \|")


def saved_targets(scenario_dir: Path) -> list[str]:
    """Targets of a saved comparison, in its comparison.md order; folders with a verdict.json not listed there
    come after, by name."""
    listed: list[str] = []
    md = scenario_dir / "comparison.md"
    if md.exists():
        listed = [m.group(1) for line in md.read_text().splitlines() if (m := _ROW.match(line))]
    present = sorted(p.name for p in scenario_dir.iterdir() if (p / "verdict.json").exists())
    return [t for t in listed if t in present] + [t for t in present if t not in listed]


def rewrite_saved_comparisons(root: Path) -> list[Path]:
    """Rewrite comparison.md/.html (and latency_compared.png) of every scenario under ``root`` that already
    has a comparison.md; returns the pages written."""
    written: list[Path] = []
    for scenario_dir in sorted(p for p in root.iterdir() if (p / "comparison.md").exists()):
        targets = saved_targets(scenario_dir)
        if targets:
            cells = [load_cell(scenario_dir.name, t, scenario_dir / t) for t in targets]
            write_comparison(scenario_dir, scenario_dir.name, cells)
            written.append(scenario_dir / "comparison.html")
    return written


if __name__ == "__main__":
    for page in rewrite_saved_comparisons(Path(sys.argv[1]) if len(sys.argv) > 1 else COMMITTED_COMPARISON):
        print(page)
