"""Forensic timelines (pure): everything the ledger knows about one message, in time order.

For a message: its send (invoke and completion), the recipient's connects and disconnects, the faults
that hit the recipient's cohort, and every copy received (with connection epoch and server offset).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.checker import Analysis

__all__ = ["timeline_for", "per_cohort"]


def _describe(row: Any) -> str:
    f, kind = row.f, row.type
    data = row.data if isinstance(row.data, dict) else {}
    if f == "send":
        text = {"invoke": "send invoked", "ok": "server acked", "fail": "server refused",
                "info": "send outcome unknown"}[kind]
        return text + (f" ({row.error})" if isinstance(row.error, str) else "")
    if f == "recv":
        extra = [f"conn {row.conn}"] if not pd.isna(row.conn) else []
        if isinstance(row.offset, str):
            extra.append(f"offset {row.offset}")
        if data.get("resent"):
            extra.append("resent by server")
        return f"received by {row.recipient} ({', '.join(extra)})" if extra else f"received by {row.recipient}"
    if f == "connect":
        return f"{row.process} connected (conn {row.conn})"
    if f == "disconnect":
        return f"{row.process} disconnected ({row.error})"
    if f == "fault":
        return f"fault {data.get('fault')} {data.get('action')} ({data.get('type')} on {data.get('cohort')})"
    return f"{f} {kind}"


def timeline_for(frame: pd.DataFrame, analysis: Analysis, msg_id: str, margin_s: float = 2.0) -> list[dict[str, Any]]:
    """Time-ordered events around one message; times in ms since sending started."""
    origin = analysis.state.start_ns or int(frame["t_ns"].min())
    own = frame[frame["msg_id"] == msg_id]
    if own.empty:
        return []
    recipient = str(analysis.messages.loc[msg_id, "recipient"]) if msg_id in analysis.messages.index else None
    low = int(own["t_ns"].min()) - int(margin_s * 1e9)
    high = int(own["t_ns"].max()) + int(margin_s * 1e9)
    if analysis.state.drain_end_ns is not None and own[own["f"] == "recv"].empty:
        high = max(high, analysis.state.drain_end_ns)
    window = frame[(frame["t_ns"] >= low) & (frame["t_ns"] <= high)]
    cohort = analysis.state.cohort_of.get(recipient or "")
    context = window[
        (window["f"].isin(["connect", "disconnect"]) & (window["process"] == recipient))
        | ((window["f"] == "fault") & window["data"].map(lambda d: isinstance(d, dict) and d.get("cohort") == cohort))
    ]
    rows = pd.concat([own, context]).sort_values(["t_ns", "index"], kind="stable")
    return [{"t_ms": round((int(r.t_ns) - origin) / 1e6, 1), "event": _describe(r)} for r in rows.itertuples()]


def per_cohort(analysis: Analysis) -> pd.DataFrame:
    """Lost, unseen and duplicated messages per recipient cohort."""
    cohort_of = analysis.state.cohort_of
    msgs = analysis.messages
    cohorts = msgs["recipient"].map(lambda r: cohort_of.get(str(r), "(no cohort)"))
    table = pd.DataFrame(index=sorted(set(cohorts)) or ["(none)"], columns=["lost", "unseen", "duplicated"], data=0)
    for name in ("lost", "unseen"):
        for msg_id in analysis.ids[name]:
            table.loc[cohorts[msg_id], name] += 1
    extra = (msgs["receipts"] - msgs["attempts"]).clip(lower=0)
    for cohort, value in extra.groupby(cohorts).sum().items():
        table.loc[cohort, "duplicated"] = int(value)
    return table.astype(int)
