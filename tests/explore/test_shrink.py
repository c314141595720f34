"""Shrink variants: each one step smaller, each still a valid scenario."""

from __future__ import annotations

import random

from harness.config import Scenario
from harness.explore.shrink import size, variants
from harness.explore.vocabulary import DEFAULT_BASE, Bounds, Capabilities, propose


def _trial() -> dict:
    return {**DEFAULT_BASE, "targets": ["redis-store"],
            "cohorts": [{"name": "u1", "users": 2}, {"name": "u2", "users": 1}],
            "load": {"duration_s": 10.0, "rate_per_user": 20.0, "ack_timeout_s": 2.0},
            "faults": [{"name": "a", "type": "kill_target", "at_s": 4.0, "duration_s": 1.0},
                       {"name": "b", "type": "timeout", "cohort": "u1", "at_s": 2.0, "duration_s": 3.0,
                        "attributes": {"timeout": 0}}]}


def test_the_variants_of_a_known_trial() -> None:
    changes = [change for change, _ in variants(_trial())]
    assert changes == ["drop fault a", "drop fault b", "drop cohort u2", "cohort u1: 2 -> 1 users",
                       "rate 20 -> 10 msg/s per user",
                       "duration 10 -> 6 s", "fault a: 1 -> 0.5 s long", "fault b: 3 -> 1.5 s long",
                       "fault a: at 4 -> 2 s", "fault b: at 2 -> 1 s"]


def test_every_variant_is_smaller_and_valid() -> None:
    for index in range(60):
        trial, _ = propose(random.Random(index), DEFAULT_BASE, "redis-store", Capabilities(True, True), Bounds())
        for change, smaller in variants(trial):
            Scenario.model_validate(smaller)
            assert size(smaller) < size(trial) or change.startswith("fault") and "at" in change, change


def test_a_minimal_trial_has_no_variant() -> None:
    minimal = {**DEFAULT_BASE, "targets": ["redis-store"],
               "cohorts": [{"name": "u1", "users": 1}, {"name": "u2", "users": 1}],
               "load": {"duration_s": 3.0, "rate_per_user": 3.0},
               "faults": [{"name": "a", "type": "kill_target", "at_s": 0.5, "duration_s": 0.5}]}
    assert list(variants(minimal)) == []
