"""The checker: a pure function from a ledger to a verdict. No I/O, no clock, no network.

``check(frame, options)`` returns a :class:`Verdict` whose keys are listed in ``checker.base``.
Same ledger, same options ⇒ same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.checker.base import EXAMPLE_CAP, UNKNOWN, Quantiles, Validity, Verdict, merge_validity
from harness.checker.delivery import analyse_delivery
from harness.checker.latency import quantiles_ms
from harness.checker.ordering import reordered_ids
from harness.checker.run_state import run_state

__all__ = ["CheckOptions", "check", "exit_code", "Verdict", "Quantiles", "UNKNOWN"]


@dataclass(frozen=True)
class CheckOptions:
    """What the checker needs to know besides the ledger."""

    ordered: bool = False
    """The target claims per-stream order, so a reordered receipt invalidates the verdict."""
    bad_lines: int = 0
    """Ledger lines that could not be read; they could hide receipts, so loss becomes unknown."""
    target: str | None = None
    scenario: str | None = None


def _capped(ids: list[str]) -> list[str]:
    return sorted(ids)[:EXAMPLE_CAP]


def check(frame: pd.DataFrame, options: CheckOptions | None = None) -> Verdict:
    """Judge one ledger. See checker.base for every term and key."""
    options = options or CheckOptions()
    state = run_state(frame)
    delivery = analyse_delivery(frame)
    msgs = delivery.messages

    acked = msgs["outcome"] == "ok"
    delivered = msgs["receipts"] > 0
    undelivered_acked = msgs[acked & ~delivered]
    readable = undelivered_acked["recipient"].map(lambda r: state.connected_at_end.get(str(r), True))
    judgeable = state.complete and options.bad_lines == 0
    if judgeable:
        lost = undelivered_acked[readable.astype(bool)]
        unseen = undelivered_acked[~readable.astype(bool)]
    else:
        lost = undelivered_acked.iloc[0:0]
        unseen = undelivered_acked

    extra = (msgs["receipts"] - msgs["attempts"]).clip(lower=0)
    duplicated_ids = [str(m) for m in msgs.index[extra > 0]]
    recovered = msgs[delivered & (msgs["outcome"] == "info")]
    after_fail = msgs[delivered & (msgs["outcome"] == "fail")]
    reordered = reordered_ids(delivery.good_receipts)
    unexpected_ids = [str(m) for m in delivery.unexpected["msg_id"]]

    counts = {
        "attempted": int(msgs["attempts"].sum()),
        "acknowledged": int(acked.sum()),
        "failed": int((msgs["outcome"] == "fail").sum()),
        "indeterminate": int((msgs["outcome"] == "info").sum()),
        "delivered": int(delivered.sum()),
        "lost": len(lost),
        "unseen": len(unseen),
        "duplicated": int(extra.sum()),
        "unexpected": len(delivery.unexpected),
        "recovered": len(recovered),
        "delivered_after_fail": len(after_fail),
        "reordered": len(reordered),
    }
    latency = {"delivery": quantiles_ms(msgs["first_recv_ns"] - msgs["invoke_ns"])}

    reasons: list[str] = []
    verdicts: list[Validity] = [True]
    if not state.complete:
        verdicts.append(UNKNOWN)
        reasons.append("run incomplete: no 'end' phase in the ledger (interrupted or crashed); loss not judged")
    if options.bad_lines:
        verdicts.append(UNKNOWN)
        reasons.append(f"{options.bad_lines} unreadable ledger line(s) could hide receipts; loss not judged")
    if counts["acknowledged"] == 0:
        verdicts.append(UNKNOWN)
        reasons.append("no acknowledged sends: nothing to judge")
    if judgeable and len(unseen):
        verdicts.append(UNKNOWN)
        who = sorted({str(r) for r in unseen["recipient"]})
        reasons.append(f"{len(unseen)} acknowledged message(s) unseen: recipient(s) {', '.join(who)} not connected "
                       "when the drain ended")
    if counts["lost"]:
        verdicts.append(False)
        reasons.append(f"{counts['lost']} acknowledged message(s) lost")
    if counts["unexpected"]:
        verdicts.append(False)
        reasons.append(f"{counts['unexpected']} unexpected receipt(s) (never sent, or delivered to the wrong user)")
    if counts["delivered_after_fail"]:
        verdicts.append(False)
        reasons.append(f"{counts['delivered_after_fail']} message(s) delivered although the server refused them")
    if options.ordered and counts["reordered"]:
        verdicts.append(False)
        reasons.append(f"{counts['reordered']} message(s) out of order on a target that claims ordering")

    examples = {
        "lost": _capped([str(m) for m in lost.index]),
        "unseen": _capped([str(m) for m in unseen.index]),
        "duplicated": _capped(duplicated_ids),
        "unexpected": _capped(unexpected_ids),
        "recovered": _capped([str(m) for m in recovered.index]),
        "delivered_after_fail": _capped([str(m) for m in after_fail.index]),
        "reordered": _capped(reordered),
    }
    return Verdict(
        valid=merge_validity(*verdicts),
        counts=counts,
        latency_ms=latency,
        lost_ids=_capped([str(m) for m in lost.index]),
        examples=examples,
        reasons=reasons,
        complete=state.complete,
        target=options.target,
        scenario=options.scenario,
        details={
            "drain_quiescent": state.quiescent,
            "connected_at_end": dict(sorted(state.connected_at_end.items())),
            "bad_lines": options.bad_lines,
            "ordered_claimed": options.ordered,
        },
    )


def exit_code(verdict: Verdict) -> int:
    """CLI contract: 0 guarantees held, 1 violated, 3 unknown or incomplete."""
    if verdict.valid is True:
        return 0
    if verdict.valid is False:
        return 1
    return 3
