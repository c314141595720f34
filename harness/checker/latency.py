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
    if isinstance(latency_ns, pd.Series):  # never hand numpy a Series: its index would get hashed
        latency_ns = latency_ns.to_numpy(dtype="float64", na_value=np.nan)
    values = np.asarray(latency_ns, dtype="float64")
    values = values[~np.isnan(values)] / 1e6
    if values.size == 0:
        return Quantiles()
    p50, p95, p99, top = np.quantile(values, [0.5, 0.95, 0.99, 1.0])
    return Quantiles(round(float(p50), 3), round(float(p95), 3), round(float(p99), 3), round(float(top), 3),
                     int(values.size))


_SHIFT = 42  # key = recipient code << 42 | µs since the earliest time: 50 days of run, 2M recipients


def classify_replayed(messages: pd.DataFrame, state: RunState) -> pd.DataFrame:
    """Delivered messages with ``latency_ns``, ``replayed`` and ``since_reconnect_ns`` columns."""
    delivered = messages["first_recv_ns"].notna().to_numpy(dtype=bool)
    recipients = messages["recipient"]
    rc = recipients.cat.codes.to_numpy(dtype=np.int64)[delivered]
    invoke = messages["invoke_ns"].to_numpy(dtype=np.int64)[delivered]
    recv = messages["first_recv_ns"].to_numpy(dtype=np.int64, na_value=0)[delivered]
    recv_conn = messages["first_recv_conn"].to_numpy(dtype="float64", na_value=np.nan)[delivered]
    out = pd.DataFrame({"latency_ns": recv - invoke}, index=messages.index[delivered])
    replayed = np.zeros(rc.size, dtype=bool)
    since = np.full(rc.size, np.nan)
    connects = state.connects
    if not connects.empty and rc.size:
        c_rc = recipients.cat.categories.get_indexer(connects["process"].astype(str)).astype(np.int64)
        c_conn = connects["conn"].to_numpy(dtype="float64", na_value=np.nan)
        c_t = connects["t_ns"].to_numpy(dtype=np.int64)
        keep = (c_rc >= 0) & ~np.isnan(c_conn)
        c_rc, c_conn, c_t = c_rc[keep], c_conn[keep], c_t[keep]
        origin = min(int(c_t.min()), int(invoke.min())) if c_t.size else int(invoke.min())
        c_key = (c_rc << _SHIFT) | ((c_t - origin) // 1000)
        sort = np.argsort(c_key, kind="stable")
        c_key, c_conn, c_t, c_rc = c_key[sort], c_conn[sort], c_t[sort], c_rc[sort]
        maybe = np.flatnonzero(recv_conn > 1)  # a receipt on the first connection cannot be a replay
        m_key = (rc[maybe] << _SHIFT) | ((invoke[maybe] - origin) // 1000)
        pos = np.searchsorted(c_key, m_key, side="right") - 1
        same = (pos >= 0) & (c_rc[np.maximum(pos, 0)] == rc[maybe]) if c_key.size else np.zeros(maybe.size, bool)
        send_conn = np.where(same, c_conn[np.maximum(pos, 0)] if c_key.size else np.nan, np.nan)
        replayed[maybe] = ~np.isnan(send_conn) & (recv_conn[maybe] > send_conn)
        # the reconnect a replayed message came on: connect row (recipient, recv_conn)
        e_key = (c_rc << 20) | c_conn.astype(np.int64)
        e_sort = np.argsort(e_key, kind="stable")
        wanted = (rc[replayed] << 20) | recv_conn[replayed].astype(np.int64)
        at = np.searchsorted(e_key[e_sort], wanted)
        found = (at < e_key.size) & (e_key[e_sort][np.minimum(at, e_key.size - 1)] == wanted)
        reconnect_t = np.where(found, c_t[e_sort][np.minimum(at, e_key.size - 1)], 0)
        since[replayed] = np.where(found, recv[replayed] - reconnect_t, np.nan)
    out["replayed"] = replayed
    out["since_reconnect_ns"] = since
    return out


def latency_summary(classified: pd.DataFrame) -> dict[str, Quantiles]:
    """Quantile maps: delivery (all), live, replayed, and replayed measured from the reconnect."""
    latency = classified["latency_ns"].to_numpy(dtype="float64")
    replayed = classified["replayed"].to_numpy(dtype=bool)
    since = classified["since_reconnect_ns"].to_numpy(dtype="float64")
    return {
        "delivery": quantiles_ms(latency),
        "live": quantiles_ms(latency[~replayed]),
        "redelivery": quantiles_ms(latency[replayed]),
        "redelivery_since_reconnect": quantiles_ms(since[replayed]),
    }


def catch_up(messages: pd.DataFrame, state: RunState) -> list[dict[str, Any]]:
    """Per healed fault: how many acked messages to its cohort were pending at the heal and how long until
    the last arrived (``catch_up_ms`` None when some never arrived)."""
    results: list[dict[str, Any]] = []
    if messages.empty:
        return results
    recipient_codes = messages["recipient"].cat.codes.to_numpy(dtype=np.int64)
    categories = messages["recipient"].cat.categories
    ack = messages["ack_ns"].to_numpy(dtype="float64", na_value=np.nan)
    recv = messages["first_recv_ns"].to_numpy(dtype="float64", na_value=np.nan)
    for window in state.faults:
        if window.heal_ns is None:
            continue
        members = [u for u, c in state.cohort_of.items() if c == window.cohort] if window.cohort else []
        member_codes = categories.get_indexer(pd.Index(members, dtype=object))
        in_cohort = np.isin(recipient_codes, member_codes) if members else np.ones(len(messages), dtype=bool)
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
