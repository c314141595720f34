"""The generator: reproducible, within bounds, only faults the target can undergo, always valid."""

from __future__ import annotations

import random
from collections import Counter

from harness.config import Scenario
from harness.explore.vocabulary import DEFAULT_BASE, MOVES, Bounds, Capabilities, available_moves, propose

ALL = Capabilities(process=True, store=True, instances=1)


def test_the_same_seed_draws_the_same_trial() -> None:
    a = propose(random.Random("s:3"), DEFAULT_BASE, "redis-store", ALL, Bounds())
    b = propose(random.Random("s:3"), DEFAULT_BASE, "redis-store", ALL, Bounds())
    c = propose(random.Random("s:4"), DEFAULT_BASE, "redis-store", ALL, Bounds())
    assert a == b and a != c


def test_every_draw_is_a_valid_scenario_within_bounds() -> None:
    bounds = Bounds(users_per_cohort=(1, 2), rate_per_user=(5, 25), duration_s=(6, 10), max_moves=2)
    for index in range(300):
        trial, moves = propose(random.Random(index), DEFAULT_BASE, "redis-store", ALL, bounds)
        scenario = Scenario.model_validate(trial)
        assert 1 <= len(moves) <= 2 and scenario.faults
        assert 6 <= scenario.load.duration_s <= 10 and 5 <= scenario.load.rate_per_user <= 25
        assert all(1 <= c.users <= 2 for c in scenario.cohorts)
        for fault in scenario.faults:
            assert 0 < fault.at_s < scenario.load.duration_s


def test_the_whole_vocabulary_is_drawn_for_a_target_that_can_undergo_it() -> None:
    seen: Counter[str] = Counter()
    for index in range(400):
        seen.update(propose(random.Random(index), DEFAULT_BASE, "t", Capabilities(True, True, 3), Bounds())[1])
    assert set(seen) == set(MOVES)


def test_only_what_the_target_can_undergo() -> None:
    url_target = Capabilities(process=False, store=False)
    assert set(available_moves(url_target)) == {n for n, (_, need) in MOVES.items() if need == "network"}
    no_store = Capabilities(process=True, store=False)
    assert "kill_target" in available_moves(no_store) and "kill_store" not in available_moves(no_store)
    assert "store+target" not in available_moves(no_store) and "rolling_restart" not in available_moves(no_store)
    for index in range(100):
        trial, _ = propose(random.Random(index), DEFAULT_BASE, "t", url_target, Bounds())
        assert all("cohort" in f for f in trial["faults"])


def test_a_combination_puts_its_second_fault_inside_the_first() -> None:
    for index in range(200):
        trial, moves = propose(random.Random(index), DEFAULT_BASE, "t", ALL, Bounds(max_moves=1))
        if moves == ["store+target"] or moves == ["latency+reset"]:
            first, second = trial["faults"]
            assert first["at_s"] < second["at_s"] < first["at_s"] + first["duration_s"]
