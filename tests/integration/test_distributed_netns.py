"""Workers on "another machine": two Locust workers inside a network namespace whose only way out is a veth
pair to this one (private addresses 10.231.N.1/30 here, .2 there, made and removed by the test). The master
binds its port and the proxy listeners to the veth address alone, so every user's bytes cross the pair. The
verdict is the one a local run of the same scenario gets: blip on ackmap, valid, nothing lost or unseen."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.run.process import free_port
from tests.integration.helpers import ROOT, assert_as_committed, harness, verdict

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BLIP = ROOT / "scenarios" / "blip.toml"


@dataclass(frozen=True)
class Namespace:
    name: str
    host_address: str
    """This namespace's end of the veth pair (where the master listens)."""
    inner_address: str


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def _free_subnet() -> int:
    """A 10.231.N.0/30 no interface here uses (several engineers may run this test at once)."""
    used = _ip("-o", "addr", "show").stdout
    for n in random.sample(range(256), 256):
        if f"10.231.{n}." not in used:
            return n
    pytest.skip("every 10.231.N.0/30 is in use on this machine")


@pytest.fixture
def netns() -> Iterator[Namespace]:
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs the ip command (iproute2) and root to make a network namespace")
    tag = f"{os.getpid() % 100000}{random.randrange(100)}"
    name, outer, inner = f"h18-{tag}", f"vh{tag}", f"vn{tag}"
    subnet = _free_subnet()
    made = _ip("netns", "add", name)
    if made.returncode != 0:
        pytest.skip(f"ip netns is unavailable here: {made.stderr.strip()}")
    try:
        for step in (["link", "add", outer, "type", "veth", "peer", "name", inner],
                     ["link", "set", inner, "netns", name],
                     ["addr", "add", f"10.231.{subnet}.1/30", "dev", outer],
                     ["link", "set", outer, "up"],
                     ["-n", name, "addr", "add", f"10.231.{subnet}.2/30", "dev", inner],
                     ["-n", name, "link", "set", inner, "up"],
                     ["-n", name, "link", "set", "lo", "up"]):
            done = _ip(*step)
            if done.returncode != 0:
                pytest.fail(f"ip {' '.join(step)}: {done.stderr.strip()}")
        yield Namespace(name, f"10.231.{subnet}.1", f"10.231.{subnet}.2")
    finally:
        _ip("link", "del", outer)  # removes its peer too; absent if the namespace took it along
        _ip("netns", "del", name)
        assert name not in _ip("netns", "list").stdout


def _run_with_workers_in(ns: Namespace, out: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    port = str(free_port())
    master = subprocess.Popen([sys.executable, "-m", "harness", "run", str(BLIP), "--target", "ackmap",
                               "--bind-host", ns.host_address, "--remote-workers", "2", "--master-port", port,
                               "--ship-ledger", "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    logs = [out.parent / f"worker-{i}.log" for i in (1, 2)]
    workers = []
    for log in logs:
        with log.open("w") as sink:
            workers.append(subprocess.Popen(
                ["ip", "netns", "exec", ns.name, sys.executable, "-m", "harness", "worker", str(BLIP),
                 "--target", "ackmap", "--master-host", ns.host_address, "--master-port", port],
                stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT))
    try:
        stdout, stderr = master.communicate(timeout=300)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(w.poll() is None for w in workers):
            time.sleep(0.2)
    finally:  # nothing outlives the test: the workers (inside the namespace) and the master, by PID
        for proc in (*workers, master):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return (subprocess.CompletedProcess(master.args, master.returncode, stdout, stderr),
            [log.read_text() for log in logs])


def test_workers_in_another_network_namespace_get_the_local_verdict(netns: Namespace, tmp_path: Path) -> None:
    local = harness("run", str(BLIP), "--target", "ackmap", "--workers", "2", "--out", str(tmp_path / "local"),
                    timeout=300)
    assert local.returncode == 0, local.stdout + local.stderr
    run, worker_logs = _run_with_workers_in(netns, tmp_path / "remote")
    assert run.returncode == 0, run.stdout + run.stderr + "\n".join(worker_logs)
    here, there = verdict(tmp_path / "local"), verdict(tmp_path / "remote")
    for key in ("valid", "complete"):
        assert there[key] == here[key], key
    for count in ("lost", "unseen", "unexpected", "duplicated"):
        assert there["counts"][count] == here["counts"][count] == 0, count
    assert there["valid"] is True and there["counts"]["acknowledged"] > 100
    assert_as_committed("blip", "ackmap", tmp_path / "remote")
    manifest = (tmp_path / "remote" / "manifest.json").read_text()
    assert f'"http://{netns.host_address}:' in manifest and '"http://127.0.0.1:' not in manifest.split(
        '"listeners"')[1].split("}")[0], "the users were given the veth address"
    shipped = sorted(p.name for p in (tmp_path / "remote").glob("ledger-worker-*.jsonl"))
    assert shipped == ["ledger-worker-1.jsonl", "ledger-worker-2.jsonl"]
    # the namespace shares this filesystem, so only --ship-ledger makes its workers behave as other machines'
    nodes = [json.loads(line)["data"] for line in (tmp_path / "remote" / "ledger.jsonl").read_text().splitlines()
             if '"f":"node"' in line]
    assert [n["ledger"] for n in nodes] == ["shipped", "shipped"]
    local_nodes = [json.loads(line)["data"] for line in (tmp_path / "local" / "ledger.jsonl").read_text()
                   .splitlines() if '"f":"node"' in line]
    assert [n["ledger"] for n in local_nodes] == ["shard", "shard"]
