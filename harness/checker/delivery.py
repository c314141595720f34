"""Jepsen total-queue accounting over sends and receipts (pure, vectorised over integer codes).

Per attempted message id: ``attempts`` (invoke rows), the send's outcome (ok / fail / info; a send with
no completion counts as info), and the receipts by its intended recipient. A receipt of an id that was
never attempted, or by someone other than the intended recipient, is ``unexpected``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DeliveryAnalysis", "analyse_delivery", "OUTCOMES"]

OUTCOMES = np.array(["ok", "fail", "info", "info"], dtype=object)
_RANK = {"ok": 0, "fail": 1, "info": 2}
_NONE = np.iinfo(np.int64).max


@dataclass(frozen=True)
class DeliveryAnalysis:
    """The message table plus the receipts it was built from."""

    messages: pd.DataFrame
    """One row per attempted msg_id (index): sender, recipient, seq, attempts, outcome, invoke_ns, ack_ns,
    receipts, first_recv_ns, first_recv_conn (null when never received)."""
    good_receipts: pd.DataFrame
    """Receipts of attempted messages by their intended recipient (every copy), with a ``code`` column."""
    unexpected: pd.DataFrame
    """Receipts of never-attempted ids or by the wrong user."""


def _first_by_code(codes: np.ndarray, times: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per code: the smallest time and the row position holding it (−1 when the code has no row)."""
    first_time = np.full(n, _NONE, dtype=np.int64)
    first_pos = np.full(n, -1, dtype=np.int64)
    if codes.size:
        order = np.lexsort((times, codes))
        unique_codes, starts = np.unique(codes[order], return_index=True)
        first_time[unique_codes] = times[order][starts]
        first_pos[unique_codes] = order[starts]
    return first_time, first_pos


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    """An Int64 array without a float round trip (ns timestamps exceed float64's exact range)."""
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing.astype(bool))


def analyse_delivery(frame: pd.DataFrame) -> DeliveryAnalysis:
    """Join sends and receipts by msg_id."""
    f = frame["f"]
    kind = frame["type"]
    invokes = frame[(f == "send") & (kind == "invoke")]
    completions = frame[(f == "send") & kind.isin(["ok", "fail", "info"])]
    recvs = frame[(f == "recv") & (kind == "ok")]

    ids = pd.Index(invokes["msg_id"].unique())
    n = len(ids)
    inv_code = ids.get_indexer(invokes["msg_id"])
    inv_t = invokes["t_ns"].to_numpy(dtype=np.int64)
    attempts = np.bincount(inv_code, minlength=n).astype(np.int64)
    invoke_ns, inv_first = _first_by_code(inv_code, inv_t, n)
    first_rows = invokes.iloc[inv_first] if n else invokes.iloc[0:0]

    comp_code = ids.get_indexer(completions["msg_id"])
    keep = comp_code >= 0
    comp_code = comp_code[keep]
    comp_rank = completions["type"].map(_RANK).to_numpy(dtype=np.int64)[keep]
    best = np.full(n, 3, dtype=np.int64)
    np.minimum.at(best, comp_code, comp_rank)
    ok_rows = comp_rank == 0
    ack_ns, _ = _first_by_code(comp_code[ok_rows], completions["t_ns"].to_numpy(dtype=np.int64)[keep][ok_rows], n)

    users = pd.Index(pd.concat([first_rows["recipient"], recvs["recipient"]]).dropna().unique())
    msg_recipient = users.get_indexer(first_rows["recipient"])
    r_code = ids.get_indexer(recvs["msg_id"])
    receiver = users.get_indexer(recvs["recipient"])
    intended = np.where(r_code >= 0, msg_recipient[np.maximum(r_code, 0)] if n else -2, -2)
    good_mask = (r_code >= 0) & (receiver == intended) & (receiver >= 0)
    good = recvs[good_mask].assign(code=r_code[good_mask])
    unexpected = recvs[~good_mask]

    g_code = good["code"].to_numpy(dtype=np.int64)
    receipts = np.bincount(g_code, minlength=n).astype(np.int64)
    first_recv_ns, recv_first = _first_by_code(g_code, good["t_ns"].to_numpy(dtype=np.int64), n)
    conn = good["conn"].to_numpy(dtype="float64", na_value=np.nan)
    first_conn = np.where(recv_first >= 0, conn[np.maximum(recv_first, 0)] if len(conn) else np.nan, np.nan)

    messages = pd.DataFrame(
        {
            "sender": first_rows["sender"].to_numpy(),
            "recipient": first_rows["recipient"].to_numpy(),
            "seq": first_rows["seq"].to_numpy(),
            "attempts": attempts,
            "outcome": OUTCOMES[best],
            "invoke_ns": invoke_ns,
            "ack_ns": _nullable(ack_ns, ack_ns == _NONE),
            "receipts": receipts,
            "first_recv_ns": _nullable(first_recv_ns, first_recv_ns == _NONE),
            "first_recv_conn": _nullable(np.nan_to_num(first_conn).astype(np.int64), np.isnan(first_conn)),
        },
        index=pd.Index(ids, name="msg_id"),
    )
    return DeliveryAnalysis(messages, good, unexpected)
