"""Workers started elsewhere (``harness worker``) join a ``harness run --remote-workers N``; what is refused
before anything starts (every interface without the opt-in, local plus remote workers, several targets);
and a run whose workers never come ends unknown, saying so, never "violated"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.process import free_port
from tests.integration.helpers import ROOT, harness, verdict

pytestmark = pytest.mark.integration

BLIP = ROOT / "scenarios" / "blip.toml"


@pytest.mark.parametrize(("args", "message"), [
    (["--bind-host", "0.0.0.0"], "listens on every interface"),
    (["--bind-host", "0.0.0.0", "--allow-all-interfaces"], "give --advertise-host"),
    (["--workers", "2", "--remote-workers", "1"], "--workers and --remote-workers do not combine"),
])
def test_refused_before_anything_starts(tmp_path: Path, args: list[str], message: str) -> None:
    run = harness("run", str(BLIP), "--target", "ackmap", "--out", str(tmp_path), *args, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr
    assert not (tmp_path / "ledger.jsonl").exists()


def test_remote_workers_need_one_target(tmp_path: Path) -> None:
    run = harness("run", str(BLIP), "--remote-workers", "1", "--out", str(tmp_path), timeout=60)
    assert run.returncode == 2 and "--remote-workers needs one --target" in run.stderr


def test_a_master_whose_workers_never_join_ends_unknown_and_says_why(tmp_path: Path) -> None:
    run = harness("run", str(BLIP), "--target", "ackmap", "--remote-workers", "2", "--worker-wait-s", "3",
                  "--master-port", str(free_port()), "--out", str(tmp_path), timeout=200)
    assert run.returncode == 3, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] == "unknown" and result["counts"]["lost"] == 0
    assert "only 0 of 2 workers joined, so the run never started" in result["reason"]


def test_workers_started_with_harness_worker_join_and_give_the_local_verdict(tmp_path: Path) -> None:
    """Two worker processes from one ``harness worker --processes 2`` (Locust forks them there)."""
    port = str(free_port())
    master = subprocess.Popen([sys.executable, "-m", "harness", "run", str(BLIP), "--target", "ackmap",
                               "--remote-workers", "2", "--master-port", port, "--out", str(tmp_path / "run")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    worker = subprocess.Popen([sys.executable, "-m", "harness", "worker", str(BLIP), "--target", "ackmap",
                               "--master-host", "127.0.0.1", "--master-port", port, "--processes", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        out, _ = master.communicate(timeout=240)
        worker_out, _ = worker.communicate(timeout=60)
    finally:
        for proc in (master, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert master.returncode == 0, out
    assert worker.returncode == 0, worker_out
    result = verdict(tmp_path / "run")
    assert result["valid"] is True and result["counts"]["lost"] == 0 and result["counts"]["unseen"] == 0
    assert result["counts"]["acknowledged"] > 100
    for node in ("worker-1", "worker-2"):
        assert (tmp_path / "run" / f"ledger-{node}.jsonl").stat().st_size > 0
