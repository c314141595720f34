"""Forensic timelines (pure): everything the ledger knows about a message, in time order, and what it means.

For a message: its send (invoke and completion), the recipient's connects and disconnects, the faults
that hit the recipient's cohort, and every copy received (with connection epoch and server offset); the
timeline ends with the checker's conclusion in one plain sentence.

A room message's copy (``msg@member``, checker.rooms) gets the room send, that member's receipts of it, every
join / leave row of that member for that room (however long before), its connection rows around the send
(and the last one before them: the connection it had) and its cohort's faults; its conclusion says whether the
member had to receive it and why (when it joined and left, since when it was connected).

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
from harness.checker.rooms import INF, Span

__all__ = ["timelines_for", "timeline_for", "conclusion", "example_facts", "per_cohort"]


_MEMBERSHIP = {"invoke": "asked to {f} {room}", "ok": "{done} {room} (server acked)",
               "fail": "{f} of {room} refused by the server", "info": "{f} of {room}: outcome unknown"}


def _describe(row: Any) -> str:
    f, kind = row.f, row.type
    data = row.data if isinstance(row.data, dict) else {}
    room = getattr(row, "room", None)
    room = room if isinstance(room, str) else None
    if f == "send":
        text = {"invoke": "send invoked", "ok": "server acked", "fail": "server refused",
                "info": "send outcome unknown"}.get(kind, f"send {kind}")
        if room is not None and kind == "invoke":
            text = f"send to room {room} invoked"
        return text + (f" ({row.error})" if isinstance(row.error, str) else "")
    if f in ("join", "leave") and room is not None:
        done = "joined" if f == "join" else "left"
        return f"{row.process} " + _MEMBERSHIP.get(kind, "{f} {room} " + str(kind)).format(f=f, done=done, room=room)
    if f == "recv":
        extra = [f"conn {row.conn}"] if not pd.isna(row.conn) else []
        if isinstance(row.offset, str):
            extra.append(f"offset {row.offset}")
        if data.get("resent"):
            extra.append("resent by server")
        where = f" in {room}" if room is not None else ""
        return (f"received by {row.recipient}{where} ({', '.join(extra)})" if extra
                else f"received by {row.recipient}{where}")
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


def _s(ns: float) -> str:
    return f"{abs(ns) / 1e9:.1f} s"


def _membership(spans: list[Span], sent_ns: int, judged_ns: int) -> str:
    """How the member's membership stood at the send: the span that made it a member, in words."""
    span = next((x for x in spans if x.strict_from <= judged_ns < x.strict_to), None)
    if span is None:
        return "not a member when it was sent"
    joined = (f"joined {_s(sent_ns - span.strict_from)} before the send" if span.strict_from <= sent_ns
              else f"joined {_s(span.strict_from - sent_ns)} after the send was invoked, before its ack")
    left = "never left" if span.strict_to == INF else f"sent its leave {_s(span.strict_to - judged_ns)} after the ack"
    return f"{joined}, {left}"


def _not_member(spans: list[Span], judged_ns: int | None, room: str) -> str:
    """Why a member was not expected to receive a copy: no join, a later join, or an earlier leave."""
    if not spans:
        return f"never asked to join {room}"
    if judged_ns is None or judged_ns >= INF:
        return f"the message was never sent to {room}"
    later = [x.strict_from for x in spans if judged_ns < x.strict_from < INF]
    earlier = [x.strict_to for x in spans if x.strict_to <= judged_ns]
    if earlier and (not later or judged_ns - max(earlier) <= min(later) - judged_ns):
        return f"had sent its leave of {room} {_s(judged_ns - max(earlier))} before the send was acknowledged"
    if later:
        return f"its join of {room} was acknowledged {_s(min(later) - judged_ns)} after the send"
    return f"its join of {room} was never acknowledged"


def _connected(analysis: Analysis, member: str) -> str:
    """Since when the member was connected at the end of the drain (its last connect before it)."""
    state = analysis.state
    connects = state.connects
    end = state.drain_end_ns
    mine = connects[(connects["process"].astype(object) == member).to_numpy(dtype=bool)] if len(connects) else connects
    if end is not None and len(mine):
        mine = mine[(mine["t_ns"] <= end).to_numpy(dtype=bool)]
    if not len(mine):
        return "its connections are not in the ledger"
    since = int(mine["t_ns"].max()) - (state.start_ns or 0)
    when = "before sending started" if since < 0 else f"{since / 1e9:.1f} s"
    until = "" if end is None else f" of the drain ({_s(end - (state.start_ns or 0))})"
    return f"connected from {when} to the end{until}"


def _faults(analysis: Analysis, member: str, low_ns: int) -> str:
    """The faults on the member's cohort still active at or after ``low_ns``, as a parenthesis ('' when none)."""
    cohort = analysis.state.cohort_of.get(member)
    origin = analysis.state.start_ns or 0
    hits = [w for w in analysis.state.faults if cohort is not None and w.cohort == cohort
            and (w.heal_ns is None or w.heal_ns >= low_ns)]

    def phrase(w: Any) -> str:
        heal = "never healed" if w.heal_ns is None else f"to {(w.heal_ns - origin) / 1e9:.1f} s"
        return f"fault {w.fault} hit its cohort {cohort} from {(w.inject_ns - origin) / 1e9:.1f} s {heal}"
    return f" ({'; '.join(phrase(w) for w in hits)})" if hits else ""


def _room_conclusion(category: str, msg_id: str, analysis: Analysis, row: Any) -> str | None:
    """The conclusion for a room copy (``msg@member``): the membership rule applied to this member."""
    rooms = analysis.rooms
    if msg_id in rooms.strays and category == "unexpected":
        _, room, member, judged = rooms.strays[msg_id]
        if msg_id.endswith(f" (in {room})"):
            return f"received by {member} in {room}, where this message was never sent → unexpected"
        why = _not_member(rooms.spans.get((member, room), []), judged, room)
        return f"received by {member} in {room}, but {member} was not a member then ({why}) → unexpected"
    if msg_id not in rooms.origin or row is None or "room" not in row.index:
        return None
    member, room = str(row["recipient"]), str(row["room"])
    sent = int(row["invoke_ns"])
    judged = int(row["ack_ns"]) if not pd.isna(row["ack_ns"]) else sent
    membership = _membership(rooms.spans.get((member, room), []), sent, judged)
    if category == "lost":
        return (f"lost: {member} was a member of {room} ({membership}) and {_connected(analysis, member)}, "
                f"and never received it{_faults(analysis, member, sent)} → lost")
    if category == "unseen":
        why = (f"{member} was not connected when the drain ended, so it could not have read it"
               if not analysis.state.connected_at_end.get(member, True)
               else "; ".join(analysis.unseen_reasons) or "the run could not have read it")
        return f"{member} was a member of {room} ({membership}) and never received it, but {why} → unseen (not " \
               "judged as lost)"
    return None


def conclusion(category: str, msg_id: str, analysis: Analysis, facts: pd.DataFrame | None = None) -> str:
    """The checker's conclusion about one message of ``category``, in one plain sentence ending in → category.
    ``facts``: the message-table rows of the examples (``example_facts``), looked up once for all of them."""
    origin = analysis.state.start_ns or 0
    msgs = facts if facts is not None else example_facts(analysis, [msg_id])
    row = msgs.loc[msg_id] if msg_id in msgs.index else None
    room_words = _room_conclusion(category, msg_id, analysis, row)
    if room_words is not None:
        return room_words
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


def _room_copies(analysis: Analysis, facts: pd.DataFrame, wanted: list[str]) -> dict[str, tuple[str, str, str]]:
    """Example id → (room message id, room, member) for the examples that are room copies."""
    rooms = analysis.rooms
    if not rooms.sends and not rooms.strays:
        return {}
    copies: dict[str, tuple[str, str, str]] = {}
    if "room" in facts.columns:
        for msg_id, member, room in zip(facts.index, facts["recipient"], facts["room"], strict=True):
            if str(msg_id) in rooms.origin:
                copies[str(msg_id)] = (rooms.origin[str(msg_id)], str(room), str(member))
    for msg_id in wanted:
        if msg_id in rooms.strays:
            raw, room, member, _ = rooms.strays[msg_id]
            copies[msg_id] = (raw, room, member)
    return copies


def _rows_with(column: pd.Series, values: set[str]) -> np.ndarray[Any, Any]:
    """Rows whose value is one of ``values``. A categorical column (as a Parquet ledger is read) is matched on
    its categories, then by code: ``Categorical.isin`` hashes all 3 M message ids again (4 s at 10 M events)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        hit = np.append(column.cat.categories.isin(list(values)), False)  # the last slot: code -1 (null)
        mask: np.ndarray[Any, Any] = hit[column.cat.codes.to_numpy()]
        return mask
    matched: np.ndarray[Any, Any] = column.isin(values).to_numpy(dtype=bool, na_value=False)
    return matched


def timelines_for(frame: pd.DataFrame, analysis: Analysis, msg_ids: Iterable[str],
                  margin_s: float = 2.0) -> dict[str, list[dict[str, Any]]]:
    """Time-ordered events around each message (times in ms since sending started), one pass over ``frame``."""
    wanted = list(dict.fromkeys(msg_ids))
    if not wanted or frame.empty:
        return {m: [] for m in wanted}
    origin = analysis.state.start_ns or int(frame["t_ns"].min())
    facts = example_facts(analysis, wanted)
    recipients = {str(m): str(r) for m, r in zip(facts.index, facts["recipient"], strict=True)}
    copies = _room_copies(analysis, facts, wanted)
    recipients.update({m: member for m, (_, _, member) in copies.items()})
    raw_of = {m: copies[m][0] if m in copies else m for m in wanted}  # the id the ledger's rows carry
    f = frame["f"]
    own_mask = _rows_with(frame["msg_id"], set(raw_of.values()))
    people = _rows_with(frame["process"], set(recipients.values()))
    conn_mask = f.isin(["connect", "disconnect"]).to_numpy(dtype=bool, na_value=False) & people
    member_mask = (f.isin(["join", "leave"]).to_numpy(dtype=bool, na_value=False) & people
                   if copies else np.zeros(len(frame), dtype=bool))
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
    memberships = list(frame[member_mask].itertuples(index=False))
    drain_end = analysis.state.drain_end_ns
    margin = int(margin_s * 1e9)
    out: dict[str, list[dict[str, Any]]] = {}
    for msg_id in wanted:
        rows = own.get(raw_of[msg_id], [])
        recipient = recipients.get(msg_id)
        copy = copies.get(msg_id)
        if copy is not None:  # the room send, and only this member's receipts of it
            rows = [r for r in rows if r.f != "recv" or r.recipient == recipient]
        if not rows:
            out[msg_id] = []
            continue
        low = min(int(r.t_ns) for r in rows) - margin
        high = max(int(r.t_ns) for r in rows) + margin
        if drain_end is not None and not any(r.f == "recv" for r in rows):
            high = max(high, drain_end)
        cohort = analysis.state.cohort_of.get(recipient or "")
        near = [r for r, fault_cohort in context if low <= int(r.t_ns) <= high
                and ((r.f != "fault" and r.process == recipient)
                     or (r.f == "fault" and cohort is not None and fault_cohort == cohort))]
        if copy is not None:
            before = [r for r, _ in context if r.f != "fault" and r.process == recipient and int(r.t_ns) < low]
            if before:  # the connection the member had when the window opens
                near.append(max(before, key=_when))
            near += [r for r in memberships if r.process == recipient and r.room == copy[1]]
        merged = sorted(rows + near, key=_when)
        out[msg_id] = [{"t_ms": _ms(r.t_ns, origin), "event": _describe(r)} for r in merged]
    return out


def _when(row: Any) -> tuple[int, int]:
    """A row's place in a timeline: time, then index (a row without an index, on a damaged record, goes first of
    its instant)."""
    return int(row.t_ns), -1 if pd.isna(row.index) else int(row.index)


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
