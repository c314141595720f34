"""The HTML report renders in a real browser (Debian chromium, headless); a screenshot is kept as an artefact."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report import finalize
from tests.report.test_finalize import _ledger, _story

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium is missing: scripts/setup.sh installs the Debian package"
    return path


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    finalize(_ledger(tmp_path, _story()), target="demo", scenario="story")
    url = (tmp_path / "report.html").as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'class="banner FAIL"' in dom.stdout
    assert "a&gt;b#2" in dom.stdout

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    done = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1100,2400",
                           f"--screenshot={shot}", url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a rendered page with charts, not a blank one
    (ARTIFACTS / "report-verdict.json").write_text((tmp_path / "verdict.json").read_text())
    assert json.loads((ARTIFACTS / "report-verdict.json").read_text())["valid"] is False
