"""Run the real `harness` CLI as a subprocess (Locust must never be imported into the pytest process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STORY = ROOT / "scenarios" / "heartbeat-timeout.toml"


def harness(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def verdict(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "verdict.json").read_text())
    return data


COMPARISON = ROOT / "reports" / "comparison"


def assert_as_committed(scenario: str, target: str, folder: Path) -> None:
    """A fresh run of a cell has the committed comparison's outcome (verdict, claim, any loss)."""
    from harness.report.compare import drift_from_saved

    differences = drift_from_saved(COMPARISON, scenario, target, verdict(folder))
    assert not differences, f"{scenario} × {target} differs from the committed comparison: {differences}"
