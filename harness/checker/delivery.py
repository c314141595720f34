"""Jepsen total-queue accounting over sends and receipts (pure).

Per message id: ``attempts`` (invoke rows), the send's outcome (ok / fail / info; no completion counts
as info), and the receipts by its intended recipient. See checker.base for the terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["DeliveryAnalysis", "analyse_delivery"]


@dataclass(frozen=True)
class DeliveryAnalysis:
    """Message-level outcome table plus the anomalies derived from it."""

    messages: pd.DataFrame
    """One row per attempted msg_id: sender, recipient, seq, attempts, outcome, invoke_ns, receipts, first_recv_ns."""
    good_receipts: pd.DataFrame
    """Receipts of attempted messages by their intended recipient (all copies), in ledger order."""
    unexpected: pd.DataFrame
    """Receipts of never-attempted messages or by the wrong user."""


def analyse_delivery(frame: pd.DataFrame) -> DeliveryAnalysis:
    """Join sends and receipts by msg_id."""
    sends = frame[frame["f"] == "send"]
    invokes = sends[sends["type"] == "invoke"]
    attempts = invokes.groupby("msg_id", sort=False).agg(
        sender=("sender", "first"),
        recipient=("recipient", "first"),
        seq=("seq", "first"),
        attempts=("t_ns", "size"),
        invoke_ns=("t_ns", "min"),
    )
    completions = sends[sends["type"].isin(["ok", "fail", "info"])]
    # A send may complete once; if a ledger holds several, the most definite one wins (ok > fail > info).
    rank = completions["type"].map({"ok": 0, "fail": 1, "info": 2})
    outcome = (
        completions.assign(_rank=rank)
        .sort_values("_rank", kind="stable")
        .groupby("msg_id", sort=False)
        .agg(outcome=("type", "first"), ack_ns=("t_ns", "first"))
    )
    messages = attempts.join(outcome, how="left")
    messages["outcome"] = messages["outcome"].fillna("info").astype("string")

    recvs = frame[(frame["f"] == "recv") & (frame["type"] == "ok")]
    intended = recvs["msg_id"].map(messages["recipient"])
    right_user = (intended == recvs["recipient"]).fillna(False).to_numpy(dtype=bool)
    good = recvs[right_user]
    unexpected = recvs[~right_user]

    per_msg = good.groupby("msg_id", sort=False).agg(receipts=("t_ns", "size"), first_recv_ns=("t_ns", "min"))
    messages = messages.join(per_msg, how="left")
    messages["receipts"] = messages["receipts"].fillna(0).astype("int64")
    return DeliveryAnalysis(messages, good, unexpected)
