"""Distributed runs on loopback: a Locust master and two worker processes give the story the same verdict as
one process, every worker's ledger reaches the master, and a worker killed mid-run makes the verdict
unknown, never "lost"."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.run.process import free_port
from tests.integration.helpers import ROOT, STORY, assert_as_committed, harness, verdict

pytestmark = pytest.mark.integration

LOCUSTFILE = ROOT / "harness" / "locustfile.py"


def _locust(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args,
                                 "--scenario", str(STORY), "--target", "ackmap"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def _master_and_workers(out: Path, *master_args: str) -> tuple[subprocess.Popen[bytes], list[subprocess.Popen[bytes]]]:
    port = free_port()
    master = _locust("--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                     "--expect-workers", "2", "--headless", "-u", "2", "-r", "2", "--out", str(out),
                     "--only-summary", *master_args, log=out.parent / f"{out.name}-master.log")
    workers = [_locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port),
                       log=out.parent / f"{out.name}-worker{i}.log") for i in (1, 2)]
    return master, workers


def _reports(folder: Path) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines()]
    return [r["data"] for r in rows if r["f"] == "node"]


def _wait_for_sending(out: Path) -> None:
    deadline = time.monotonic() + 60
    ledger = out / "ledger.jsonl"
    while time.monotonic() < deadline and not (ledger.exists() and '"phase":"start"' in ledger.read_text()):
        time.sleep(0.2)


def _finish(master: subprocess.Popen[bytes], workers: list[subprocess.Popen[bytes]]) -> int:
    try:
        code = master.wait(timeout=180)
    finally:
        for proc in [master, *workers]:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return code


def test_processes_flag_gives_naive_the_local_verdict(tmp_path: Path) -> None:
    run = harness("run", str(STORY), "--target", "naive", "--workers", "2", "--out", str(tmp_path), "--expect",
                  timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = verdict(tmp_path)
    assert result["valid"] is False and result["complete"] is True
    assert result["counts"]["lost"] > 0 and result["counts"]["unseen"] == 0
    assert all(">u1-0#" in i for i in result["lost_ids"]), "only U1, the blackholed user, can lose messages"
    assert sorted(p.name for p in tmp_path.glob("ledger*.jsonl")) == [
        "ledger-worker-1.jsonl", "ledger-worker-2.jsonl", "ledger.jsonl"]
    reports = _reports(tmp_path)
    assert [r["complete"] for r in reports] == [True, True]
    assert sorted(u for r in reports for u in r["users"]) == ["u1-0", "u2-0"]  # type: ignore[attr-defined]
    assert_as_committed("heartbeat-timeout", "naive", tmp_path)  # the same outcome as one process


@pytest.mark.parametrize("ship", [False, True], ids=["shards", "shipped"])
def test_master_and_two_worker_processes_give_ackmap_the_local_verdict(tmp_path: Path, ship: bool) -> None:
    """Workers that share the run folder write their own shards; with ``--ship-ledger`` (what a worker on
    another machine does) every row crosses Locust's channel: the same verdict either way."""
    out = tmp_path / "run"
    master, workers = _master_and_workers(out, *(["--ship-ledger"] if ship else []))
    code = _finish(master, workers)
    log = (tmp_path / "run-master.log").read_text()
    assert code == 0, log
    result = verdict(out)
    assert result["valid"] is True and result["counts"]["lost"] == 0 and result["counts"]["unseen"] == 0
    assert result["counts"]["acknowledged"] > 100 and result["counts"]["replayed"] > 0
    assert [(r["complete"], r["ledger"]) for r in _reports(out)] == [(True, "shipped" if ship else "shard")] * 2
    assert "[PASS] ackmap" in log
    assert_as_committed("heartbeat-timeout", "ackmap", out)


def test_a_worker_killed_mid_run_makes_the_verdict_unknown_not_lost(tmp_path: Path) -> None:
    out = tmp_path / "run"
    master, workers = _master_and_workers(out)
    _wait_for_sending(out)
    time.sleep(3)  # traffic is flowing
    workers[1].send_signal(signal.SIGKILL)
    code = _finish(master, workers)
    assert code == 3, (tmp_path / "run-master.log").read_text()
    result = verdict(out)
    assert result["valid"] == "unknown" and result["counts"]["lost"] == 0 and result["counts"]["unseen"] > 0
    assert "never confirmed its ledger flush" in result["reason"]
    assert sorted(r["complete"] for r in _reports(out)) == [False, True]  # type: ignore[type-var]


def test_a_worker_stalled_longer_than_locusts_3_s_heartbeat_is_not_dropped(tmp_path: Path) -> None:
    """SIGSTOP one worker for 5 s mid-run (a starved process on a busy machine): Locust alone would mark it
    missing after 3 s; the harness's master waits ``--worker-liveness-s`` (10 s), so the worker stays in the
    run and its ledger closes complete. Its frozen users may be disconnected by the server: no loss either way
    (the verdict may be unknown: a load process silent for more than 5 s while sending is an unhealthy run)."""
    out = tmp_path / "run"
    master, workers = _master_and_workers(out)
    _wait_for_sending(out)
    time.sleep(1)
    workers[0].send_signal(signal.SIGSTOP)
    try:
        time.sleep(5)
    finally:
        workers[0].send_signal(signal.SIGCONT)
    code = _finish(master, workers)
    log = (tmp_path / "run-master.log").read_text()
    assert "failed to send heartbeat" not in log, log
    result = verdict(out)
    assert code in (0, 3), log
    assert result["counts"]["lost"] == 0 and result["valid"] in (True, "unknown"), result["reason"]
    assert [r["complete"] for r in _reports(out)] == [True, True]
