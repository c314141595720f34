"""No process of a run outlives the process that started it: SIGKILL (no cleanup runs) at any level, `harness
run`, the Locust load process, or one worker, and everything below that level is gone within about 2 s
(``PR_SET_PDEATHSIG`` in every child; forked workers also watch the master)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.integration.helpers import ROOT
from tests.integration.proctree import descendants, start_run, wait_gone, wait_until

pytestmark = pytest.mark.integration

SCENARIO = ROOT / "scenarios" / "blip.toml"
DESIGN_TARGET_S = 2.0
MARGIN_S = 5.0
"""Asserted bound: the design target is 2 s; a busy shared machine gets some margin."""


def _cmd(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return ""


def _tree_ready(run: subprocess.Popen[bytes]) -> bool:
    """The load process, its two workers, the proxy, the target and redis-server all exist."""
    procs = descendants(run.pid)
    cmds = [_cmd(p) for p in procs]
    return (sum("locust" in c for c in cmds) >= 3 and any("redis-server" in c for c in cmds)
            and any("targets.redis_store_app" in c for c in cmds) and any("harness proxy" in c for c in cmds))


def _levels(run: subprocess.Popen[bytes]) -> dict[str, int]:
    load = next(p for p in psutil.Process(run.pid).children() if "locust" in _cmd(p))
    workers = [p for p in load.children() if "locust" in _cmd(p)]
    return {"harness": run.pid, "load": load.pid, "worker": workers[0].pid}


def _kill_and_measure(pid: int) -> tuple[float, list[psutil.Process], list[str]]:
    below = descendants(pid)
    victim = psutil.Process(pid)
    names = [_cmd(p)[:60] for p in below]
    os.kill(pid, signal.SIGKILL)
    took, left = wait_gone([victim, *below], MARGIN_S)
    return took, left, names


@pytest.mark.parametrize("level", ["harness", "load", "worker"])
def test_sigkill_at_any_level_leaves_no_process_below_it(tmp_path: Path, level: str) -> None:
    run = start_run(str(SCENARIO), "--target", "redis-store", "--workers", "2", "--out", str(tmp_path / "run"),
                    log=tmp_path / "harness.log")
    everything: list[psutil.Process] = []
    try:
        ledger = tmp_path / "run" / "ledger.jsonl"  # traffic is flowing: the users are connected
        assert wait_until(lambda: ledger.exists() and '"phase":"start"' in ledger.read_text(), 60), \
            (tmp_path / "harness.log").read_text()
        assert wait_until(lambda: _tree_ready(run), 10), [_cmd(p) for p in descendants(run.pid)]
        everything = [psutil.Process(run.pid), *descendants(run.pid)]
        took, left, names = _kill_and_measure(_levels(run)[level])
        print(f"SIGKILL {level}: {len(names)} process(es) below it {names}; all gone after {took:.2f} s")
        assert not left, f"still alive {MARGIN_S} s after SIGKILL of {level}: {[_cmd(p) for p in left]}"
        if level == "load":  # `harness run` sees its load process die, judges what was recorded, and ends
            code = run.wait(timeout=90)
            print(f"harness run ended by itself with exit {code}")
            assert code == 3, (tmp_path / "harness.log").read_text()
        if level == "worker":  # the rest of the run goes on; then kill the top, which takes everything along
            assert run.poll() is None and len(descendants(run.pid)) >= 4
            took, left, names = _kill_and_measure(run.pid)
            print(f"then SIGKILL harness: {len(names)} process(es) below it; all gone after {took:.2f} s")
            assert not left, [_cmd(p) for p in left]
    finally:
        for proc in everything:  # only the processes of the run this test started, by PID
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        run.wait(timeout=30)
