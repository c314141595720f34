"""The fault vocabulary of `harness explore` and the seeded generator that draws trial scenarios from it.

A trial is an ordinary scenario (a raw TOML dict): the base scenario's heartbeat, store, deploy, cohorts and
target definitions, with users, rate, duration and faults drawn within ``Bounds``. Every draw comes from one
``random.Random`` seeded per trial, so a trial is reproducible from (seed, index) alone.

Moves (one or two faults each; a pair shares its window, which is how combination bugs are reached):

==================  ===========================================================================
blackhole           ``timeout`` (timeout 0) on a cohort, both ways, upstream only or downstream only
reset               ``reset_peer`` on a cohort: its connections are reset while active
latency             ``latency`` with jitter on a cohort
latency+reset       latency on a cohort and, inside its window, a reset of the same cohort
latency+blackhole   latency on a cohort and, inside its window, a one-way blackhole
bandwidth           ``bandwidth`` (KB/s) on a cohort, downstream
slicer              ``slicer`` on a cohort (small chunks, small delays)
kill_target         SIGKILL the target mid-traffic, restarted after the fault's duration
restart_target      graceful restart (SIGTERM)
kill_store          SIGKILL the store (targets with a store)
restart_store       graceful store restart (targets with a store)
store+target        a store outage and, inside it, a target kill or restart
rolling_restart     instances restarted one by one (bases with ``[deploy] instances >= 2``)
==================  ===========================================================================
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Bounds", "Capabilities", "DEFAULT_BASE", "MOVES", "available_moves", "propose"]

Raw = dict[str, Any]


@dataclass(frozen=True)
class Bounds:
    """What the generator may vary, and within which limits (trials are short so a budget holds dozens)."""

    users_per_cohort: tuple[int, int] = (1, 2)
    rate_per_user: tuple[float, float] = (5.0, 25.0)
    duration_s: tuple[float, float] = (6.0, 10.0)
    max_moves: int = 2
    """Moves per trial (each is one or two faults)."""


@dataclass(frozen=True)
class Capabilities:
    """What the target can undergo: process faults need a process the harness started; store faults a store."""

    process: bool
    store: bool
    instances: int = 1


DEFAULT_BASE: Raw = {
    "name": "explore",
    "description": "base of harness explore: three single-user cohorts, 1 s + 1 s heartbeat",
    "heartbeat": {"ping_interval_s": 1.0, "ping_timeout_s": 1.0},
    "load": {"duration_s": 8.0, "rate_per_user": 20.0, "ack_timeout_s": 2.0},
    "drain": {"timeout_s": 8.0, "settle_s": 0.5},
    # A store that forgets on crash loses messages by configuration, not by the server's design: explore
    # looks for design bugs, so the default base keeps the store durable (appendfsync always).
    "store": {"persistence": "always"},
    "cohorts": [{"name": "u1", "users": 1}, {"name": "u2", "users": 1}, {"name": "u3", "users": 1}],
}


def _window(rng: random.Random, duration_s: float, hb_s: float, long: bool | None = None) -> tuple[float, float]:
    """(at_s, duration_s) inside the sending window: short blips or outages past the heartbeat."""
    at = round(rng.uniform(1.0, max(1.0, duration_s - 2.5)), 2)
    if long is None:
        long = rng.random() < 0.5
    length = rng.uniform(hb_s + 0.5, hb_s + 3.0) if long else rng.uniform(0.3, 1.2)
    length = min(length, max(0.3, duration_s - 0.5 - at))
    return at, round(length, 2)


def _toxic(name: str, kind: str, cohort: str, at: float, length: float, stream: str = "both",
           **attributes: int) -> Raw:
    return {"name": name, "type": kind, "cohort": cohort, "stream": stream, "at_s": at, "duration_s": length,
            "attributes": dict(attributes)}


def _process(name: str, kind: str, at: float, length: float) -> Raw:
    return {"name": name, "type": kind, "at_s": at, "duration_s": length}


Move = Callable[[random.Random, str, Raw], list[Raw]]
"""(rng, name prefix, trial) -> the faults of one move."""


def _cohort(rng: random.Random, trial: Raw) -> str:
    return str(rng.choice(trial["cohorts"])["name"])


def _hb(trial: Raw) -> float:
    hb = trial.get("heartbeat", {})
    return float(hb.get("ping_interval_s", 1.0)) + float(hb.get("ping_timeout_s", 1.0))


def _dur(trial: Raw) -> float:
    return float(trial["load"]["duration_s"])


def blackhole(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
    at, length = _window(rng, _dur(trial), _hb(trial))
    stream = rng.choice(["both", "both", "upstream", "downstream"])
    return [_toxic(f"{prefix}-blackhole", "timeout", _cohort(rng, trial), at, length, stream, timeout=0)]


def reset(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
    at, length = _window(rng, _dur(trial), _hb(trial), long=False)
    return [_toxic(f"{prefix}-reset", "reset_peer", _cohort(rng, trial), at, length, timeout=0)]


def latency(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
    at, length = _window(rng, _dur(trial), _hb(trial))
    ms = rng.choice([100, 250, 500, 900])
    return [_toxic(f"{prefix}-latency", "latency", _cohort(rng, trial), at, length,
                   rng.choice(["both", "downstream"]), latency=ms, jitter=rng.randint(0, ms // 2))]


def _paired(rng: random.Random, first: Raw, second_len: float) -> tuple[float, float]:
    """A window inside ``first``'s: the second fault of a combination."""
    at = round(first["at_s"] + rng.uniform(0.1, max(0.1, first["duration_s"] / 2)), 2)
    return at, round(min(second_len, max(0.3, first["at_s"] + first["duration_s"] - at)), 2)


def latency_reset(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
    cohort = _cohort(rng, trial)
    at, length = _window(rng, _dur(trial), _hb(trial), long=True)
    ms = rng.choice([250, 500, 900])
    slow = _toxic(f"{prefix}-latency", "latency", cohort, at, length, "both", latency=ms, jitter=ms // 4)
    r_at, r_len = _paired(rng, slow, rng.uniform(0.3, 0.8))
    return [slow, _toxic(f"{prefix}-reset", "reset_peer", cohort, r_at, r_len, timeout=0)]


def latency_blackhole(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
    cohort = _cohort(rng, trial)
    at, length = _window(rng, _dur(trial), _hb(trial), long=True)
    slow = _toxic(f"{prefix}-latency", "latency", cohort, at, length, "both", latency=rng.choice([250, 500]),
                  jitter=50)
    b_at, b_len = _paired(rng, slow, _hb(trial) + rng.uniform(0.5, 1.5))
    stream = rng.choice(["upstream", "downstream"])
    return [slow, _toxic(f"{prefix}-blackhole", "timeout", cohort, b_at, b_len, stream, timeout=0)]


def bandwidth(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
    at, length = _window(rng, _dur(trial), _hb(trial))
    return [_toxic(f"{prefix}-bandwidth", "bandwidth", _cohort(rng, trial), at, length, "downstream",
                   rate=rng.choice([1, 2, 5, 20]))]


def slicer(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
    at, length = _window(rng, _dur(trial), _hb(trial))
    return [_toxic(f"{prefix}-slicer", "slicer", _cohort(rng, trial), at, length, "downstream",
                   average_size=rng.choice([8, 64]), size_variation=4, delay=rng.choice([100, 2000]))]


def _process_move(kind: str) -> Move:
    def move(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
        at = round(rng.uniform(1.0, max(1.0, _dur(trial) - 2.5)), 2)
        return [_process(f"{prefix}-{kind.replace('_', '-')}", kind, at, round(rng.uniform(0.5, 2.0), 2))]

    move.__name__ = kind
    return move


def store_then_target(rng: random.Random, prefix: str, trial: Raw) -> list[Raw]:
    at = round(rng.uniform(1.0, max(1.0, _dur(trial) - 4.0)), 2)
    outage = _process(f"{prefix}-store-down", rng.choice(["kill_store", "restart_store"]), at,
                      round(rng.uniform(1.5, 3.0), 2))
    t_at, _ = _paired(rng, outage, 1.0)
    kind = rng.choice(["kill_target", "restart_target"])
    return [outage, _process(f"{prefix}-{kind.replace('_', '-')}", kind, t_at, round(rng.uniform(0.5, 1.0), 2))]


MOVES: dict[str, tuple[Move, str]] = {
    "blackhole": (blackhole, "network"),
    "reset": (reset, "network"),
    "latency": (latency, "network"),
    "latency+reset": (latency_reset, "network"),
    "latency+blackhole": (latency_blackhole, "network"),
    "bandwidth": (bandwidth, "network"),
    "slicer": (slicer, "network"),
    "kill_target": (_process_move("kill_target"), "process"),
    "restart_target": (_process_move("restart_target"), "process"),
    "kill_store": (_process_move("kill_store"), "store"),
    "restart_store": (_process_move("restart_store"), "store"),
    "store+target": (store_then_target, "store+process"),
    "rolling_restart": (_process_move("rolling_restart"), "instances"),
}
"""Every move by name: (function, what the target needs for it)."""


def available_moves(caps: Capabilities) -> list[str]:
    """The moves this target can undergo (a fault that cannot act on it would prove nothing)."""
    needs = {"network": True, "process": caps.process, "store": caps.store,
             "store+process": caps.store and caps.process, "instances": caps.process and caps.instances >= 2}
    return [name for name, (_, need) in MOVES.items() if needs[need]]


def _overlaps_same_process(faults: list[Raw], new: list[Raw]) -> bool:
    """Two faults of one kind on one process (or one toxic kind on one cohort) may not overlap: the
    timeline refuses a fault that is already active."""
    def key(f: Raw) -> tuple[str, str]:
        kind = str(f["type"])
        if "cohort" in f:
            return (kind, str(f["cohort"]))
        return ("store" if kind.endswith("_store") else "target", "")

    for a in new:
        for b in faults:
            if key(a) == key(b) and a["at_s"] < b["at_s"] + b["duration_s"] + 0.5 \
                    and b["at_s"] < a["at_s"] + a["duration_s"] + 0.5:
                return True
    return False


def propose(rng: random.Random, base: Raw, target: str, caps: Capabilities, bounds: Bounds,
            name: str = "trial") -> tuple[Raw, list[str]]:
    """One trial scenario drawn from ``base`` and the moves this target can undergo, and the moves used."""
    trial = copy.deepcopy(base)
    trial.pop("expect", None)
    trial["name"] = name
    trial["targets"] = [target]
    trial["seed"] = rng.randint(1, 2**31 - 1)
    load = trial.setdefault("load", {})
    load["duration_s"] = round(rng.uniform(*bounds.duration_s), 1)
    load["rate_per_user"] = round(rng.uniform(*bounds.rate_per_user), 1)
    for cohort in trial["cohorts"]:
        cohort["users"] = rng.randint(*bounds.users_per_cohort)
        cohort.pop("rate_per_user", None)
    moves = available_moves(caps)
    chosen: list[str] = []
    faults: list[Raw] = []
    for index in range(rng.randint(1, bounds.max_moves)):
        for _ in range(10):  # redraw a move that would overlap one already placed on the same thing
            move = rng.choice(moves)
            new = MOVES[move][0](rng, f"f{index + 1}", trial)
            if not _overlaps_same_process(faults, new):
                faults.extend(new)
                chosen.append(move)
                break
    trial["faults"] = faults
    return trial, chosen
