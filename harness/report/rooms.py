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
           "room_summary", "loss_latency_sentence"]

MEMBERSHIP_RULE = (
    "A message sent to a room must reach every member other than its sender: every user whose join the server "
    "had acknowledged before it acknowledged the message, and who had not yet sent its leave. A copy received "
    "by a user whose join or leave was in flight while the message was (or by the sender itself) is allowed but "
    "not required; any other copy, or one received in another room, is unexpected. Each (message, member) pair "
    "is judged like a point-to-point message: lost, unseen (no fair chance to read it), duplicated.")
"""The rule in words (checker.rooms states it for the checker)."""

REPORT_MEMBERS = 100
"""Members with an anomaly that report.html lists by name (worst first); verdict.json keeps fewer."""

ROOM_COLUMNS = ("room", "sends", "members", "fan-out", "expected", "delivered", "lost", "unseen", "duplicated",
                "unexpected", "stable p50 ms", "stable p99 ms")
"""The per-room table's columns, the same in report.md and report.html."""


def _fanout(stats: dict[str, Any]) -> float | None:
    acked = int(stats.get("acked") or 0)
    return None if not acked else round(int(stats.get("expected_receipts") or 0) / acked, 2)


def room_rows(rooms: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per room of ``details.rooms``: the columns of ``ROOM_COLUMNS`` (values unformatted)."""
    rows: list[dict[str, Any]] = []
    for room, stats in sorted((rooms.get("per_room") or {}).items()):
        stable = stats.get("stable_latency_ms") or {}
        rows.append({"room": room, "sends": stats.get("sends"), "members": stats.get("members"),
                     "fan-out": _fanout(stats), "expected": stats.get("expected_receipts"),
                     **{k: stats.get(k) for k in MEMBER_COUNTS if k != "expected"},
                     "stable p50 ms": stable.get("p50"), "stable p99 ms": stable.get("p99")})
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
    sends, where = int(rooms.get("sends") or 0), len(rooms.get("per_room") or {})
    return (f"{sends:,} room send{'' if sends == 1 else 's'} to {where:,} room{'' if where == 1 else 's'}, fan-out "
            f"{number(rooms.get('fanout'))}: {number(rooms.get('expected_receipts'))} expected receipts, "
            f"{number(totals.get('delivered'))} delivered, {number(totals.get('lost'))} lost, "
            f"{number(totals.get('unseen'))} unseen; stable latency p50 {number(stable.get('p50'), ' ms')}, "
            f"p99 {number(stable.get('p99'), ' ms')}")


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
    sentence = loss_latency_sentence(rooms)
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
