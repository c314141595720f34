"""The checker: a pure function from a ledger to a verdict. No I/O, no clock, no network.

``analyse(frame, options)`` computes every category with full id lists; ``check(frame, options)`` turns
that into a :class:`Verdict` (capped example lists) whose keys are defined in ``checker.base``.
Same ledger, same options ⇒ same verdict.

May import: pandas, numpy and the standard library's pure parts. Never files, sockets, clocks, Locust or
any other ``harness`` package (a test enforces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from harness.checker.base import EXAMPLE_CAP, UNKNOWN, Quantiles, RowTotals, Validity, Verdict, merge_validity
from harness.checker.delivery import analyse_delivery, describe_stray
from harness.checker.experiment import FaultCheck, check_fault_schedule, index_damage
from harness.checker.health import DOWN, HealthCheck, check_health, start_data
from harness.checker.latency import catch_up, classify_replayed, latency_summary
from harness.checker.ordering import OrderAnalysis, analyse_order
from harness.checker.parts import Merged
from harness.checker.rooms import RoomFacts, expand_rooms, judge_rooms
from harness.checker.run_state import RunState, run_state
from harness.checker.timeline import counts_over_time

__all__ = ["CheckOptions", "Analysis", "analyse", "analyse_merged", "judge", "check", "check_safe", "crashed_verdict",
           "unjudged_verdict", "exit_code", "Verdict", "Quantiles", "UNKNOWN"]

DeliveryClaim = Literal["at-most-once", "at-least-once", "effectively-once"]


@dataclass(frozen=True)
class CheckOptions:
    """What the checker needs to know besides the ledger."""

    delivery: DeliveryClaim = "at-least-once"
    """What the target claims; effectively-once makes duplicates invalidate, at-most-once allows loss
    in the claim check (``claim.held``) though ``valid`` still reports the loss."""
    ordered: bool = False
    """The target claims per-stream order, so a nonmonotonic receipt invalidates the verdict."""
    survives_restart: bool = False
    """The target claims acknowledged messages survive a restart of its process."""
    bad_lines: int = 0
    """Unreadable ledger lines not attributable to a node: they could hide receipts anywhere."""
    damaged_nodes: dict[str, str] = field(default_factory=dict)
    """Nodes whose ledger had unreadable lines, with the reason: their users' messages are unknown."""
    target: str | None = None
    scenario: str | None = None


@dataclass(frozen=True)
class Analysis:
    """Every category with its full id list (the report uses these; the verdict caps them)."""

    state: RunState
    messages: pd.DataFrame
    ids: dict[str, list[str]]
    counts: dict[str, int]
    latency: dict[str, Quantiles]
    replayed: pd.DataFrame
    catch_up: list[dict[str, Any]]
    unseen_reasons: list[str]
    faults: FaultCheck = field(default_factory=FaultCheck)
    """Whether every scheduled fault was applied and healed (``checker.experiment``)."""
    health: HealthCheck = field(default_factory=HealthCheck)
    """Whether the experiment was healthy enough to support a verdict (``checker.health``)."""
    rooms: RoomFacts = field(default_factory=RoomFacts)
    """Room sends, fan-out, membership, and the outcome per room, per member and per room message
    (``checker.rooms``); empty without rooms."""

    @cached_property
    def over_time(self) -> pd.DataFrame:
        """Sent / acked / delivered / unseen per 100 ms (computed on demand: reports need it, verdicts not)."""
        return counts_over_time(self.messages, self.state.start_ns)


def analyse(frame: pd.DataFrame, options: CheckOptions | None = None) -> Analysis:
    """All categories for one ledger (pure)."""
    options = options or CheckOptions()
    judged, rooms = expand_rooms(frame)  # room sends become one message per expected member
    delivery = analyse_delivery(judged)
    state = run_state(frame, joined_damage(index_damage(frame), describe_stray(delivery.stray),
                                           options.damaged_nodes))
    order = analyse_order(delivery.messages, delivery.good)
    return _conclude(frame, state, delivery.messages, order, delivery.unexpected_ids, delivery.unexpected_senders,
                     rooms, options)


def analyse_merged(frame: pd.DataFrame, merged: Merged, damaged_nodes: dict[str, str],
                   options: CheckOptions | None = None) -> Analysis:
    """All categories for a ledger checked in partitions (pure): ``frame`` holds its rows other than sends and
    receipts (phases, connects, faults, health, node, process_exit), ``merged`` the partitions' delivery tables
    (``checker.parts.merge_parts``), ``damaged_nodes`` the index damage over every row (``index_damage``) and
    the reader's. The same Analysis as ``analyse`` on the whole frame (a test holds both to it); room ledgers
    are not partitioned (``checker.parts``)."""
    options = options or CheckOptions()
    state = run_state(frame, joined_damage(damaged_nodes, describe_stray(merged.totals.stray), options.damaged_nodes),
                      merged.totals)
    order = analyse_order(merged.messages, merged.good)
    return _conclude(frame, state, merged.messages, order, merged.unexpected_ids, merged.unexpected_senders,
                     RoomFacts(), options, merged.totals)


def joined_damage(*parts: dict[str, str]) -> dict[str, str]:
    """Damaged-node reasons from several checks as one: a node named by more than one gets every reason."""
    out: dict[str, str] = {}
    for part in parts:
        for node, reason in part.items():
            out[node] = f"{out[node]}; {reason}" if node in out and reason not in out[node] else reason
    return out


def _conclude(frame: pd.DataFrame, state: RunState, msgs: pd.DataFrame, order: OrderAnalysis,
              unexpected_ids: list[str], unexpected_senders: list[str | None], rooms: RoomFacts,
              options: CheckOptions, totals: RowTotals | None = None) -> Analysis:
    """Everything after delivery and order: loss and its excuses, the id lists and counts, latency, health,
    faults and rooms (``frame`` may be the global rows only, with ``totals`` for what the sends and receipts
    it lacks would have told)."""
    acked = (msgs["outcome"] == "ok").to_numpy()
    delivered = (msgs["receipts"] > 0).to_numpy()
    undelivered = msgs[acked & ~delivered]
    recipients = [str(r) for r in undelivered["recipient"]]
    unseen_reasons: list[str] = []
    if not state.complete:
        unjudgeable = np.ones(len(recipients), dtype=bool)
        unseen_reasons.append("run incomplete")
    elif options.bad_lines:
        unjudgeable = np.ones(len(recipients), dtype=bool)
        unseen_reasons.append("unreadable ledger lines")
    elif state.still_delivering:
        unjudgeable = np.ones(len(recipients), dtype=bool)
        unseen_reasons.append("deliveries were still arriving when the drain reached its limit")
    else:
        offline = np.array([not state.connected_at_end.get(r, True) for r in recipients], dtype=bool)
        sick = np.array([state.node_of.get(r) in state.unhealthy_nodes for r in recipients], dtype=bool)
        late = _no_fair_chance(recipients, undelivered["ack_ns"], state,
                               start_data(frame).get("fair_chance_s")) & ~offline
        unjudgeable = offline | sick | late
        if offline.any():
            who = sorted({r for r, o in zip(recipients, offline, strict=True) if o})
            unseen_reasons.append(f"recipient(s) {', '.join(who)} not connected when the drain ended")
        if late.any():
            who = sorted({r for r, o in zip(recipients, late, strict=True) if o})
            fair = float(start_data(frame)["fair_chance_s"])
            unseen_reasons.append(f"recipient(s) {_few(who)} connected less than {fair:g} s before the drain "
                                  "ended (no fair chance to catch up)")
        if sick.any():
            nodes = sorted({state.node_of[r] for r, s in zip(recipients, sick, strict=True) if s})
            unseen_reasons.append("observed by unhealthy load process(es) "
                                  + "; ".join(f"{n}: {state.unhealthy_nodes[n]}" for n in nodes))
    lost = undelivered[~unjudgeable]
    unseen = undelivered[unjudgeable]

    # A receipt of a message never attempted is unexpected, unless the sender's own record is what is
    # missing (its load process is unhealthy, lines are unreadable, or the run was cut off before every
    # process wrote what it had): then nobody can tell.
    records_cut = bool(options.bad_lines) or not state.complete
    doubtful = [sender is not None and (records_cut or state.node_of.get(sender) in state.unhealthy_nodes)
                for sender in unexpected_senders]
    unexpected = [m for m, d in zip(unexpected_ids, doubtful, strict=True) if not d]
    unverifiable = [m for m, d in zip(unexpected_ids, doubtful, strict=True) if d]

    extra = np.maximum(msgs["receipts"].to_numpy(dtype=np.int64) - msgs["attempts"].to_numpy(dtype=np.int64), 0)
    kinds = msgs["outcome"].cat  # compared by code: an object array of 33 M strings costs 264 MB and seconds
    outcome_code = kinds.codes.to_numpy()
    info = outcome_code == (kinds.categories.get_loc("info") if "info" in kinds.categories else -2)
    fail = outcome_code == (kinds.categories.get_loc("fail") if "fail" in kinds.categories else -2)
    del outcome_code
    ids = {
        "lost": [str(m) for m in lost.sort_values("invoke_ns", kind="stable").index],
        "unseen": [str(m) for m in unseen.sort_values("invoke_ns", kind="stable").index],
        "duplicated": [str(m) for m in msgs.index[extra > 0]],
        "unexpected": unexpected,
        "unverifiable": unverifiable,
        "recovered": [str(m) for m in msgs.index[delivered & info]],
        "delivered_after_fail": [str(m) for m in msgs.index[delivered & fail]],
        "reordered": order.nonmonotonic,
        "skipped": order.skipped,
        "gap": order.gap,
        "duplicate_offsets": order.duplicate_offsets,
    }
    counts = {
        "attempted": int(msgs["attempts"].sum()),
        "acknowledged": int(acked.sum()),
        "failed": int(fail.sum()),
        "indeterminate": int(info.sum()),
        "delivered": int(delivered.sum()),
        "lost": len(ids["lost"]),
        "unseen": len(ids["unseen"]),
        "duplicated": int(extra.sum()),
        "unexpected": len(ids["unexpected"]),
        "unverifiable": len(ids["unverifiable"]),
        "recovered": len(ids["recovered"]),
        "delivered_after_fail": len(ids["delivered_after_fail"]),
        "reordered": len(ids["reordered"]),
        "skipped": len(ids["skipped"]),
        "gap": len(ids["gap"]),
        "duplicate_offsets": len(ids["duplicate_offsets"]),
    }
    replayed = classify_replayed(msgs, state)
    counts["replayed"] = int(replayed["replayed"].sum())
    end = state.drain_end_ns
    windows = [(w.inject_ns, w.heal_ns if w.heal_ns is not None else (end or w.inject_ns)) for w in state.faults]
    downtime = [(w.inject_ns, w.heal_ns) for w in state.faults if w.type in DOWN and w.heal_ns is not None]
    health = check_health(frame, msgs, windows, (state.start_ns, end), downtime, totals)
    rooms = judge_rooms(rooms, msgs, ids, end)  # per room and member, now that each copy is judged
    return Analysis(state, msgs, ids, counts, latency_summary(replayed), replayed, catch_up(msgs, state),
                    unseen_reasons, check_fault_schedule(frame, msgs, state.cohort_of), health, rooms)


def _few(names: list[str], shown: int = 8) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _no_fair_chance(recipients: list[str], acked_ns: pd.Series, state: RunState,
                    fair_chance_s: Any) -> np.ndarray[Any, Any]:
    """Messages acknowledged before their recipient's last reconnect, when that reconnect was less than
    ``fair_chance_s`` before the drain ended: the recipient had no time to catch up. A first connect is not a
    reconnect (a user online all along had every chance)."""
    late = np.zeros(len(recipients), dtype=bool)
    if (not isinstance(fair_chance_s, int | float) or not np.isfinite(fair_chance_s) or state.drain_end_ns is None
            or state.connects.empty):
        return late
    connects = state.connects[state.connects["t_ns"] <= state.drain_end_ns]
    conn = pd.to_numeric(connects["conn"], errors="coerce").fillna(1)
    reconnects = connects[(conn > 1).to_numpy()]
    last = reconnects.groupby("process", sort=False)["t_ns"].max()
    cutoff = state.drain_end_ns - int(float(fair_chance_s) * 1e9)
    recent = {str(p): int(t) for p, t in last.items() if int(t) > cutoff}
    acked = acked_ns.to_numpy(dtype="float64", na_value=np.inf)
    return np.array([r in recent and a < recent[r] for r, a in zip(recipients, acked, strict=True)], dtype=bool)


_RESTARTS = frozenset({"kill_target", "restart_target", "rolling_restart"})

JOIN_ACK_MIN_SHARE = 0.5
"""Below this share of joins acknowledged, most members' room copies could only be allowed, never required: a
server that ignores joins would otherwise pass on the few it answered (or on none)."""


def _claim(counts: dict[str, int], options: CheckOptions, judgeable: bool, state: RunState,
           sound_but_unseen: bool = False) -> dict[str, Any]:
    """Judge the observation against what the target claims.

    Loss during a run that restarted the target does not break the claim of a target that does not
    claim to survive restarts (``valid`` still reports the loss: the claim check is about honesty).
    """
    checks = {"unexpected": 0, "delivered_after_fail": 0}
    restarted = any(w.type in _RESTARTS for w in state.faults)
    excused = restarted and not options.survives_restart
    if options.delivery != "at-most-once" and not excused:
        checks["lost"] = 0
    if options.delivery != "at-least-once":
        checks["duplicated"] = 0
    if options.ordered:
        checks["reordered"] = 0
    violations = [f"{name}={counts[name]}" for name, limit in checks.items() if counts[name] > limit]
    # Unseen messages can only turn out lost: where the claim allows loss, they cannot break it.
    sound = judgeable or (sound_but_unseen and "lost" not in checks)
    held: Validity = False if violations else (True if sound else UNKNOWN)
    claim: dict[str, Any] = {"delivery": options.delivery, "ordered": options.ordered, "held": held,
                             "violations": violations}
    if options.survives_restart or restarted:
        claim["survives_restart"] = options.survives_restart
    if excused and counts["lost"]:
        claim["note"] = "loss after a restart is outside this target's claim (it does not claim to survive one)"
    return claim


def check(frame: pd.DataFrame, options: CheckOptions | None = None) -> Verdict:
    """Judge one ledger. See checker.base for every term and key."""
    options = options or CheckOptions()
    return judge(analyse(frame, options), options)


def judge(a: Analysis, options: CheckOptions) -> Verdict:
    """The verdict for an analysis (split from ``check`` so reports reuse one analysis)."""
    counts = a.counts
    reasons: list[str] = []
    verdicts: list[Validity] = [True]
    if not a.state.complete:
        verdicts.append(UNKNOWN)
        reasons.append("run incomplete: no 'end' phase in the ledger (interrupted or crashed); loss not judged")
    if options.bad_lines:
        verdicts.append(UNKNOWN)
        reasons.append(f"{options.bad_lines} unreadable ledger line(s) could hide receipts; loss not judged")
    if a.faults.problems:
        verdicts.append(UNKNOWN)
        reasons.extend(a.faults.problems)
    if a.health.problems:  # never turns a violation into a pass: merge keeps the worst
        verdicts.append(UNKNOWN)
        reasons.extend(f"experiment unhealthy: {p}" for p in a.health.problems)
    damaged = a.state.unhealthy_nodes
    if damaged:  # whatever the damaged record held (a receipt, a fault row, an unexpected copy) is unknown
        verdicts.append(UNKNOWN)
        reasons.append("the record of load process(es) "
                       + "; ".join(f"{n} ({r})" for n, r in sorted(damaged.items()))
                       + " cannot be trusted: the verdict cannot be a pass")
    joins = a.rooms.joins_asked, a.rooms.joins_acknowledged
    if counts["acknowledged"] == 0:
        verdicts.append(UNKNOWN)
        reasons.append(f"no room copy was required: {joins[1]} of {joins[0]} join(s) acknowledged, none before a "
                       "send that was acknowledged; nothing to judge" if a.rooms.sends
                       else "no acknowledged sends: nothing to judge")
    elif a.rooms.sends and joins[0] and joins[1] < JOIN_ACK_MIN_SHARE * joins[0]:
        verdicts.append(UNKNOWN)
        reasons.append(f"only {joins[1]} of {joins[0]} join(s) were acknowledged: the room copies of the other "
                       "members could not be required, so most of the rooms were not judged")
    if a.state.complete and not options.bad_lines and counts["unseen"]:
        verdicts.append(UNKNOWN)
        reasons.append(f"{counts['unseen']} acknowledged message(s) unseen: " + "; ".join(a.unseen_reasons))
    if counts["unverifiable"]:
        verdicts.append(UNKNOWN)
        reasons.append(f"{counts['unverifiable']} receipt(s) of messages whose send is not in the ledger, from "
                       "sender(s) whose records are damaged or were cut off: cannot tell whether they were sent")
    if counts["lost"]:
        verdicts.append(False)
        reasons.append(f"{counts['lost']} acknowledged message(s) lost")
    if counts["unexpected"]:
        verdicts.append(False)
        reasons.append(f"{counts['unexpected']} unexpected receipt(s) (never sent, or delivered to the wrong user)")
    if counts["delivered_after_fail"]:
        verdicts.append(False)
        reasons.append(f"{counts['delivered_after_fail']} message(s) delivered although the server refused them")
    if options.delivery == "effectively-once" and counts["duplicated"]:
        verdicts.append(False)
        reasons.append(f"{counts['duplicated']} duplicate receipt(s) on a target that claims effectively-once")
    if options.ordered and counts["reordered"]:
        verdicts.append(False)
        reasons.append(f"{counts['reordered']} message(s) out of order on a target that claims ordering")

    sound = (a.state.complete and not options.bad_lines and not a.faults.problems
             and not a.state.unhealthy_nodes and not a.health.problems)
    observed = sound and counts["acknowledged"] > 0  # nothing acknowledged: a claim cannot have held on nothing
    judgeable = observed and not counts["unseen"]
    return Verdict(
        valid=merge_validity(*verdicts),
        counts=counts,
        latency_ms=a.latency,
        lost_ids=a.ids["lost"][:EXAMPLE_CAP],
        examples={name: values[:EXAMPLE_CAP] for name, values in a.ids.items()},
        reasons=reasons,
        complete=a.state.complete,
        target=options.target,
        scenario=options.scenario,
        details={
            "claim": _claim(counts, options, judgeable, a.state, sound_but_unseen=observed),
            "drain_quiescent": a.state.quiescent,
            "connected_at_end": dict(sorted(a.state.connected_at_end.items())),
            "unhealthy_nodes": dict(sorted(a.state.unhealthy_nodes.items())),
            "bad_lines": options.bad_lines,
            "catch_up": a.catch_up,
            "faults": a.faults.to_dict(),
            "health": a.health.to_dict(),
            **({"rooms": a.rooms.to_dict()} if a.rooms.sends else {}),
        },
    )


def check_safe(frame: pd.DataFrame, options: CheckOptions | None = None) -> Verdict:
    """``check`` that never passes on a crash: an exception becomes valid "unknown" with the error."""
    options = options or CheckOptions()
    try:
        return check(frame, options)
    except Exception as exc:  # a checker bug must never read as "0 lost"
        return crashed_verdict(exc, options)


def crashed_verdict(exc: BaseException, options: CheckOptions) -> Verdict:
    """The verdict when the checker itself failed: unknown, with the error, never a pass."""
    return unjudged_verdict(f"checker crashed: {type(exc).__name__}: {exc}", options)


def unjudged_verdict(reason: str, options: CheckOptions) -> Verdict:
    """The verdict when nothing could be judged (an unreadable ledger, a crash): unknown, nothing counted."""
    return Verdict(valid=UNKNOWN, counts={}, latency_ms={"delivery": Quantiles()}, lost_ids=[], examples={},
                   reasons=[reason], complete=False, target=options.target, scenario=options.scenario)


def exit_code(verdict: Verdict) -> int:
    """CLI contract: 0 guarantees held, 1 violated, 3 unknown or incomplete."""
    if verdict.valid is True:
        return 0
    if verdict.valid is False:
        return 1
    return 3
