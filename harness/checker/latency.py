"""Latency (pure): delivery latency, live vs replayed, redelivery after reconnect, catch-up after heals.

- delivery latency: first receipt − send (invoke), for every delivered message.
- replayed: a message whose first receipt came on a later connection of the recipient than the one it
  had when the message was sent (it crossed a reconnect); otherwise live.
- redelivery latency: for replayed messages, first receipt − send, and first receipt − the reconnect it
  came on (``since_reconnect``).
- catch-up after a heal: for messages to the healed cohort acknowledged before the heal and not yet
  delivered then, the time from the heal until the last of them arrived (None if some never did).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.checker.base import Quantiles
from harness.checker.run_state import RunState

__all__ = ["quantiles_ms", "classify_replayed", "latency_summary", "catch_up"]


def quantiles_ms(latency_ns: pd.Series | np.ndarray) -> Quantiles:
    """p50/p95/p99/max of nanosecond durations, in milliseconds (3 decimals)."""
    values = np.asarray(pd.Series(latency_ns).dropna().to_numpy(dtype="float64")) / 1e6
    if values.size == 0:
        return Quantiles()
    p50, p95, p99, top = np.quantile(values, [0.5, 0.95, 0.99, 1.0])
    return Quantiles(round(float(p50), 3), round(float(p95), 3), round(float(p99), 3), round(float(top), 3),
                     int(values.size))


def classify_replayed(messages: pd.DataFrame, state: RunState) -> pd.DataFrame:
    """Delivered messages with ``latency_ns``, ``replayed`` and ``since_reconnect_ns`` columns."""
    delivered = messages[messages["first_recv_ns"].notna()]
    out = pd.DataFrame({
        "recipient": delivered["recipient"].astype("string").to_numpy(),
        "invoke_ns": delivered["invoke_ns"].to_numpy(dtype="int64"),
        "recv_ns": delivered["first_recv_ns"].to_numpy(dtype="int64"),
        "recv_conn": delivered["first_recv_conn"].to_numpy(dtype="float64", na_value=np.nan),
    }, index=delivered.index)
    out["recipient"] = out["recipient"].astype("string")
    out["latency_ns"] = out["recv_ns"] - out["invoke_ns"]
    connects = state.connects
    if connects.empty or out.empty:
        out["replayed"] = False
        out["since_reconnect_ns"] = pd.array([pd.NA] * len(out), dtype="Int64")
        return out
    table = pd.DataFrame({"recipient": connects["process"].astype("string"),
                          "send_conn": connects["conn"].to_numpy(dtype="float64", na_value=np.nan),
                          "t_ns": connects["t_ns"].to_numpy(dtype="int64")})
    table["recipient"] = table["recipient"].astype("string")
    ordered = out.reset_index().sort_values("invoke_ns", kind="stable")
    joined = pd.merge_asof(ordered, table.rename(columns={"t_ns": "invoke_ns"}).sort_values("invoke_ns"),
                           on="invoke_ns", by="recipient", direction="backward")
    joined = joined.set_index(out.index.name or "msg_id").reindex(out.index)
    send_conn = joined["send_conn"].to_numpy(dtype="float64")
    recv_conn = out["recv_conn"].to_numpy(dtype="float64")
    out["replayed"] = (~np.isnan(send_conn)) & (~np.isnan(recv_conn)) & (recv_conn > send_conn)
    reconnect = table.rename(columns={"send_conn": "recv_conn", "t_ns": "reconnect_ns"})
    with_reconnect = out[["recipient", "recv_conn"]].reset_index().merge(
        reconnect.drop_duplicates(["recipient", "recv_conn"]), on=["recipient", "recv_conn"], how="left"
    ).set_index(out.index.name or "msg_id").reindex(out.index)
    since = out["recv_ns"].to_numpy(dtype="float64") - with_reconnect["reconnect_ns"].to_numpy(dtype="float64")
    out["since_reconnect_ns"] = np.where(out["replayed"], since, np.nan)
    return out


def latency_summary(classified: pd.DataFrame) -> dict[str, Quantiles]:
    """Quantile maps: delivery (all), live, replayed, and replayed measured from the reconnect."""
    replayed = classified[classified["replayed"]]
    return {
        "delivery": quantiles_ms(classified["latency_ns"]),
        "live": quantiles_ms(classified.loc[~classified["replayed"], "latency_ns"]),
        "redelivery": quantiles_ms(replayed["latency_ns"]),
        "redelivery_since_reconnect": quantiles_ms(replayed["since_reconnect_ns"]),
    }


def catch_up(messages: pd.DataFrame, state: RunState) -> list[dict[str, Any]]:
    """Per healed fault: how many acked messages to its cohort were pending at the heal and how long until
    the last arrived (``catch_up_ms`` None when some never arrived)."""
    results: list[dict[str, Any]] = []
    if messages.empty:
        return results
    recipients = messages["recipient"].astype("string")
    ack = messages["ack_ns"].to_numpy(dtype="float64", na_value=np.nan)
    recv = messages["first_recv_ns"].to_numpy(dtype="float64", na_value=np.nan)
    for window in state.faults:
        if window.heal_ns is None:
            continue
        members = [u for u, c in state.cohort_of.items() if c == window.cohort] if window.cohort else []
        in_cohort = recipients.isin(members).to_numpy() if members else np.ones(len(messages), dtype=bool)
        heal = float(window.heal_ns)
        pending = in_cohort & (ack < heal) & (np.isnan(recv) | (recv > heal))
        arrived = pending & ~np.isnan(recv)
        missing = int(pending.sum() - arrived.sum())
        worst = float(np.max(recv[arrived] - heal)) / 1e6 if arrived.any() else 0.0
        results.append({
            "fault": window.fault, "cohort": window.cohort, "heal_ns": window.heal_ns,
            "pending_at_heal": int(pending.sum()), "never_arrived": missing,
            "catch_up_ms": None if missing else round(worst, 3),
        })
    return results
