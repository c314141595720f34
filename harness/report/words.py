"""The verdict in words a person reads in five seconds (pure): the headline, the claim, the headline counts.

Used by report.html and comparison.html; the terminal and report.md keep their own lines (summary.py).
"""

from __future__ import annotations

from typing import Any

from harness.report.numbers import number
from harness.report.summary import held, label

__all__ = ["HEADLINE_COUNTS", "BAD_COUNTS", "headline", "claim_sentence", "headline_counts", "other_counts",
           "number"]

HEADLINE_COUNTS = ("acknowledged", "delivered", "lost", "unseen", "duplicated", "unexpected")
"""Shown first; every other count is folded away unless it is a bad one that is not zero."""

BAD_COUNTS = frozenset({"lost", "unseen", "unexpected", "unverifiable", "delivered_after_fail"})
"""Counts that, when not zero, mean a guarantee broke or could not be judged (drawn red)."""

_PROMISE = {
    "at-most-once": "it may lose messages but never delivers one twice",
    "at-least-once": "every acknowledged message arrives, perhaps more than once",
    "effectively-once": "every acknowledged message arrives exactly once",
}


def headline(doc: dict[str, Any]) -> str:
    """One sentence: what happened to the messages, in the verdict's own terms."""
    c = doc.get("counts") or {}
    verdict = label(doc.get("valid"))
    acked = int(c.get("acknowledged") or 0)
    if not c:
        return "No verdict on delivery: the checker could not judge this ledger."
    if verdict == "PASS":
        return f"Every one of the {acked:,} acknowledged messages was delivered."
    if verdict == "FAIL":
        claim = (doc.get("details") or {}).get("claim") or {}
        causes = [("lost", "acknowledged message(s) lost"), ("unexpected", "unexpected receipt(s)"),
                  ("delivered_after_fail", "refused message(s) delivered anyway")]
        if claim.get("ordered"):
            causes.append(("reordered", "message(s) out of order"))
        if claim.get("delivery") == "effectively-once":
            causes.append(("duplicated", "duplicate receipt(s)"))
        lost = c.get("lost") or 0
        bad = [f"{c[k]:,} {words}" for k, words in causes if c.get(k) and k != "lost"]
        first = [f"{lost:,} of the {acked:,} acknowledged messages never arrived"] if lost else []
        text = "; ".join((first + bad)[:3]) or "A guarantee was broken"
        return text[0].upper() + text[1:] + "."
    return "Not judged: the run cannot support a pass or a fail (see why below)."


def claim_sentence(doc: dict[str, Any]) -> str:
    """What the target claims, whether this run broke it, and why that may differ from the verdict."""
    claim = (doc.get("details") or {}).get("claim") or {}
    if not claim:
        return "The target's claim was not judged."
    target = doc.get("target") or "the target"
    delivery = claim.get("delivery")
    order = ", in order per sender" if claim.get("ordered") else ""
    promise = (f"{target} claims {delivery} delivery{order}: {_PROMISE.get(str(delivery), 'its own terms')}."
               if delivery else f"{target} states no delivery claim.")
    state = held(claim.get("held"))
    verdict = label(doc.get("valid"))
    if state == "violated":
        return (f"{promise} This run broke that claim ({', '.join(claim.get('violations') or [])}): "
                "claim violated.")
    if state == "unknown":
        return f"{promise} Whether it held cannot be told from this run, because the verdict is not judgeable."
    lost = (doc.get("counts") or {}).get("lost", 0)
    if verdict == "FAIL" and claim.get("note"):
        return f"{promise} Claim held: {claim['note']}. The verdict is still FAIL, because {lost:,} were lost."
    if verdict == "FAIL":
        return (f"{promise} Nothing this run saw breaks that promise, so the claim held. The verdict is still "
                "FAIL: the harness requires every acknowledged message to arrive, and "
                f"{lost:,} did not." if lost else
                f"{promise} The claim held, but the verdict is FAIL for the reason above.")
    return f"{promise} Nothing this run saw breaks that promise: claim held."


def headline_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """The counts shown first: the headline ones, then any other bad count that is not zero."""
    first = [(k, counts[k]) for k in HEADLINE_COUNTS if k in counts]
    extra = [(k, v) for k, v in counts.items() if k in BAD_COUNTS and k not in HEADLINE_COUNTS and v]
    return first + extra


def other_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Everything ``headline_counts`` leaves out (folded on the page)."""
    shown = {k for k, _ in headline_counts(counts)}
    return [(k, v) for k, v in counts.items() if k not in shown]
