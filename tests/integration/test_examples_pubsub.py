"""docs/custom-target.md, example 3: a pub/sub server with separate publish and subscribe ports, each behind its
own proxy listener; a fault on the subscribe port of one cohort leaves its publish port alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import ROOT, harness, verdict

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
