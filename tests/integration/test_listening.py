"""What a distributed run exposes: every socket it listens on is loopback, and its token secret is in
no command line, no log and no file of the run folder (the target gets it in its environment)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.helpers import harness
from tests.integration.proctree import descendants, listening, start_run, wait_until

pytestmark = pytest.mark.integration

SECRET = "s3cret-7f1c9e04-not-in-argv"

SCENARIO = f"""
name = "hygiene"
targets = ["mine"]
seed = 3

[heartbeat]
ping_interval_s = 3.0
ping_timeout_s = 3.0

[load]
duration_s = 6.0
rate_per_user = 10.0
ack_timeout_s = 5.0

[drain]
timeout_s = 5.0

[[cohorts]]
name = "u1"
users = 1

[[cohorts]]
name = "u2"
users = 1

[target.mine]
command = ["{{python}}", "-m", "targets.redis_store_app", "--port", "{{port}}", "--ping-interval",
           "{{ping_interval}}", "--ping-timeout", "{{ping_timeout}}", "--redis-url", "{{redis_url}}"]
needs_store = true
secret = "{SECRET}"
"""

LOOPBACK = {"127.0.0.1", "::1"}


def test_a_distributed_run_listens_on_loopback_only_and_keeps_its_secret_private(tmp_path: Path) -> None:
    scenario = tmp_path / "hygiene.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "run"
    run = start_run(str(scenario), "--workers", "2", "--out", str(out), log=tmp_path / "harness.log")
    seen: set[tuple[str, str, int]] = set()
    cmdlines: list[str] = []
    target_env = ""
    try:
        ledger = out / "ledger.jsonl"
        assert wait_until(lambda: ledger.exists() and '"phase":"start"' in ledger.read_text(), 90), \
            (tmp_path / "harness.log").read_text()
        for _ in range(10):  # sample while users, workers, proxy, target and redis are all up
            procs = descendants(run.pid)
            seen |= listening(procs)
            for proc in procs:
                try:
                    line = " ".join(proc.cmdline())
                    cmdlines.append(line)
                    if "targets.redis_store_app" in line:
                        target_env = proc.environ().get("HARNESS_TARGET_SECRET", "")
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.3)
        code = run.wait(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    print("listening sockets seen:", sorted(seen))
    assert code == 0, (tmp_path / "harness.log").read_text()
    names = {name for name, _, _ in seen}
    assert any("redis" in n for n in names) and len(seen) >= 4, seen  # master, proxy API + listeners, target, redis
    assert {addr for _, addr, _ in seen} <= LOOPBACK, sorted(seen)
    assert 5557 not in {port for _, _, port in seen}  # the master's port is a free one, not Locust's fixed default

    assert target_env == SECRET  # the target got it, in its environment
    assert not [line for line in cmdlines if SECRET in line]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p.name for p in files if SECRET.encode() in p.read_bytes()]
    assert "***" in (out / "manifest.json").read_text()
    logs = [p for p in files if p.suffix == ".log"]
    assert logs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs), [
        (p.name, oct(p.stat().st_mode)) for p in logs]


def test_a_url_target_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    scenario = tmp_path / "url.toml"
    text = SCENARIO.split("[target.mine]")[0] + '[target.mine]\nurl = "http://127.0.0.1:9"\n'
    scenario.write_text(text)
    env_secret = os.environ.pop("HARNESS_TARGET_SECRET", None)
    try:
        run = harness("run", str(scenario), "--out", str(tmp_path / "run"), timeout=60)
    finally:
        if env_secret is not None:
            os.environ["HARNESS_TARGET_SECRET"] = env_secret
    assert run.returncode == 2, run.stdout + run.stderr
    assert "HARNESS_TARGET_SECRET" in run.stderr and "[target.mine]" in run.stderr, run.stderr
