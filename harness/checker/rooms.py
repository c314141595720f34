"""Rooms and broadcast (pure): who had to receive a message sent to a room, and who merely may have.

Membership comes from the ledger's ``join`` / ``leave`` rows (``invoke`` when the client asked, then the
server's answer ``ok`` / ``fail`` / ``info``), per user and room:

- **expected**: a message acknowledged (``ok``) at ``t_ack`` must reach every member other than its sender
  whose join was *acknowledged* before ``t_ack`` and whose next leave was not yet *sent* at ``t_ack``;
- **allowed**: a copy may also reach anyone whose membership was possible at some point while the send
  was in flight (from the join being sent until the leave was answered, overlapping the send's invoke …
  completion), and the sender itself (an echo): such copies are neither expected nor unexpected;
- **unexpected**: any other copy — a user who was never a member then, a copy received in another room.

The rest of the checker judges point-to-point messages, so a room send is *expanded* into one message per
expected member (``msg_id@member``) and each copy into that member's receipt: lost, duplicated, unseen
(no fair chance), ordering (per sender → room → member, the room's own seq) and every health rule then
apply per member unchanged. ``RoomFacts`` keeps what only rooms have: sends, fan-out, and the *stable
latency* of each message (send → its last expected member's first receipt; Jepsen's set-full term).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RoomFacts", "expand_rooms", "stable_latencies"]

_INF = np.iinfo(np.int64).max


@dataclass(frozen=True)
class RoomFacts:
    """What the expansion found (empty when the ledger has no rooms)."""

    sends: int = 0
    """Room sends attempted."""
    expected_receipts: int = 0
    """(message, member) pairs that had to arrive: acknowledged sends × members at their ack."""
    allowed_copies: int = 0
    """Copies received by a possible-but-not-certain member or by the sender itself (not judged)."""
    per_room: dict[str, dict[str, int]] = field(default_factory=dict)
    """Room → sends, members (ever joined), expected receipts."""
    origin: dict[str, str] = field(default_factory=dict)
    """Expanded message id → the room message it came from."""

    @property
    def fanout(self) -> float | None:
        """Expected receipts per acknowledged room send."""
        acked = sum(r["acked"] for r in self.per_room.values())
        return None if not acked else round(self.expected_receipts / acked, 3)

    def to_dict(self) -> dict[str, Any]:
        return {"sends": self.sends, "expected_receipts": self.expected_receipts, "fanout": self.fanout,
                "allowed_copies": self.allowed_copies, "per_room": {k: dict(v) for k, v in self.per_room.items()}}


@dataclass
class _Span:
    strict_from: int  # join acknowledged (INF: never)
    strict_to: int  # leave sent (INF: still a member)
    loose_from: int  # join sent
    loose_to: int  # leave answered (INF: never)


def _memberships(frame: pd.DataFrame) -> dict[tuple[str, str], list[_Span]]:
    rows = frame.loc[frame["f"].isin(["join", "leave"]).to_numpy(dtype=bool, na_value=False),
                     ["t_ns", "index", "process", "type", "f", "room"]].sort_values(["t_ns", "index"], kind="stable")
    spans: dict[tuple[str, str], list[_Span]] = {}
    for t_ns, _, user, kind, f, room in rows.itertuples(index=False):
        key = (str(user), str(room))
        t = int(t_ns)
        mine = spans.setdefault(key, [])
        current = mine[-1] if mine and mine[-1].loose_to == _INF else None
        if f == "join":
            if kind == "invoke" and current is None:
                mine.append(_Span(_INF, _INF, t, _INF))
            elif kind == "ok" and current is not None and current.strict_from == _INF:
                current.strict_from = t
            elif kind == "fail" and current is not None and current.strict_from == _INF:
                current.loose_to = t  # refused: it was possible only until the refusal
        elif current is not None:  # leave
            if kind == "invoke":
                current.strict_to = min(current.strict_to, t)
            elif kind in ("ok", "info"):
                current.loose_to = t
            elif kind == "fail":
                current.strict_to = _INF  # the server refused the leave: still a member
    return spans


def expand_rooms(frame: pd.DataFrame) -> tuple[pd.DataFrame, RoomFacts]:
    """The ledger with each room send expanded per expected member and each copy judged (see module doc)."""
    if "room" not in frame.columns:
        return frame, RoomFacts()
    room = frame["room"]
    f = frame["f"]
    sends = ((f == "send") & room.notna()).to_numpy(dtype=bool, na_value=False)
    copies = ((f == "recv") & room.notna()).to_numpy(dtype=bool, na_value=False)
    if not sends.any() and not copies.any():
        return frame, RoomFacts()
    spans = _memberships(frame)
    send_rows = frame[sends]
    kinds = send_rows["type"].astype(object).to_numpy()
    t = send_rows["t_ns"].to_numpy(dtype=np.int64)
    ids = send_rows["msg_id"].astype(object).to_numpy()
    info: dict[str, dict[str, Any]] = {}
    for msg_id, kind, t_ns, sender, where in zip(ids, kinds, t, send_rows["sender"].astype(object),
                                                 send_rows["room"].astype(object), strict=True):
        entry = info.setdefault(str(msg_id), {"sender": str(sender), "room": str(where), "invoke": _INF,
                                              "ack": None, "done": _INF})
        if kind == "invoke":
            entry["invoke"] = min(entry["invoke"], int(t_ns))
        elif kind == "ok":
            entry["ack"] = int(t_ns) if entry["ack"] is None else min(entry["ack"], int(t_ns))
            entry["done"] = min(entry["done"], int(t_ns))
        else:
            entry["done"] = min(entry["done"], int(t_ns))
    members_of: dict[str, list[tuple[str, list[_Span]]]] = {}
    for (user, where), user_spans in spans.items():
        members_of.setdefault(where, []).append((user, user_spans))
    per_room: dict[str, dict[str, int]] = {}
    expected: dict[str, list[str]] = {}
    for msg_id, entry in info.items():
        stats = per_room.setdefault(entry["room"], {"sends": 0, "acked": 0, "members": len(members_of.get(
            entry["room"], [])), "expected_receipts": 0})
        stats["sends"] += 1
        at = entry["ack"] if entry["ack"] is not None else entry["done"] if entry["done"] != _INF else entry["invoke"]
        who = [user for user, user_spans in members_of.get(entry["room"], [])
               if user != entry["sender"] and any(s.strict_from <= at < s.strict_to for s in user_spans)]
        expected[msg_id] = who
        if entry["ack"] is not None:
            stats["acked"] += 1
            stats["expected_receipts"] += len(who)

    # sends: one copy of each row per expected member
    pieces = [frame[~sends & ~copies]]
    origin: dict[str, str] = {}
    if len(send_rows):
        counts = np.array([len(expected[str(m)]) for m in ids], dtype=np.int64)
        repeated = send_rows.loc[send_rows.index.repeat(counts)].copy()
        members = [u for m in ids for u in expected[str(m)]]
        repeated["recipient"] = pd.array(members, dtype="string")
        repeated["msg_id"] = pd.array([f"{m}@{u}" for m, u in zip(repeated["msg_id"], members, strict=True)],
                                      dtype="string")
        origin = {f"{m}@{u}": m for m in info for u in expected[m]}
        pieces.append(repeated)
    # copies: each receipt judged against the membership of its receiver
    copy_rows = frame[copies].copy()
    keep = np.ones(len(copy_rows), dtype=bool)
    new_ids: list[str] = []
    allowed_copies = 0
    for i, (msg_id, receiver, where) in enumerate(zip(copy_rows["msg_id"].astype(object),
                                                       copy_rows["recipient"].astype(object),
                                                       copy_rows["room"].astype(object), strict=True)):
        sent = info.get(str(msg_id))
        user = str(receiver)
        if sent is not None and sent["room"] == str(where):
            if user in expected[str(msg_id)]:
                new_ids.append(f"{msg_id}@{user}")
                continue
            possible = user == sent["sender"] or any(
                s.loose_from <= sent["done"] and sent["invoke"] <= s.loose_to
                for s in spans.get((user, sent["room"]), []))
            if possible:
                keep[i] = False
                allowed_copies += 1
                new_ids.append("")
                continue
            new_ids.append(f"{msg_id}@{user}")  # never a member while it was sent: no such send exists
        else:
            new_ids.append(f"{msg_id}@{user} (in {where})")  # not sent, or not sent to this room
    copy_rows["msg_id"] = pd.array(new_ids, dtype="string")
    pieces.append(copy_rows[keep])
    expanded = pd.concat(pieces).sort_index(kind="stable").reset_index(drop=True)
    facts = RoomFacts(sends=len(info), expected_receipts=sum(r["expected_receipts"] for r in per_room.values()),
                      allowed_copies=allowed_copies, per_room=per_room, origin=origin)
    return expanded, facts


def stable_latencies(messages: pd.DataFrame, facts: RoomFacts) -> np.ndarray[Any, Any]:
    """Per acknowledged room message whose every expected member got it: ns from send to the last member's
    first receipt (how long until the whole room had it)."""
    if not facts.origin:
        return np.array([], dtype=np.float64)
    table = messages.loc[messages.index.isin(list(facts.origin)), ["invoke_ns", "first_recv_ns", "outcome"]]
    table = table[(table["outcome"] == "ok").to_numpy(dtype=bool)]
    if table.empty:
        return np.array([], dtype=np.float64)
    grouped = pd.DataFrame({"origin": [facts.origin[str(i)] for i in table.index],
                            "invoke": table["invoke_ns"].to_numpy(dtype="float64"),
                            "recv": table["first_recv_ns"].to_numpy(dtype="float64", na_value=np.nan)})
    whole = grouped.groupby("origin", sort=True).agg(invoke=("invoke", "min"), last=("recv", "max"),
                                                     missing=("recv", lambda s: bool(s.isna().any())))
    whole = whole[~whole["missing"].astype(bool)]
    latency: np.ndarray[Any, Any] = (whole["last"] - whole["invoke"]).to_numpy(dtype=np.float64)
    return latency
