"""The CI gate (pure): a verdict and a policy in, an exit code and its reasons out.

Exit codes as in the CLI contract: 0 every guarantee held, 1 a guarantee or threshold violated,
3 unknown (nothing violated, but the run could not be fully judged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.config import GatePolicy

__all__ = ["GateCheck", "GateResult", "gate"]


@dataclass(frozen=True)
class GateCheck:
    """One guarantee or threshold: its name, whether it held, the observed value and the limit."""

    name: str
    passed: bool
    observed: float | int | None
    limit: float | int | None
    detail: str = ""


@dataclass(frozen=True)
class GateResult:
    exit_code: int
    reasons: list[str]
    checks: list[GateCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "passed": self.exit_code == 0, "reasons": list(self.reasons),
                "checks": [c.__dict__ for c in self.checks]}


def gate(verdict: dict[str, Any], policy: GatePolicy | None = None) -> GateResult:
    """Apply ``policy`` to a verdict.json document."""
    policy = policy or GatePolicy()
    counts: dict[str, int] = verdict.get("counts") or {}
    claim = (verdict.get("details") or {}).get("claim") or {}
    latency = verdict.get("latency_ms") or {}
    checks: list[GateCheck] = []

    def limit(name: str, observed: int | float | None, maximum: int | float | None, detail: str = "") -> None:
        if maximum is None or observed is None:
            return
        checks.append(GateCheck(name, observed <= maximum, observed, maximum, detail))

    limit("lost", counts.get("lost"), policy.max_lost if policy.max_lost is not None else 0)
    limit("unexpected", counts.get("unexpected"), policy.max_unexpected if policy.max_unexpected is not None else 0)
    limit("delivered_after_fail", counts.get("delivered_after_fail"), 0)
    dup_limit = policy.max_duplicated_ratio
    if dup_limit is None and claim.get("delivery") == "effectively-once":
        dup_limit = 0.0
    delivered = counts.get("delivered") or 0
    ratio = (counts.get("duplicated", 0) / delivered) if delivered else 0.0
    limit("duplicated_ratio", round(ratio, 6), dup_limit, f"{counts.get('duplicated', 0)} extra receipt(s)")
    reorder_limit = policy.max_reordered
    if reorder_limit is None and claim.get("ordered"):
        reorder_limit = 0
    limit("reordered", counts.get("reordered"), reorder_limit)
    limit("p99_delivery_ms", (latency.get("delivery") or {}).get("p99"), policy.max_p99_delivery_ms)
    limit("p99_redelivery_ms", (latency.get("redelivery") or {}).get("p99"), policy.max_p99_redelivery_ms)

    failed = [c for c in checks if not c.passed]
    if failed:
        return GateResult(1, [f"{c.name} = {c.observed} exceeds {c.limit}" for c in failed], checks)
    if verdict.get("valid") == "unknown" or not verdict.get("complete", False) or counts.get("unseen", 0) > 0:
        return GateResult(3, [verdict.get("reason") or "the run could not be fully judged"], checks)
    return GateResult(0, [], checks)
