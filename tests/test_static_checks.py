"""Lint and type checks run with the suite, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    paths = ["harness", "targets", "tests", "bench", "examples"]
    run = subprocess.run([sys.executable, "-m", "ruff", "check", *paths], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_strict_is_clean() -> None:
    run = subprocess.run([sys.executable, "-m", "mypy", "harness", "targets"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_readme_table_is_the_committed_matrix() -> None:
    """The README's "which design survives what" table is generated (scripts/readme_table.py), never typed."""
    matrix = (ROOT / "reports" / "comparison" / "matrix.md").read_text()
    table = [line for line in matrix.splitlines() if line.startswith("|")]
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- matrix:start -->", 1)[1].split("<!-- matrix:end -->", 1)[0]
    assert [line for line in block.splitlines() if line.startswith("|")] == table
