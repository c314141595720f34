"""Rooms and broadcast (pure): who had to receive a message sent to a room, and who merely may have.

Membership comes from the ledger's ``join`` / ``leave`` rows (``invoke`` when the client asked, then the
server's answer ``ok`` / ``fail`` / ``info``), per user and room:

- **expected**: a message acknowledged (``ok``) must reach every member other than its sender whose join was
  *acknowledged* before the send was *invoked* and whose next leave was *sent* only after the send's ack
  arrived (the membership held for the whole send, in real time). A join or leave whose request overlapped the
  send may have reached the server on either side of it: its copy is allowed, not expected. (Judging the join by
  the send's *ack* instead made a false loss on naive per-socket rooms: a join answered quickly while the
  sender's ack of an earlier-processed send was still on its way.)
- **allowed**: a copy may also reach anyone whose membership was possible at some point while the send
  was in flight (from the join being sent until the leave was acknowledged, overlapping the send's invoke …
  completion), and the sender itself (an echo): such copies are neither expected nor unexpected;
- **unexpected**: any other copy — a user who was never a member then, a copy received in another room.

A leave never answered (``info``: its outcome is unknown) ends certain membership at its request but leaves
the user possibly a member until a later leave is acknowledged (its copies are allowed, never unexpected); a
join acknowledged after it makes the user certain again. A join and a leave of the same room in flight together
(the reference drivers send one at a time per room; a user's own may not) may have been applied in either
order: the user stays possibly a member until a later acknowledged leave settles it. A receipt of a room send
that does not say its room is given the one room that message was sent to (counted in ``rooms_inferred``). A
member's join asked again after a reconnect and *refused* ends certain membership at that request (the server
says it is not a member; since when is unknown): its copies are allowed from then on (``rejoins_refused``).

The rest of the checker judges point-to-point messages, so a room send is *expanded* into one message per
expected member (``msg_id@member``) and each copy into that member's receipt: lost, duplicated, unseen
(no fair chance), ordering (per sender → room → member, the room's own seq) and every health rule then
apply per member unchanged. ``RoomFacts`` keeps what only rooms have: sends, fan-out, and the *stable
latency* of each message (send → its last expected member's first receipt; Jepsen's set-full term).

Once the copies are judged, ``judge_rooms`` adds the outcome per room and per (room, member) — expected,
delivered (of the expected), lost, unseen, duplicated, unexpected; expected = delivered + lost + unseen — and
two latencies of each *lost room message* (one with at least one lost copy), both from its known time, the
ack (set-full's *known time*: the add's completion):

- ``lost_latency_ms`` is set-full's own *lost latency*, known time → lost time, where the lost time is when
  the message was last observed (a read is a member's receipt; here the last first receipt by any member);
  0 when no member ever received it (set-full: "known to be inserted, but never observed");
- ``known_missing_ms`` is known time → the end of the drain: how long it was known and still missing when it
  was judged. Our ledger has no reads that observe an absence; the drain's end is the one such read (every
  lost copy's member was connected then, with a fair chance), so this is the longest it can be shown missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from harness.checker.latency import quantiles_ms

__all__ = ["RoomFacts", "Span", "expand_rooms", "judge_rooms", "stable_latencies", "MEMBER_CAP", "MEMBER_COUNTS"]

MEMBER_CAP = 20
"""Members verdict.json names in ``details.rooms.per_member.worst`` (worst first, only those with an anomaly);
every member still counts in ``per_member.totals``; report.html names up to 100. A room of 5,000 stays small."""

MEMBER_COUNTS = ("expected", "delivered", "lost", "unseen", "duplicated", "unexpected")
"""Counts per (room, member) and per room: expected = delivered + lost + unseen (acknowledged copies only)."""

_INF = np.iinfo(np.int64).max


@dataclass
class Span:
    """One membership of a user in a room, in ns (``INF``: never / still)."""

    strict_from: int
    """Join acknowledged (INF: never)."""
    strict_to: int
    """Leave sent (INF: still a member)."""
    loose_from: int
    """Join sent."""
    loose_to: int
    """Leave answered, or the join refused (INF: never)."""


INF = _INF


def _no_members() -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(dtype=np.int64) for k in MEMBER_COUNTS},
                        index=pd.MultiIndex.from_tuples([], names=["room", "member"]))


@dataclass(frozen=True)
class RoomFacts:
    """What the expansion found (empty when the ledger has no rooms), and after ``judge_rooms`` the outcome per
    room, per member and per room message."""

    sends: int = 0
    """Room sends attempted."""
    expected_receipts: int = 0
    """(message, member) pairs that had to arrive: acknowledged sends × members at their ack."""
    allowed_copies: int = 0
    """Copies received by a possible-but-not-certain member or by the sender itself (not judged)."""
    joins_asked: int = 0
    """Joins that would start a membership (not a rejoin of a member, nor one racing a leave)."""
    joins_acknowledged: int = 0
    """Of those, the ones the server acknowledged: only their members' copies can be required."""
    rejoins_refused: int = 0
    """A member's join asked again (after a reconnect) and refused: its copies from then on are allowed only."""
    rooms_inferred: int = 0
    """Receipts of room sends that carried no room, given the room their message was sent to."""
    per_room: dict[str, dict[str, int]] = field(default_factory=dict)
    """Room → sends, members (ever joined), expected receipts."""
    origin: dict[str, str] = field(default_factory=dict)
    """Expanded message id → the room message it came from."""
    spans: dict[tuple[str, str], list[Span]] = field(default_factory=dict, compare=False)
    """(user, room) → its memberships, from the join / leave rows (forensics explain a loss with them)."""
    strays: dict[str, tuple[str, str, str, int | None]] = field(default_factory=dict, compare=False)
    """Judged id of a copy nobody expected → (room message, room it came in, receiver, when the send was acked,
    else invoked; None when it was never sent)."""
    members: pd.DataFrame = field(default_factory=_no_members, compare=False)
    """Per (room, member): ``MEMBER_COUNTS`` (filled by ``judge_rooms``)."""
    by_message: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)
    """Per acknowledged room message with an expected member (``judge_rooms``): room, known_ns (ack),
    stable_ns (NaN unless every expected member got it), lost (copies), last_seen_ns (last first receipt)."""
    drain_end_ns: int | None = None

    @property
    def fanout(self) -> float | None:
        """Expected receipts per acknowledged room send."""
        acked = sum(r["acked"] for r in self.per_room.values())
        return None if not acked else round(self.expected_receipts / acked, 3)

    def stable_ms(self, room: str | None = None) -> np.ndarray[Any, Any]:
        """Stable latencies (ms) of the room's messages, or of every room's."""
        table = self.by_message
        if table.empty:
            return np.array([], dtype=np.float64)
        if room is not None:
            table = table[(table["room"] == room).to_numpy(dtype=bool)]
        values: np.ndarray[Any, Any] = table["stable_ns"].to_numpy(dtype="float64", na_value=np.nan) / 1e6
        kept: np.ndarray[Any, Any] = values[~np.isnan(values)]
        return kept

    def stable_ms_by_room(self) -> dict[str, np.ndarray[Any, Any]]:
        """Stable latencies (ms) per room, in one grouping (not one filter per room)."""
        table = self.by_message
        if table.empty:
            return {}
        stable = table[table["stable_ns"].notna().to_numpy(dtype=bool)]
        return {str(room): group["stable_ns"].to_numpy(dtype="float64") / 1e6
                for room, group in stable.groupby("room", sort=True)}

    def lost_latencies_ns(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Per lost room message: set-full's lost latency and the known-missing time, in ns (module doc)."""
        table = self.by_message
        if table.empty or self.drain_end_ns is None:
            return np.array([], dtype=np.float64), np.array([], dtype=np.float64)
        lost = table[(table["lost"] > 0).to_numpy(dtype=bool)]
        known = lost["known_ns"].to_numpy(dtype="float64")
        seen = lost["last_seen_ns"].to_numpy(dtype="float64", na_value=np.nan)
        return (np.where(np.isnan(seen), 0.0, np.maximum(seen - known, 0.0)),
                np.maximum(float(self.drain_end_ns) - known, 0.0))

    def to_dict(self) -> dict[str, Any]:
        """``details.rooms``: every room (with its outcome and stable latency), the members bounded by
        ``MEMBER_CAP``, and the latency quantile maps (ms)."""
        per_room: dict[str, dict[str, Any]] = {k: dict(v) for k, v in self.per_room.items()}
        if len(self.members):
            by_room = self.members.groupby(level="room", sort=True).sum()
            for room, row in by_room.iterrows():
                per_room.setdefault(str(room), {"sends": 0, "acked": 0, "members": 0, "expected_receipts": 0})
                per_room[str(room)].update({k: int(row[k]) for k in MEMBER_COUNTS if k != "expected"})
            stable = self.stable_ms_by_room()
            for room, stats in per_room.items():
                q = quantiles_ms(stable.get(room, np.array([], dtype=np.float64)) * 1e6)
                stats["stable_latency_ms"] = {"p50": q.p50, "p99": q.p99, "count": q.count}
        lost_ns, missing_ns = self.lost_latencies_ns()
        return {"sends": self.sends, "expected_receipts": self.expected_receipts, "fanout": self.fanout,
                "allowed_copies": self.allowed_copies,
                "joins": {"asked": self.joins_asked, "acknowledged": self.joins_acknowledged},
                "rooms_inferred": self.rooms_inferred, "rejoins_refused": self.rejoins_refused, "per_room": per_room,
                "per_member": self._per_member(),
                "stable_latency_ms": asdict(quantiles_ms(self.stable_ms() * 1e6)),
                "lost_messages": int((self.by_message["lost"] > 0).sum()) if len(self.by_message) else 0,
                "lost_latency_ms": asdict(quantiles_ms(lost_ns)),
                "known_missing_ms": asdict(quantiles_ms(missing_ns))}

    def worst_members(self, cap: int | None = MEMBER_CAP) -> pd.DataFrame:
        """Members with an anomaly, worst first (lost, unseen, unexpected, duplicated; then room, member)."""
        table = self.members
        bad = table[(table[["lost", "unseen", "unexpected", "duplicated"]].sum(axis=1) > 0).to_numpy(dtype=bool)]
        ordered = bad.reset_index().sort_values(["lost", "unseen", "unexpected", "duplicated", "room", "member"],
                                                ascending=[False, False, False, False, True, True], kind="stable")
        return ordered if cap is None else ordered.head(cap)

    def _per_member(self) -> dict[str, Any]:
        worst = self.worst_members()
        return {"members": len(self.members), "with_anomalies": len(self.worst_members(None)), "cap": MEMBER_CAP,
                "totals": {k: int(self.members[k].sum()) for k in MEMBER_COUNTS},
                "worst": [{"room": str(r.room), "member": str(r.member), **{k: int(getattr(r, k)) for k in
                                                                            MEMBER_COUNTS}}
                          for r in worst.itertuples(index=False)]}


def _memberships(frame: pd.DataFrame, refused_rejoins: list[int] | None = None) -> dict[tuple[str, str], list[Span]]:
    """Each (user, room)'s spans. A leave whose answer never came (``info``) ends certain membership at its
    request but not possible membership: later copies are allowed, never unexpected. A join asked while a leave
    of the same room was still unanswered (or the other way round) leaves their order at the server unknown:
    the user stays possibly a member until a later leave is acknowledged. A join asked while the user is still
    possibly a member (after an unanswered leave) starts a new span, certain from its acknowledgement. A member's
    join asked again (after a reconnect) and refused ends certain membership at that request, possible until a
    later acknowledged leave (counted in ``refused_rejoins[0]``)."""
    refused_rejoins = refused_rejoins if refused_rejoins is not None else [0]
    rows = frame.loc[frame["f"].isin(["join", "leave"]).to_numpy(dtype=bool, na_value=False),
                     ["t_ns", "index", "process", "type", "f", "room"]].sort_values(["t_ns", "index"], kind="stable")
    spans: dict[tuple[str, str], list[Span]] = {}
    leaving: set[tuple[str, str]] = set()  # a leave asked and not yet answered
    joining: set[tuple[str, str]] = set()  # a join asked and not yet answered
    overlapped: set[tuple[str, str]] = set()  # a join and a leave were in flight together
    rejoining: dict[tuple[str, str], int] = {}  # a certain member asked to join again (after a reconnect): when
    for t_ns, _, user, kind, f, room in rows.itertuples(index=False):
        key = (str(user), str(room))
        t = int(t_ns)
        mine = spans.setdefault(key, [])
        current = mine[-1] if mine and mine[-1].loose_to == _INF else None
        if f == "join":
            if kind == "invoke":
                if key in leaving:
                    overlapped.add(key)
                elif current is None or current.strict_to != _INF:
                    mine.append(Span(_INF, _INF, t, _INF))
                elif current.strict_from != _INF:
                    rejoining[key] = t
                joining.add(key)
                continue
            joining.discard(key)
            asked_again = rejoining.pop(key, None)
            if key in overlapped:
                continue  # the leave may have been applied after it: only a later acknowledged leave settles it
            if asked_again is not None and current is not None:
                if kind == "fail":  # refused: the server says it is not a member now; when it stopped is unknown
                    current.strict_to = min(current.strict_to, asked_again)
                    refused_rejoins[0] += 1
                continue
            if kind == "ok" and current is not None and current.strict_from == _INF:
                current.strict_from = t
            elif kind == "fail" and current is not None and current.strict_from == _INF:
                current.loose_to = t  # refused: it was possible only until the refusal
        elif current is not None:  # leave
            if kind == "invoke":
                current.strict_to = min(current.strict_to, t)
                if key in joining:
                    overlapped.add(key)
                leaving.add(key)
                continue
            leaving.discard(key)
            if kind == "ok":
                if key in overlapped:
                    overlapped.discard(key)  # a join raced it: still possibly a member
                    continue
                for span in mine:  # acknowledged: no longer a member, whatever earlier answers left open
                    span.loose_to = min(span.loose_to, t)
            elif kind == "fail" and key not in overlapped:
                current.strict_to = _INF  # the server refused the leave: still a member
            # info: no answer, so still possibly a member (loose_to stays open)
    return spans


def _infer_copy_rooms(frame: pd.DataFrame, sends: np.ndarray[Any, Any]) -> tuple[pd.DataFrame, int]:
    """A receipt of a room send that does not say its room (a user's own driver may not record it) came through
    the one room that message was sent to: give it that room, rather than call it both lost and unexpected."""
    if not sends.any():
        return frame, 0
    room_of = dict(zip(frame.loc[sends, "msg_id"].astype(object), frame.loc[sends, "room"].astype(object),
                       strict=True))
    missing = ((frame["f"] == "recv") & frame["room"].isna()
               & frame["msg_id"].isin(list(room_of))).to_numpy(dtype=bool, na_value=False)
    if not missing.any():  # (point-to-point receipts have no room, and no room send's id)
        return frame, 0
    positions = np.flatnonzero(missing)
    frame = frame.copy()
    frame.iloc[positions, frame.columns.get_loc("room")] = [
        room_of[m] for m in frame["msg_id"].iloc[positions].astype(object)]
    return frame, len(positions)


def expand_rooms(frame: pd.DataFrame) -> tuple[pd.DataFrame, RoomFacts]:
    """The ledger with each room send expanded per expected member and each copy judged (see module doc)."""
    if "room" not in frame.columns:
        return frame, RoomFacts()
    room = frame["room"]
    f = frame["f"]
    sends = ((f == "send") & room.notna()).to_numpy(dtype=bool, na_value=False)
    frame, inferred = _infer_copy_rooms(frame, sends)
    room = frame["room"]
    copies = ((f == "recv") & room.notna()).to_numpy(dtype=bool, na_value=False)
    if not sends.any() and not copies.any():
        return frame, RoomFacts()
    refused_rejoins = [0]
    spans = _memberships(frame, refused_rejoins)
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
    members_of: dict[str, list[tuple[str, list[Span]]]] = {}
    for (user, where), user_spans in spans.items():
        members_of.setdefault(where, []).append((user, user_spans))
    per_room: dict[str, dict[str, int]] = {}
    expected: dict[str, list[str]] = {}
    for msg_id, entry in info.items():
        stats = per_room.setdefault(entry["room"], {"sends": 0, "acked": 0, "members": len(members_of.get(
            entry["room"], [])), "expected_receipts": 0})
        stats["sends"] += 1
        begin = entry["invoke"] if entry["invoke"] != _INF else entry["ack"] if entry["ack"] is not None \
            else entry["done"]
        end = entry["ack"] if entry["ack"] is not None else entry["done"] if entry["done"] != _INF else begin
        who = [user for user, user_spans in members_of.get(entry["room"], [])
               if user != entry["sender"] and any(s.strict_from <= begin and end < s.strict_to for s in user_spans)]
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
    # copies: each receipt judged against the membership of its receiver (a set per message: a list made this
    # members x copies, 8 s for 40 sends to a room of 5,000)
    expected_sets = {m: set(who) for m, who in expected.items()}
    copy_rows = frame[copies].copy()
    keep = np.ones(len(copy_rows), dtype=bool)
    new_ids: list[str] = []
    allowed_copies = 0
    strays: dict[str, tuple[str, str, str, int | None]] = {}
    for i, (msg_id, receiver, where) in enumerate(zip(copy_rows["msg_id"].astype(object),
                                                       copy_rows["recipient"].astype(object),
                                                       copy_rows["room"].astype(object), strict=True)):
        sent = info.get(str(msg_id))
        user = str(receiver)
        if sent is not None and sent["room"] == str(where):
            if user in expected_sets[str(msg_id)]:
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
        judged_at = None if sent is None else sent["ack"] if sent["ack"] is not None else sent["invoke"]
        strays[new_ids[-1]] = (str(msg_id), str(where), user, judged_at)
    copy_rows["msg_id"] = pd.array(new_ids, dtype="string")
    pieces.append(copy_rows[keep])
    expanded = pd.concat(pieces).sort_index(kind="stable").reset_index(drop=True)
    facts = RoomFacts(sends=len(info), expected_receipts=sum(r["expected_receipts"] for r in per_room.values()),
                      allowed_copies=allowed_copies, per_room=per_room, origin=origin, spans=spans, strays=strays,
                      joins_asked=sum(len(v) for v in spans.values()),
                      joins_acknowledged=sum(s.strict_from != _INF for v in spans.values() for s in v),
                      rooms_inferred=inferred, rejoins_refused=refused_rejoins[0])
    return expanded, facts


def judge_rooms(facts: RoomFacts, messages: pd.DataFrame, ids: dict[str, list[str]],
                drain_end_ns: int | None) -> RoomFacts:
    """``facts`` with the outcome per (room, member) and per room message, once the expanded copies are judged
    (``messages``: the checker's message table; ``ids``: its lost / unseen / unexpected id lists)."""
    if not facts.sends and not facts.strays:
        return facts
    columns = ["recipient", "outcome", "attempts", "receipts", "invoke_ns", "ack_ns", "first_recv_ns"]
    if "room" in messages.columns:  # every send with a room was expanded: its rows are exactly the copies
        pairs = messages.loc[messages["room"].notna().to_numpy(dtype=bool), [*columns, "room"]]
    else:  # every room send had nobody to reach: no expanded copy
        pairs = messages.iloc[:0][columns].assign(room=pd.Series(dtype=object))
    acked = (pairs["outcome"] == "ok").to_numpy(dtype=bool)
    received = (pairs["receipts"] > 0).to_numpy(dtype=bool)
    lost = pairs.index.isin(ids.get("lost", []))
    table = pd.DataFrame({
        "room": pairs["room"].astype(object).to_numpy(), "member": pairs["recipient"].astype(object).to_numpy(),
        "expected": acked.astype(np.int64), "delivered": (acked & received).astype(np.int64),
        "lost": lost.astype(np.int64), "unseen": pairs.index.isin(ids.get("unseen", [])).astype(np.int64),
        "duplicated": (pairs["receipts"] - pairs["attempts"]).clip(lower=0).to_numpy(dtype=np.int64),
        "unexpected": np.zeros(len(pairs), dtype=np.int64)})
    stray = [facts.strays[i] for i in ids.get("unexpected", []) if i in facts.strays]
    strays = pd.DataFrame({"room": [s[1] for s in stray], "member": [s[2] for s in stray],
                           **{k: np.full(len(stray), 1 if k == "unexpected" else 0, dtype=np.int64)
                              for k in MEMBER_COUNTS}})
    counted = pd.concat([table, strays]).groupby(["room", "member"], sort=True)[list(MEMBER_COUNTS)].sum()
    joined = pd.MultiIndex.from_tuples(sorted((room, user) for user, room in facts.spans), names=["room", "member"])
    members = counted.reindex(counted.index.union(joined), fill_value=0).astype(np.int64)
    members.index.names = ["room", "member"]

    # the room message of each copy: its id less "@member" (how expand_rooms named it; a dict lookup per copy
    # cost 0.7 s at 200k copies)
    origin = [i[:len(i) - len(u) - 1] for i, u in zip(pairs.index.astype(object), table["member"], strict=True)]
    mine = pd.DataFrame({"origin": np.asarray(origin, dtype=object),
                         "room": table["room"].to_numpy(),
                         "invoke": pairs["invoke_ns"].to_numpy(dtype="float64"),
                         "ack": pairs["ack_ns"].to_numpy(dtype="float64", na_value=np.nan),
                         "recv": pairs["first_recv_ns"].to_numpy(dtype="float64", na_value=np.nan),
                         "lost": lost.astype(np.int64)})[acked]
    by_message = mine.groupby("origin", sort=True).agg(
        room=("room", "first"), invoke=("invoke", "min"), known_ns=("ack", "min"), last_seen_ns=("recv", "max"),
        lost=("lost", "sum"), copies=("recv", "size"), got=("recv", "count"))
    whole = (by_message["got"] == by_message["copies"]).to_numpy(dtype=bool)
    by_message["stable_ns"] = np.where(whole, by_message["last_seen_ns"] - by_message["invoke"], np.nan)
    return replace(facts, members=members, by_message=by_message.drop(columns=["invoke", "copies", "got"]),
                   drain_end_ns=drain_end_ns)


def stable_latencies(messages: pd.DataFrame, facts: RoomFacts) -> np.ndarray[Any, Any]:
    """Per acknowledged room message whose every expected member got it: ns from send to the last member's
    first receipt (how long until the whole room had it)."""
    if not facts.origin:
        return np.array([], dtype=np.float64)
    judged = facts if len(facts.by_message) else judge_rooms(facts, messages, {}, facts.drain_end_ns)
    return judged.stable_ms() * 1e6
