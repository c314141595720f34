"""Counts over time (pure): sent, acknowledged, delivered and ``unseen`` (acked, not yet delivered).

``unseen`` over time is the shape of an outage: it climbs while a recipient cannot receive and falls as
the backlog is redelivered; whatever is left at the end of the drain is lost (or unseen, if unjudgeable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["counts_over_time"]


def counts_over_time(messages: pd.DataFrame, start_ns: int | None, bucket_ms: int = 100) -> pd.DataFrame:
    """One row per bucket: ``t_s`` (from start), cumulative ``sent``, ``acked``, ``delivered``, and ``unseen``."""
    if messages.empty:
        return pd.DataFrame({name: np.zeros(1, dtype="int64") for name in ("sent", "acked", "delivered", "unseen")}
                            | {"t_s": np.zeros(1)})[["t_s", "sent", "acked", "delivered", "unseen"]]
    invoke = messages["invoke_ns"].to_numpy(dtype="float64")
    ack = messages["ack_ns"].to_numpy(dtype="float64", na_value=np.nan)
    recv = messages["first_recv_ns"].to_numpy(dtype="float64", na_value=np.nan)
    origin = float(start_ns if start_ns is not None else np.nanmin(invoke))
    end = np.nanmax(np.concatenate([invoke, ack, recv]))
    edges = np.arange(origin, end + bucket_ms * 1e6, bucket_ms * 1e6)
    if edges.size == 0:
        edges = np.array([origin])

    def cumulative(times: np.ndarray) -> np.ndarray:
        times = np.sort(times[~np.isnan(times)])
        return np.searchsorted(times, edges, side="right")

    # unseen rises when an ack comes before the first receipt, and falls at that receipt
    late = ~np.isnan(ack) & (np.isnan(recv) | (recv > ack))
    unseen = cumulative(ack[late]) - cumulative(recv[late])
    return pd.DataFrame({
        "t_s": np.round((edges - origin) / 1e9, 3),
        "sent": cumulative(invoke),
        "acked": cumulative(ack),
        "delivered": cumulative(recv),
        "unseen": unseen,
    })
