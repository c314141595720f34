"""A target killed from outside mid-run (not a scheduled fault) is said, and the verdict is never a PASS.

Before the controller watched the stack, this run read PASS, "all acknowledged messages delivered", "experiment
healthy": both users disconnected, nothing more was sent, and nothing in the ledger said why."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.integration.helpers import ROOT, verdict
from tests.integration.proctree import descendants, start_run, wait_until

pytestmark = pytest.mark.integration


def _sending(ledger: Path) -> bool:
    try:
        return any(json.loads(line).get("data", {}).get("phase") == "start"
                   for line in ledger.read_text().splitlines() if '"phase"' in line)
    except (OSError, ValueError):
        return False


def _target(run_pid: int) -> psutil.Process | None:
    for proc in descendants(run_pid):
        try:
            if "targets.naive_app" in " ".join(proc.cmdline()):
                return proc
        except psutil.NoSuchProcess:
            continue
    return None


def test_a_target_killed_from_outside_is_recorded_and_the_verdict_is_not_a_pass(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = start_run(str(ROOT / "scenarios" / "blip.toml"), "--target", "naive", "--out", str(out),
                    log=tmp_path / "run.log")
    try:
        assert wait_until(lambda: _sending(out / "ledger.jsonl"), timeout_s=180), (tmp_path / "run.log").read_text()
        target = _target(run.pid)
        assert target is not None
        os.kill(target.pid, signal.SIGKILL)
        code = run.wait(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    doc = verdict(out)
    assert doc["valid"] != True and code != 0  # noqa: E712 - "unknown" or False, never True
    exits = [json.loads(line)["data"] for line in (out / "ledger.jsonl").read_text().splitlines()
             if '"process_exit"' in line]
    assert exits == [{"role": "target", "pid": target.pid, "code": -signal.SIGKILL, "phase": "start"}]
    problems = doc["details"]["faults"]["problems"]
    assert any(p.startswith(f"the target (PID {target.pid}) died on its own (killed by signal 9)") for p in problems)
    assert not doc["bad_lines"] and "unreadable" not in doc["reason"]
