"""harness new-target in an empty folder, then its one-command smoke run: a real exchange, a real verdict
(a scaffolded server broken to lose messages fails the same smoke run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import verdict

pytestmark = pytest.mark.integration


def _harness(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=240,
                          cwd=cwd)


def test_the_scaffold_smoke_run_passes_and_a_lossy_server_fails_it(tmp_path: Path) -> None:
    made = _harness(tmp_path, "new-target", "shop")
    assert made.returncode == 0, made.stderr
    assert "harness run shop/scenario.toml --expect" in made.stdout
    smoke = _harness(tmp_path, "run", "shop/scenario.toml", "--expect", "--out", "run")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    result = verdict(tmp_path / "run")
    assert result["valid"] is True and result["counts"]["lost"] == 0 and result["counts"]["acknowledged"] > 0
    assert result["details"]["faults"]["applied"] == 1  # the silence really happened, through the proxy
    server = tmp_path / "shop" / "server.py"
    text = server.read_text()
    assert "kept[to].append((last[to], request[\"body\"]))" in text
    server.write_text(text.replace("kept[to].append((last[to], request[\"body\"]))", "pass  # keeps nothing"))
    broken = _harness(tmp_path, "run", "shop/scenario.toml", "--expect", "--out", "broken")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    lossy = verdict(tmp_path / "broken")
    assert lossy["valid"] is False and lossy["counts"]["lost"] >= 1


def test_a_second_scaffold_of_the_same_name_is_refused(tmp_path: Path) -> None:
    assert _harness(tmp_path, "new-target", "shop").returncode == 0
    again = _harness(tmp_path, "new-target", "shop")
    assert again.returncode == 2 and "already exists; nothing was written" in again.stderr
