"""The Rooms section of report.md and report.html (pure): per room, the worst members, the membership rule.

Everything here reads ``details.rooms`` of verdict.json (so report.md and saved comparison pages need no
ledger), except ``member_rows``, which lists more members than verdict.json keeps (from the analysis).
"""

from __future__ import annotations

from typing import Any

from harness.checker import Analysis
from harness.checker.rooms import MEMBER_COUNTS
from harness.report.numbers import number

__all__ = ["MEMBERSHIP_RULE", "REPORT_MEMBERS", "ROOM_COLUMNS", "room_rows", "member_rows", "rooms_markdown",
           "room_summary", "loss_latency_sentence", "quiet_rooms_note", "copies_note", "membership_note"]

MEMBERSHIP_RULE = (
    "A message sent to a room and acknowledged must reach every member other than its sender whose join the "
    "server had acknowledged before the message was sent (invoked), and whose leave was sent only after the "
    "message's acknowledgement arrived: such a copy is expected. A copy received by a user whose membership "
    "was only possible at some point while the message was in flight (from its join being sent until its leave "
    "was acknowledged; a leave never answered, or a join and a leave in flight together, leave it possible until "
    "a later leave is acknowledged), or by the sender itself, is allowed but not required; any other copy, or one "
    "received in "
    "another room, is unexpected. Each (message, member) pair is judged like a point-to-point message: lost, "
    "unseen (no fair chance to read it), duplicated.")
"""The rule in words, the one place the pages take it from (checker.rooms's module docstring states it for the
checker: keep the two saying the same)."""

REPORT_MEMBERS = 100
"""Members with an anomaly that report.html lists by name (worst first); verdict.json keeps fewer."""

ROOM_COLUMNS = ("room", "sends", "members", "fan-out", "expected", "delivered", "lost", "unseen", "duplicated",
                "unexpected", "stable p50 ms", "stable p99 ms", "stable n")
"""The per-room table's columns, the same in report.md and report.html; "stable n" is how many of the room's
messages reached every expected member (stable latency is measured over those only)."""


def _fanout(stats: dict[str, Any]) -> float | None:
    acked = int(stats.get("acked") or 0)
    return None if not acked else round(int(stats.get("expected_receipts") or 0) / acked, 2)


def room_rows(rooms: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per room of ``details.rooms``: the columns of ``ROOM_COLUMNS`` (values unformatted)."""
    rows: list[dict[str, Any]] = []
    for room, stats in sorted((rooms.get("per_room") or {}).items()):
        stable = stats.get("stable_latency_ms") or {}
        if not int(stats.get("sends") or 0):  # joined, never sent to: nothing was judged, so no figure but 0 sends
            rows.append({c: None for c in ROOM_COLUMNS} | {"room": room, "sends": 0})
            continue
        rows.append({"room": room, "sends": stats.get("sends"), "members": stats.get("members"),
                     "fan-out": _fanout(stats), "expected": stats.get("expected_receipts"),
                     **{k: stats.get(k) for k in MEMBER_COUNTS if k != "expected"},
                     "stable p50 ms": stable.get("p50"), "stable p99 ms": stable.get("p99"),
                     "stable n": stable.get("count")})
    return rows


def member_rows(analysis: Analysis, limit: int = REPORT_MEMBERS) -> tuple[list[dict[str, Any]], int]:
    """The members with an anomaly, worst first, at most ``limit``; and how many were left out."""
    worst = analysis.rooms.worst_members(None)
    shown = [{"room": str(r.room), "member": str(r.member), **{k: int(getattr(r, k)) for k in MEMBER_COUNTS}}
             for r in worst.head(limit).itertuples(index=False)]
    return shown, max(0, len(worst) - limit)


def _q(q: dict[str, Any]) -> str:
    return f"p50 {number(q.get('p50'), ' ms')} · p99 {number(q.get('p99'), ' ms')} · max {number(q.get('max'), ' ms')}"


def room_summary(rooms: dict[str, Any]) -> str:
    """One line: sends, fan-out, receipts, lost copies, stable latency (comparison pages use it too)."""
    totals = (rooms.get("per_member") or {}).get("totals") or {}
    stable = rooms.get("stable_latency_ms") or {}
    per_room = rooms.get("per_room") or {}
    sends = int(rooms.get("sends") or 0)
    where = sum(1 for stats in per_room.values() if int(stats.get("sends") or 0))
    quiet = len(per_room) - where
    copies = int(rooms.get("expected_receipts") or 0)
    return (f"{sends:,} room send{'' if sends == 1 else 's'} to {where:,} room{'' if where == 1 else 's'}"
            + (f" ({quiet:,} more without a send)" if quiet else "")
            + f" → {copies:,} expected cop{'y' if copies == 1 else 'ies'} (fan-out {number(rooms.get('fanout'))}): "
            f"{number(totals.get('delivered'))} delivered, {number(totals.get('lost'))} lost, "
            f"{number(totals.get('unseen'))} unseen; stable latency p50 {number(stable.get('p50'), ' ms')}, "
            f"p99 {number(stable.get('p99'), ' ms')} (n {number(stable.get('count'))}: over the room messages "
            "that reached every expected member only)")


def quiet_rooms_note(rooms: dict[str, Any]) -> str | None:
    """Rooms joined but never sent to: the table shows them with 0 sends and no other figure."""
    quiet = [r for r, stats in sorted((rooms.get("per_room") or {}).items()) if not int(stats.get("sends") or 0)]
    if not quiet:
        return None
    shown = ", ".join(quiet[:10]) + (f" and {len(quiet) - 10:,} more" if len(quiet) > 10 else "")
    return (f"{len(quiet):,} room{'' if len(quiet) == 1 else 's'} had no send ({shown}): nothing to judge there, "
            "so no figure but 0 sends.")


def membership_note(rooms: dict[str, Any]) -> str | None:
    """What the membership judgement rested on: joins asked and acknowledged, rejoins the server refused, and
    receipts whose room the checker took from their message (None when the checker recorded none of these)."""
    joins = rooms.get("joins") or {}
    asked, acknowledged = int(joins.get("asked") or 0), int(joins.get("acknowledged") or 0)
    refused, inferred = int(rooms.get("rejoins_refused") or 0), int(rooms.get("rooms_inferred") or 0)
    parts = []
    if asked:
        parts.append(f"{acknowledged:,} of {asked:,} join{'' if asked == 1 else 's'} acknowledged by the server")
    if refused:
        parts.append(f"{refused:,} rejoin{'' if refused == 1 else 's'} after a reconnect refused (membership "
                     "certain until each, only possible after)")
    if inferred:
        parts.append(f"{inferred:,} receipt{'' if inferred == 1 else 's'} without a room judged in the room "
                     "their message was sent to")
    return ("Membership: " + "; ".join(parts) + ".") if parts else None


def copies_note(doc: dict[str, Any]) -> str | None:
    """What the headline counts count when the run had rooms: each expected copy of a room send is one
    message; says how the acknowledged count splits into copies and point-to-point messages."""
    rooms = (doc.get("details") or {}).get("rooms")
    if not rooms:
        return None
    acked = int((doc.get("counts") or {}).get("acknowledged") or 0)
    copies = int(rooms.get("expected_receipts") or 0)
    room_acked = sum(int(s.get("acked") or 0) for s in (rooms.get("per_room") or {}).values())
    point = acked - copies
    split = (f" = {copies:,} cop{'y' if copies == 1 else 'ies'} of {room_acked:,} acknowledged room "
             f"send{'' if room_acked == 1 else 's'} (one per expected member) + {point:,} point-to-point "
             f"message{'' if point == 1 else 's'}") if point >= 0 else ""
    return (f"Counts are per copy: a room send counts once for each member that had to receive it. "
            f"{acked:,} acknowledged{split}.")


def loss_latency_sentence(rooms: dict[str, Any]) -> str | None:
    """The lost room messages' two latencies in words (checker.rooms defines them), None when nothing was lost."""
    lost = int(rooms.get("lost_messages") or 0)
    if not lost:
        return None
    return (f"{lost:,} room message(s) lost for at least one member. Known missing (from the ack to the end of "
            f"the drain): {_q(rooms.get('known_missing_ms') or {})}. Lost latency in Jepsen set-full's sense (from "
            f"the ack to the last time any member had received it; 0 = no member ever did): "
            f"{_q(rooms.get('lost_latency_ms') or {})}.")


def rooms_markdown(doc: dict[str, Any]) -> list[str]:
    """report.md's Rooms section (empty when the run had no rooms)."""
    rooms = (doc.get("details") or {}).get("rooms")
    if not rooms:
        return []
    lines = ["", "## Rooms", "", room_summary(rooms) + ".", "", f"**Membership rule:** {MEMBERSHIP_RULE}", "",
             "| " + " | ".join(ROOM_COLUMNS) + " |", "|---|" + "---:|" * (len(ROOM_COLUMNS) - 1)]
    lines += ["| " + " | ".join(number(row[c]) for c in ROOM_COLUMNS) + " |" for row in room_rows(rooms)]
    for sentence in (membership_note(rooms), quiet_rooms_note(rooms), loss_latency_sentence(rooms)):
        if sentence:
            lines += ["", sentence]
    per_member = rooms.get("per_member") or {}
    worst = per_member.get("worst") or []
    if worst:
        more = int(per_member.get("with_anomalies") or 0) - len(worst)
        lines += ["", f"**Worst members** ({len(worst)} of {int(per_member.get('with_anomalies') or 0):,} with an "
                  f"anomaly, of {int(per_member.get('members') or 0):,} members"
                  + (f"; {more:,} more in report.html" if more > 0 else "") + "):", "",
                  "| room | member | " + " | ".join(MEMBER_COUNTS) + " |", "|---|---|" + "---:|" * len(MEMBER_COUNTS)]
        lines += [f"| {m['room']} | {m['member']} | " + " | ".join(number(m[k]) for k in MEMBER_COUNTS) + " |"
                  for m in worst]
    else:
        lines += ["", f"Every one of the {int(per_member.get('members') or 0):,} members received what it had to."]
    return lines
