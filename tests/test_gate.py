"""The gate: exact exit codes and reasons for known verdict documents."""

from __future__ import annotations

from typing import Any

from harness.config import GatePolicy
from harness.gate import gate


def verdict(valid: Any = True, complete: bool = True, claim: dict[str, Any] | None = None,
            p99: float = 5.0, redelivery_p99: float | None = None, **counts: int) -> dict[str, Any]:
    base = {"lost": 0, "unexpected": 0, "delivered_after_fail": 0, "duplicated": 0, "reordered": 0,
            "delivered": 100, "unseen": 0, "acknowledged": 100}
    return {"valid": valid, "complete": complete, "counts": {**base, **counts},
            "details": {"claim": claim or {"delivery": "at-least-once", "ordered": False}},
            "latency_ms": {"delivery": {"p99": p99}, "redelivery": {"p99": redelivery_p99}}}


def test_clean_verdict_passes() -> None:
    result = gate(verdict())
    assert (result.exit_code, result.reasons) == (0, [])


def test_default_policy_follows_the_verdict() -> None:
    result = gate(verdict(valid=False, lost=3))
    assert (result.exit_code, result.reasons) == (1, ["lost = 3 exceeds 0"])


def test_thresholds_can_tolerate_what_the_verdict_reports() -> None:
    result = gate(verdict(valid=False, lost=3), GatePolicy(max_lost=5))
    assert (result.exit_code, result.reasons) == (0, [])


def test_duplicates_fail_only_when_effectively_once_or_over_ratio() -> None:
    assert gate(verdict(duplicated=10)).exit_code == 0
    strict = verdict(valid=False, duplicated=10, claim={"delivery": "effectively-once", "ordered": False})
    assert gate(strict).reasons == ["duplicated_ratio = 0.1 exceeds 0.0"]
    assert gate(verdict(duplicated=10), GatePolicy(max_duplicated_ratio=0.05)).exit_code == 1


def test_reordering_fails_only_where_order_is_claimed_or_limited() -> None:
    assert gate(verdict(reordered=2)).exit_code == 0
    assert gate(verdict(valid=False, reordered=2, claim={"delivery": "at-least-once", "ordered": True})).exit_code == 1
    assert gate(verdict(reordered=2), GatePolicy(max_reordered=1)).reasons == ["reordered = 2 exceeds 1"]


def test_latency_thresholds() -> None:
    result = gate(verdict(p99=250.0, redelivery_p99=4000.0),
                  GatePolicy(max_p99_delivery_ms=100, max_p99_redelivery_ms=5000))
    assert (result.exit_code, result.reasons) == (1, ["p99_delivery_ms = 250.0 exceeds 100.0"])


def test_unknown_is_3_unless_something_definite_failed() -> None:
    unknown = verdict(valid="unknown", complete=False, unseen=4)
    unknown["reason"] = "run incomplete"
    assert (gate(unknown).exit_code, gate(unknown).reasons) == (3, ["run incomplete"])
    assert gate(verdict(valid=False, complete=False, unexpected=1)).exit_code == 1


def test_tolerated_loss_with_unseen_messages_is_still_unknown() -> None:
    result = gate(verdict(valid=False, lost=1, unseen=2), GatePolicy(max_lost=10))
    assert result.exit_code == 3
