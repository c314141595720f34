"""A trial's verdict read against the target's claims: only a broken claim is a finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checker import CheckOptions, check
from harness.errors import HarnessError
from harness.explore.trial import classify, write_scenario
from harness.explore.vocabulary import DEFAULT_BASE
from tests.checker.builders import History


def _restart_loss(survives: bool) -> dict:
    h = History().connect("b", conn=1).send("a", "b", 1)
    for action in ("inject", "heal"):
        h._add(None, process="controller", type="event", f="fault",
               data={"action": action, "fault": "deploy", "type": "kill_target", "cohort": None})
    return check(h.finished().frame(), CheckOptions(survives_restart=survives)).to_dict()


def test_loss_on_a_target_that_claims_to_survive_a_restart_is_a_violation() -> None:
    assert classify(_restart_loss(True)) == ("violation", ["lost=1"])


def test_loss_a_target_does_not_claim_to_prevent_is_recorded_not_found() -> None:
    assert classify(_restart_loss(False)) == ("loss-within-claim", [])
    lossy = check(History().connect("b").send("a", "b", 1).finished().frame(),
                  CheckOptions(delivery="at-most-once")).to_dict()
    assert classify(lossy) == ("loss-within-claim", [])


def test_a_pass_and_an_unsound_experiment() -> None:
    ok = check(History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).finished().frame()).to_dict()
    assert classify(ok) == ("pass", [])
    cut = check(History().connect("b").send("a", "b", 1).frame()).to_dict()  # never finished
    assert cut["valid"] == "unknown" and classify(cut)[0] == "unknown"


def test_write_scenario_refuses_an_invalid_trial(tmp_path: Path) -> None:
    bad = {**DEFAULT_BASE, "faults": [{"name": "x", "type": "timeout", "at_s": 1.0, "duration_s": 1.0}]}
    with pytest.raises((ValueError, HarnessError)):
        write_scenario(bad, tmp_path / "s.toml")
    assert not (tmp_path / "s.toml").exists()
