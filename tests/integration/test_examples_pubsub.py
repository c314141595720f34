"""docs/custom-target.md, example 3: a pub/sub server with separate publish and subscribe ports, each behind its
own proxy listener; a fault on the subscribe port of one cohort leaves its publish port alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.run.process import SECRET_ENV, free_port
from harness.run.readiness import AllProbes, TcpProbe
from tests.integration.helpers import ROOT, harness, verdict
from tests.integration.proctree import wait_until

pytestmark = pytest.mark.integration

SCENARIO = ROOT / "examples" / "pubsub" / "scenario.toml"


def _ledger(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pubsub")
    run = harness("run", str(SCENARIO), "--out", str(out), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr  # both verdicts as the scenario expects
    return out


def test_the_kept_log_loses_nothing_and_the_live_mode_is_caught(runs: Path) -> None:
    kept = verdict(runs / "pubsub")
    assert kept["valid"] is True
    assert {k: kept["counts"][k] for k in ("lost", "duplicated", "unexpected", "reordered")} == {
        "lost": 0, "duplicated": 0, "unexpected": 0, "reordered": 0}
    assert kept["counts"]["replayed"] > 0  # the phone's backlog, replayed from its offset after the heal
    live = verdict(runs / "pubsub-live")
    assert live["valid"] is False and live["counts"]["lost"] >= 1
    assert live["counts"]["duplicated"] == 0 and live["counts"]["unexpected"] == 0
    assert all(">phone-0#" in msg_id for msg_id in live["lost_ids"])  # only what went to the silenced subscriber


@pytest.mark.parametrize("target", ["pubsub", "pubsub-live"])
def test_the_fault_on_the_sub_port_shows_on_sub_and_nowhere_on_pub(runs: Path, target: str) -> None:
    ledger = _ledger(runs / target)
    run_id = ledger[0]["run_id"]
    inject, heal = [row for row in ledger if row["f"] == "fault"]
    for row in (inject, heal):
        data = row["data"]
        assert (data["port"], data["ports"], data["listeners"]) == ("sub", ["sub"], [f"{run_id}-phone.sub"])
    records = [inject["data"]["traffic_before"], inject["data"]["traffic_at"], heal["data"]["traffic_at"]]
    assert all(list(record["ports"]) == ["sub"] for record in records)  # the pub listener is in no evidence

    def received(record: dict[str, Any]) -> int:
        return sum(d["received"] for d in record["bytes"].values())

    assert received(records[2]) > received(records[0])  # the sub listener carried traffic into the fault
    # the phone's publish port kept working under the fault: sends it made then were acknowledged
    window = (inject["t_ns"], heal["t_ns"])
    invoked = {row["msg_id"]: row["t_ns"] for row in ledger
               if row["f"] == "send" and row["type"] == "invoke" and row["process"] == "phone-0"}
    acked_in_fault = [row for row in ledger if row["f"] == "send" and row["type"] == "ok"
                      and row["process"] == "phone-0" and window[0] < invoked[row["msg_id"]] < window[1]]
    assert acked_in_fault


RUNNING = '''
name = "pubsub-running"
targets = ["running"]

[target.running]
urls = {{ sub = "http://127.0.0.1:{sub}", pub = "http://127.0.0.1:{pub}" }}
driver = "examples.pubsub.driver:PubSubUser"
ordered = true

[target.running.options]
silence_s = 1.5

[heartbeat]
ping_interval_s = 0.5
ping_timeout_s = 1.5

[load]
duration_s = 6.0
ack_timeout_s = 2.0

[[cohorts]]
name = "phone"

[[cohorts]]
name = "laptop"

[[faults]]
name = "phone-sub-offline"
type = "timeout"
cohort = "phone"
port = "sub"
at_s = 1.5
duration_s = 2.5
attributes = {{ timeout = 0 }}

[expect.running]
valid = true
max_lost = 0
'''


def test_a_server_already_running_with_two_ports_is_reached_by_urls(tmp_path: Path) -> None:
    sub, pub = free_port(), free_port()
    env = {**os.environ, SECRET_ENV: "a-secret-for-this-test"}
    server = subprocess.Popen([sys.executable, "-m", "examples.pubsub.server", "--sub-port", str(sub),
                               "--pub-port", str(pub)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        probe = AllProbes([TcpProbe("127.0.0.1", sub), TcpProbe("127.0.0.1", pub)])
        assert wait_until(lambda: probe.check()[0], timeout_s=20)
        scenario = tmp_path / "running.toml"
        scenario.write_text(RUNNING.format(sub=sub, pub=pub))
        run = subprocess.run([sys.executable, "-m", "harness", "run", str(scenario), "--out", str(tmp_path / "run"),
                              "--expect"], capture_output=True, text=True, timeout=240, cwd=ROOT, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
    finally:
        server.terminate()
        server.wait(10)
    result = verdict(tmp_path / "run")
    assert result["valid"] is True and result["counts"]["lost"] == 0 and result["counts"]["replayed"] > 0
    inject = next(row for row in _ledger(tmp_path / "run") if row["f"] == "fault")
    assert inject["data"]["ports"] == ["sub"] and list(inject["data"]["traffic_at"]["ports"]) == ["sub"]


def test_a_fault_on_a_port_no_traffic_uses_proves_nothing_and_says_so(tmp_path: Path) -> None:
    # a third port the server never serves and the driver never uses: the toxic sits on a silent listener
    text = SCENARIO.read_text().replace('targets = ["pubsub", "pubsub-live"]', 'targets = ["pubsub"]')
    text = text.replace('ports = ["sub", "pub"]\ndriver', 'ports = ["sub", "pub", "admin"]\ndriver', 1)
    text = text.replace('ready = { kind = "tcp" }', 'ready = { kind = "http", port = "pub", path = "/healthz" }')
    text = text.replace('port = "sub"              #', 'port = "admin"            #')
    assert text.count('"admin"') == 2
    scenario = tmp_path / "s.toml"
    scenario.write_text(text)
    run = harness("run", str(scenario), "--out", str(tmp_path / "run"))
    assert run.returncode == 3, run.stdout + run.stderr  # unknown: the run cannot vouch for the fault
    result = verdict(tmp_path / "run")
    assert result["valid"] == "unknown" and result["counts"]["lost"] == 0
    assert "fault phone-sub-offline touched no traffic" in result["reason"]
    start = next(row for row in _ledger(tmp_path / "run") if row["f"] == "phase" and row["data"]["phase"] == "start")
    assert start["data"]["path_warnings"] == [  # said before any fault, when everyone had connected
        "cohort phone: its users are connected but nothing has passed its proxy listener, so fault "
        'phone-sub-offline will touch no traffic (does the driver connect through self.slot.urls["admin"]?)']
