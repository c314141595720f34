"""Verdict types shared by every checker.

Terms (the same words appear in verdict.json and the reports):

- attempted: sends the driver invoked.
- acknowledged: sends the server acknowledged (``ok``).
- delivered: attempted messages received at least once by their intended recipient.
- lost: acknowledged messages never received by their recipient, judged only after a complete drain
  and only for recipients that were connected when the drain ended.
- unseen: acknowledged, not delivered, but the run could not have read them (run incomplete, recipient
  not connected at the end, damaged ledger). Never counted as lost; makes the verdict "unknown".
- duplicated: extra receipts beyond the number of attempts (two receipts of one send count 1).
- unexpected: receipts of a message never attempted, or received by someone other than its recipient.
- unverifiable: receipts of a message never attempted whose sender's records are damaged (its load
  process died, lines are unreadable, or the run was cut off): it may have been sent. Not unexpected;
  makes the verdict "unknown".
- recovered: delivered although the send ended ``info`` (outcome unknown) or never completed.
- delivered_after_fail: delivered although the server refused the send (``fail``); Jepsen's aborted read.
- reordered: per sender→recipient stream, first receipts with a lower seq than one already received.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Validity", "UNKNOWN", "merge_validity", "Quantiles", "Verdict", "EXAMPLE_CAP", "RowTotals"]

Validity = bool | Literal["unknown"]
UNKNOWN: Literal["unknown"] = "unknown"

#: How many example ids an anomaly carries in verdict.json (full lists go to the report).
EXAMPLE_CAP = 32


def merge_validity(*values: Validity) -> Validity:
    """Worst first: False beats "unknown" beats True."""
    if any(v is False for v in values):
        return False
    if any(v == UNKNOWN for v in values):
        return UNKNOWN
    return True


@dataclass(frozen=True)
class Quantiles:
    """Latency quantiles in milliseconds; all None when nothing was measured."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    count: int = 0


@dataclass
class Verdict:
    """What the checker concluded from one ledger. ``to_dict`` gives the verdict.json shape."""

    valid: Validity
    counts: dict[str, int]
    latency_ms: dict[str, Quantiles]
    lost_ids: list[str]
    examples: dict[str, list[str]]
    reasons: list[str] = field(default_factory=list)
    complete: bool = True
    target: str | None = None
    scenario: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        """One line explaining a verdict that is not plainly valid."""
        return "; ".join(self.reasons) if self.reasons else None

    def to_dict(self) -> dict[str, Any]:
        """The public verdict.json document."""
        return {
            "valid": self.valid,
            "reason": self.reason,
            "target": self.target,
            "scenario": self.scenario,
            "complete": self.complete,
            "counts": dict(self.counts),
            "latency_ms": {k: asdict(v) for k, v in self.latency_ms.items()},
            "lost_ids": list(self.lost_ids),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class RowTotals:
    """What a partitioned check knows about the send and receipt rows that its global frame lacks (counted
    over every row while the ledger was split, or merged from the partitions)."""

    nodes: frozenset[str] = frozenset()
    """Every node that wrote a row."""
    first_t_ns: int | None = None
    """The earliest ``t_ns`` of any row (the start when no ``start`` phase was written)."""
    sends_made: int = 0
    """``invoke`` rows of ``send``."""
    acks_timed_out: int = 0
    """``info`` rows of ``send`` whose error starts with "no ack within"."""
    receivers: dict[str, str] = field(default_factory=dict)
    """Per recipient of a receipt: the node of its first receipt in file order."""
    stray: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """Send completions that match no invoke, per node (``DeliveryAnalysis.stray``, rows in the whole ledger)."""
