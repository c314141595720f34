"""Smaller variants of a failing trial, biggest reduction first (pure: no runs here).

The search keeps the first variant that still fails and asks again, until no variant fails (a greedy
delta-debugging pass, as QuickCheck-style shrinkers do, but over scenarios rather than values). Order:
drop a fault, then a cohort no fault names, then a cohort's extra users, lower the rate, shorten the
run, shorten each fault, move each fault earlier. Every variant is a valid scenario
(faults stay inside the sending window).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

__all__ = ["variants", "size"]

Raw = dict[str, Any]

MIN_RATE = 2.0
MIN_DURATION_S = 3.0
MIN_FAULT_S = 0.3


def size(trial: Raw) -> tuple[int, int, float, float, float]:
    """What shrinking lowers, most important first: faults, users, rate, duration, fault time."""
    faults = trial.get("faults", [])
    return (len(faults), sum(int(c.get("users", 1)) for c in trial["cohorts"]),
            float(trial["load"].get("rate_per_user", 10.0)), float(trial["load"]["duration_s"]),
            sum(float(f["duration_s"]) for f in faults))


def _last_start(trial: Raw) -> float:
    return max((float(f["at_s"]) for f in trial.get("faults", [])), default=0.0)


def variants(trial: Raw) -> Iterator[tuple[str, Raw]]:
    """(what changed, smaller trial) for every one-step reduction of ``trial``."""
    faults = trial.get("faults", [])
    if len(faults) > 1:
        for index, fault in enumerate(faults):
            smaller = copy.deepcopy(trial)
            del smaller["faults"][index]
            yield f"drop fault {fault['name']}", smaller
    total = sum(int(c.get("users", 1)) for c in trial["cohorts"])
    faulted = {f.get("cohort") for f in faults}
    for index, cohort in enumerate(trial["cohorts"]):
        if cohort["name"] not in faulted and total - int(cohort.get("users", 1)) >= 2:
            smaller = copy.deepcopy(trial)
            del smaller["cohorts"][index]
            yield f"drop cohort {cohort['name']}", smaller
    for index, cohort in enumerate(trial["cohorts"]):
        if int(cohort.get("users", 1)) > 1 and total > 2:
            smaller = copy.deepcopy(trial)
            smaller["cohorts"][index]["users"] = int(cohort["users"]) - 1
            yield f"cohort {cohort['name']}: {cohort['users']} -> {cohort['users'] - 1} users", smaller
    rate = float(trial["load"].get("rate_per_user", 10.0))
    if rate / 2 >= MIN_RATE:
        smaller = copy.deepcopy(trial)
        smaller["load"]["rate_per_user"] = round(rate / 2, 1)
        yield f"rate {rate:g} -> {rate / 2:g} msg/s per user", smaller
    duration = float(trial["load"]["duration_s"])
    ends = max((float(f["at_s"]) + float(f["duration_s"]) for f in faults), default=0.0)
    shorter = round(max(MIN_DURATION_S, ends + 1.0, _last_start(trial) + 1.0), 1)
    if shorter < duration - 0.5:
        smaller = copy.deepcopy(trial)
        smaller["load"]["duration_s"] = shorter
        yield f"duration {duration:g} -> {shorter:g} s", smaller
    for index, fault in enumerate(faults):
        length = float(fault["duration_s"])
        if length / 2 >= MIN_FAULT_S:
            smaller = copy.deepcopy(trial)
            smaller["faults"][index]["duration_s"] = round(length / 2, 2)
            yield f"fault {fault['name']}: {length:g} -> {length / 2:g} s long", smaller
    for index, fault in enumerate(faults):
        at = float(fault["at_s"])
        earlier = round(max(0.5, at / 2), 2)
        if earlier < at - 0.25:
            smaller = copy.deepcopy(trial)
            smaller["faults"][index]["at_s"] = earlier
            yield f"fault {fault['name']}: at {at:g} -> {earlier:g} s", smaller
