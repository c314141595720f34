"""Forensic timelines (pure): everything the ledger knows about a message, in time order, and what it means.

For a message: its send (invoke and completion), the recipient's connects and disconnects, the faults
that hit the recipient's cohort, and every copy received (with connection epoch and server offset); the
timeline ends with the checker's conclusion in one plain sentence.

``timelines_for`` builds every example's timeline from one pass over the ledger: the example messages' own
rows are selected together (one ``isin``), and so are the context rows (connection rows of their recipients,
fault rows), which are few; each timeline then only filters those. Mapping a function over the whole ledger
per example made the report's cost grow with examples × ledger (20.6 s of 23.6 s at 1 M events).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from harness.checker import Analysis

__all__ = ["timelines_for", "timeline_for", "conclusion", "example_facts", "per_cohort"]


def _describe(row: Any) -> str:
    f, kind = row.f, row.type
    data = row.data if isinstance(row.data, dict) else {}
    if f == "send":
        text = {"invoke": "send invoked", "ok": "server acked", "fail": "server refused",
                "info": "send outcome unknown"}.get(kind, f"send {kind}")
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


def _ms(t_ns: int, origin: int) -> float:
    return round((int(t_ns) - origin) / 1e6, 1)


def example_facts(analysis: Analysis, msg_ids: Iterable[str]) -> pd.DataFrame:
    """The message-table rows of a few messages, found with one ``isin`` (a label lookup or ``in`` on the
    string index of millions of messages costs tens of ms each)."""
    msgs = analysis.messages
    return msgs[msgs.index.isin(list(msg_ids))]


def conclusion(category: str, msg_id: str, analysis: Analysis, facts: pd.DataFrame | None = None) -> str:
    """The checker's conclusion about one message of ``category``, in one plain sentence ending in → category.
    ``facts``: the message-table rows of the examples (``example_facts``), looked up once for all of them."""
    origin = analysis.state.start_ns or 0
    msgs = facts if facts is not None else example_facts(analysis, [msg_id])
    row = msgs.loc[msg_id] if msg_id in msgs.index else None
    recipient = str(row["recipient"]) if row is not None else "its recipient"
    end = analysis.state.drain_end_ns
    by_end = (f"by the end of the drain ({_ms(end, origin):,.0f} ms)" if end is not None
              else "by the end of the record")
    if category == "lost":
        return (f"acknowledged by the server, not received {by_end} although {recipient} was connected then "
                "→ lost")
    if category == "unseen":
        if not analysis.state.connected_at_end.get(recipient, True):
            why = f"{recipient} was not connected when the drain ended, so it could not have read it"
        else:
            why = "; ".join(analysis.unseen_reasons) or "the run could not have read it"
        return f"acknowledged, not received {by_end}, but {why} → unseen (not judged as lost)"
    if category == "duplicated" and row is not None:
        return (f"sent {int(row['attempts'])} time(s), received {int(row['receipts'])} times by {recipient} "
                "→ duplicated")
    if category == "reordered":
        return "first received after a later message of the same stream had arrived → reordered"
    if category == "gap":
        return "never received although a later message of the same stream was → gap (a hole in the stream)"
    if category == "unexpected":
        return "received, but never sent to this recipient → unexpected"
    if category == "delivered_after_fail":
        return "the server refused the send, yet the message was received → delivered after fail"
    if category == "duplicate_offsets":
        return "received at two or more different server offsets → stored twice (duplicate offsets)"
    return f"→ {category}"


def timelines_for(frame: pd.DataFrame, analysis: Analysis, msg_ids: Iterable[str],
                  margin_s: float = 2.0) -> dict[str, list[dict[str, Any]]]:
    """Time-ordered events around each message (times in ms since sending started), one pass over ``frame``."""
    wanted = list(dict.fromkeys(msg_ids))
    if not wanted or frame.empty:
        return {m: [] for m in wanted}
    origin = analysis.state.start_ns or int(frame["t_ns"].min())
    facts = example_facts(analysis, wanted)
    recipients = {str(m): str(r) for m, r in zip(facts.index, facts["recipient"], strict=True)}
    f = frame["f"]
    own_mask = frame["msg_id"].isin(wanted).to_numpy(dtype=bool, na_value=False)
    conn_mask = (f.isin(["connect", "disconnect"]).to_numpy(dtype=bool, na_value=False)
                 & frame["process"].isin(set(recipients.values())).to_numpy(dtype=bool, na_value=False))
    fault_mask = (f == "fault").to_numpy(dtype=bool, na_value=False)
    # The few selected rows become plain tuples once: per-example pandas calls on the ledger's Arrow-backed
    # columns cost milliseconds each, most of the timelines' time at 10 M events.
    own: dict[str, list[Any]] = {}
    for row in frame[own_mask].itertuples(index=False):
        own.setdefault(str(row.msg_id), []).append(row)
    context: list[tuple[Any, Any]] = []  # (row, the fault's cohort)
    for row in frame[(conn_mask | fault_mask) & ~own_mask].itertuples(index=False):
        data = row.data if isinstance(row.data, dict) else {}
        context.append((row, data.get("cohort") if row.f == "fault" else None))
    drain_end = analysis.state.drain_end_ns
    margin = int(margin_s * 1e9)
    out: dict[str, list[dict[str, Any]]] = {}
    for msg_id in wanted:
        rows = own.get(msg_id, [])
        if not rows:
            out[msg_id] = []
            continue
        recipient = recipients.get(msg_id)
        low = min(int(r.t_ns) for r in rows) - margin
        high = max(int(r.t_ns) for r in rows) + margin
        if drain_end is not None and not any(r.f == "recv" for r in rows):
            high = max(high, drain_end)
        cohort = analysis.state.cohort_of.get(recipient or "")
        near = [r for r, fault_cohort in context if low <= int(r.t_ns) <= high
                and ((r.f != "fault" and r.process == recipient)
                     or (r.f == "fault" and cohort is not None and fault_cohort == cohort))]
        merged = sorted(rows + near, key=lambda r: (int(r.t_ns), int(r.index)))
        out[msg_id] = [{"t_ms": _ms(r.t_ns, origin), "event": _describe(r)} for r in merged]
    return out


def timeline_for(frame: pd.DataFrame, analysis: Analysis, msg_id: str, margin_s: float = 2.0) -> list[dict[str, Any]]:
    """One message's timeline (see ``timelines_for``, which builds many at the cost of one)."""
    return timelines_for(frame, analysis, [msg_id], margin_s)[msg_id]


def per_cohort(analysis: Analysis) -> pd.DataFrame:
    """Lost, unseen and duplicated messages per recipient cohort (vectorised: a label lookup per lost id, or a
    Python set over every message, cost seconds at 10 M events)."""
    cohort_of = analysis.state.cohort_of
    msgs = analysis.messages
    recipient = msgs["recipient"].astype("category")
    names = np.array([cohort_of.get(str(r), "(no cohort)") for r in recipient.cat.categories] + ["(no cohort)"],
                     dtype=object)
    codes = recipient.cat.codes.to_numpy(dtype=np.int64)
    codes = np.where(codes < 0, len(names) - 1, codes)  # a missing recipient has no cohort
    cohorts = names[codes]
    present = sorted(set(names[np.unique(codes)].tolist()))
    table = pd.DataFrame(index=present or ["(none)"], columns=["lost", "unseen", "duplicated"], data=0)
    for name in ("lost", "unseen"):
        ids = analysis.ids.get(name, [])
        if ids:
            chosen = msgs.index.isin(ids)
            for cohort, n in pd.Series(cohorts[chosen]).value_counts().items():
                table.loc[cohort, name] = int(n)
    extra = (msgs["receipts"] - msgs["attempts"]).clip(lower=0).to_numpy(dtype=np.int64)
    if extra.any():
        for cohort, value in pd.Series(extra).groupby(cohorts).sum().items():
            table.loc[cohort, "duplicated"] = int(value)
    return table.astype(int)
