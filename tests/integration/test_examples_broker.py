"""docs/custom-target.md, example 2: a broker that does not speak HTTP (line-based TCP, ready by TCP connect),
its own driver with typed options; the same broker in a lossy mode is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, harness, verdict

pytestmark = pytest.mark.integration

SCENARIO = ROOT / "examples" / "broker" / "scenario.toml"


def test_the_broker_keeps_everything_and_the_direct_mode_loses_what_a_dead_link_swallowed(tmp_path: Path) -> None:
    run = harness("run", str(SCENARIO), "--out", str(tmp_path), "--expect")
    assert run.returncode == 0, run.stdout + run.stderr  # both verdicts as the scenario expects
    kept = verdict(tmp_path / "broker")
    assert kept["valid"] is True
    assert {k: kept["counts"][k] for k in ("lost", "duplicated", "unexpected", "reordered")} == {
        "lost": 0, "duplicated": 0, "unexpected": 0, "reordered": 0}
    assert kept["counts"]["replayed"] > 0  # the phone's backlog came after its reconnect, from its offset
    assert kept["details"]["claim"]["held"] is True
    direct = verdict(tmp_path / "broker-direct")
    assert direct["valid"] is False and direct["counts"]["lost"] >= 1
    assert direct["counts"]["duplicated"] == 0 and direct["counts"]["unexpected"] == 0
    assert all(">phone-0#" in msg_id for msg_id in direct["lost_ids"])  # only what went to the silenced phone
    ledger = [json.loads(line) for line in (tmp_path / "broker" / "ledger.jsonl").read_text().splitlines()]
    faults = [row for row in ledger if row["f"] == "fault"]
    assert [r["data"]["action"] for r in faults] == ["inject", "heal"] and faults[0]["data"]["ports"] == ["main"]
    # sends the blackhole swallowed ended "info" (outcome unknown), yet none is a Locust failure: every
    # completion is a send→ack sample with its latency (lost messages are what fails, not an ack timeout)
    completions = [row for row in ledger if row["f"] == "send" and row["type"] != "invoke"]
    assert any(row["type"] == "info" for row in completions)
    (stats_file,) = (tmp_path / "broker").glob("locust-stats*.json")
    (send_ack,) = [entry for entry in json.loads(stats_file.read_text()) if entry["name"] == "send→ack"]
    assert send_ack["num_requests"] == len(completions) and send_ack["num_failures"] == 0
    # the driver, not the broker, noticed the silent link (a blackhole sends no FIN and no RST)
    drops = [row for row in ledger if row["f"] == "disconnect" and row["process"] == "phone-0"]
    assert drops and all(row["error"] == "silent link: no byte for 1.5 s" for row in drops)


def test_a_badly_typed_driver_option_stops_the_run_naming_file_field_and_reason(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.read_text().replace("silence_s = 1.5", 'silence_s = "soon"', 1))
    run = harness("run", str(scenario), "--target", "broker", "--out", str(tmp_path / "run"))
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"{scenario}: field 'target.broker.options.silence_s': Input should be a valid number" in run.stderr
    assert not (tmp_path / "run" / "ledger.jsonl").exists()  # stopped before anything ran


def test_an_unknown_driver_option_is_refused_the_same_way(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.read_text().replace("silence_s = 1.5", "silense_s = 1.5", 1))
    run = harness("run", str(scenario), "--target", "broker", "--out", str(tmp_path / "run"))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "field 'target.broker.options.silense_s': unknown option; the driver's options: ping_interval_s, " \
           "resume, silence_s" in run.stderr
