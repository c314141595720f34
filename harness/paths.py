"""Where the project's own files are (scenarios, reports, the locustfile)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PROJECT_ROOT", "SCENARIOS_DIR", "DEFAULT_SCENARIO", "REPORTS_DIR", "LOCUSTFILE"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCENARIOS_DIR = PROJECT_ROOT / "scenarios"
DEFAULT_SCENARIO = SCENARIOS_DIR / "heartbeat-timeout.toml"
REPORTS_DIR = PROJECT_ROOT / "reports"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
