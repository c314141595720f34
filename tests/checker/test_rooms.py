"""Rooms: each membership rule on a hand-built history, with exact counts.

Counts are per (message, expected member) pair; ``details.rooms`` carries sends, fan-out, stable latency, the
outcome per room and per member (bounded), and the lost room messages' latencies.
"""

from __future__ import annotations

import json
from typing import Any

from harness.checker import CheckOptions, analyse, check
from harness.checker.rooms import MEMBER_CAP
from tests.checker.builders import History
from tests.checker.test_check import counts


def _room(*members: str) -> History:
    h = History()
    for user in ("a", *members):
        h.connect(user)
    for user in ("a", *members):
        h.join(user, "r")
    return h


def test_every_member_gets_every_message() -> None:
    h = _room("b", "c").room_send("a", "r", 1).room_send("a", "r", 2)
    for seq in (1, 2):
        h.room_recv("b", "a", "r", seq).room_recv("c", "a", "r", seq)
    verdict = check(h.finished().frame())
    assert verdict.valid is True
    assert verdict.counts == counts(attempted=4, acknowledged=4, delivered=4)
    rooms = verdict.details["rooms"]
    assert rooms["sends"] == 2 and rooms["expected_receipts"] == 4 and rooms["fanout"] == 2.0
    assert rooms["per_room"] == {"r": {"sends": 2, "acked": 2, "members": 3, "expected_receipts": 4, "delivered": 4,
                                       "lost": 0, "unseen": 0, "duplicated": 0, "unexpected": 0,
                                       "stable_latency_ms": rooms["per_room"]["r"]["stable_latency_ms"]}}
    assert rooms["stable_latency_ms"]["count"] == 2 and rooms["per_room"]["r"]["stable_latency_ms"]["count"] == 2
    assert rooms["per_member"] == {"members": 3, "with_anomalies": 0, "cap": MEMBER_CAP, "worst": [],
                                   "totals": _member(expected=4, delivered=4)}
    assert rooms["lost_messages"] == 0 and rooms["lost_latency_ms"]["count"] == 0


def test_a_member_missing_one_message_loses_exactly_that_pair() -> None:
    h = _room("b", "c").room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.valid is False
    assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, lost=1)
    assert verdict.lost_ids == ["a>#r#1@c"]
    assert verdict.details["rooms"]["stable_latency_ms"]["count"] == 0  # the room never had it whole


def test_the_sender_is_not_expected_and_its_echo_is_allowed() -> None:
    h = _room("b").room_send("a", "r", 1).room_recv("b", "a", "r", 1).room_recv("a", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.valid is True
    assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)
    assert verdict.details["rooms"]["allowed_copies"] == 1


def test_a_later_joiner_is_not_expected_and_an_old_message_to_it_is_unexpected() -> None:
    h = _room("b").room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    h.connect("c").join("c", "r").room_recv("c", "a", "r", 1)  # history nobody claimed
    verdict = check(h.finished().frame())
    assert verdict.valid is False
    assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1, unexpected=1)
    assert verdict.examples["unexpected"] == ["a>#r#1@c"]


def test_a_join_racing_a_send_makes_the_copy_allowed_not_expected() -> None:
    h = _room("b").connect("c")
    h.join("c", "r", outcome=None)  # asked …
    h.room_send("a", "r", 1)  # … the send is acknowledged before the join is …
    h._add(None, process="c", type="ok", f="join", room="r")  # … answered
    h.room_recv("b", "a", "r", 1)
    without = check(h.finished().frame())
    assert without.valid is True and without.counts == counts(attempted=1, acknowledged=1, delivered=1)
    h.room_recv("c", "a", "r", 1)
    with_copy = check(h.frame())
    assert with_copy.valid is True and with_copy.details["rooms"]["allowed_copies"] == 1


def test_a_join_answered_while_the_send_was_in_flight_is_not_expected_to_have_it() -> None:
    """Seen on naive per-socket rooms: the send reached the server first, the member's join was answered quickly,
    the sender's ack came back after it. The two overlapped in real time, so either order is correct: judging by
    the ack alone made this copy "lost"."""
    h = _room("b").connect("c")
    mid = History.room_mid("a", "r", 1)
    h._add(None, process="a", type="invoke", f="send", msg_id=mid, sender="a", room="r", seq=1)
    h.join("c", "r")  # asked and answered while the send was in flight
    h._add(None, process="a", type="ok", f="send", msg_id=mid, sender="a", room="r", seq=1)
    h.room_recv("b", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.valid is True and verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)
    h.room_send("a", "r", 2).room_recv("b", "a", "r", 2)  # after the join: c must have it, and does not
    later = check(h.finished().frame())
    assert later.counts["lost"] == 1 and later.lost_ids == [f"{History.room_mid('a', 'r', 2)}@c"]


def test_a_leave_sent_after_the_ack_still_requires_the_copy() -> None:
    h = _room("b", "c").room_send("a", "r", 1).leave("c", "r").room_recv("b", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.counts["lost"] == 1 and verdict.lost_ids == [f"{History.room_mid('a', 'r', 1)}@c"]


def test_a_member_who_left_before_the_send_must_not_receive_it() -> None:
    h = _room("b", "c").leave("c", "r").room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    clean = check(h.finished().frame())
    assert clean.valid is True and clean.counts == counts(attempted=1, acknowledged=1, delivered=1)
    h.room_recv("c", "a", "r", 1)
    leaked = check(h.frame())
    assert leaked.counts["unexpected"] == 1 and leaked.valid is False


def test_a_leave_in_flight_during_the_send_neither_requires_nor_forbids_it() -> None:
    h = _room("b", "c").leave("c", "r", outcome=None).room_send("a", "r", 1)
    h._add(None, process="c", type="ok", f="leave", room="r")
    h.room_recv("b", "a", "r", 1).room_recv("c", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.valid is True
    assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)
    assert verdict.details["rooms"]["allowed_copies"] == 1


def test_a_refused_join_expects_nothing() -> None:
    h = _room("b").connect("c").join("c", "r", outcome="fail").room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.valid is True and verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)


def test_a_copy_in_the_wrong_room_is_unexpected() -> None:
    h = _room("b").join("b", "other").room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    h.room_recv("b", "a", "r", 1, in_room="other")
    verdict = check(h.finished().frame())
    assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1, unexpected=1)
    assert verdict.examples["unexpected"] == ["a>#r#1@b (in other)"]


def test_duplicates_and_order_are_per_member_and_per_room() -> None:
    h = _room("b", "c").join("b", "s").join("c", "s")
    h.room_send("a", "r", 1).room_send("a", "s", 1).room_send("a", "r", 2)
    # b: r#2 before r#1 (reordered within r); c: s#1 before r#1 is not a reorder (different rooms), and twice
    h.room_recv("b", "a", "r", 2).room_recv("b", "a", "r", 1).room_recv("b", "a", "s", 1)
    h.room_recv("c", "a", "s", 1).room_recv("c", "a", "r", 1).room_recv("c", "a", "r", 2).room_recv("c", "a", "r", 2)
    verdict = check(h.finished().frame(), CheckOptions(ordered=True))
    assert verdict.counts == counts(attempted=6, acknowledged=6, delivered=6, duplicated=1, reordered=1, skipped=1)
    assert verdict.examples["reordered"] == ["a>#r#1@b"] and verdict.examples["duplicated"] == ["a>#r#2@c"]
    assert verdict.valid is False  # the target claims order


def test_an_offline_member_at_the_end_is_unseen_not_lost() -> None:
    h = _room("b", "c").room_send("a", "r", 1).room_recv("b", "a", "r", 1).disconnect("c")
    verdict = check(h.finished().frame())
    assert verdict.valid == "unknown"
    assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, unseen=1)


def test_point_to_point_ledgers_are_unchanged() -> None:
    verdict = check(History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).finished().frame())
    assert "rooms" not in verdict.details and verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)


# -- per room, per member, lost latency -------------------------------------------------------------------------


def _member(room: str | None = None, member: str | None = None, **counts: int) -> dict[str, Any]:
    zero = dict.fromkeys(("expected", "delivered", "lost", "unseen", "duplicated", "unexpected"), 0)
    named = {} if room is None else {"room": room, "member": member}
    return {**named, **zero, **counts}


def _mixed() -> History:
    """Room r: a sends 2 messages to b, c, d; d misses both, c misses #2, b gets #2 twice. Room s (b only):
    b misses s#1, and d, never a member of s, receives it. Times: join 10-16 ms, sends at 200 / 300 / 400 ms
    (acked 1 ms later), drain ends at 2,000 ms."""
    h = History()
    for user in ("a", "b", "c", "d"):
        h.connect(user, at_ms=0, conn=1)
    for i, user in enumerate(("a", "b", "c", "d")):
        h.join(user, "r", at_ms=10 + 2 * i)
    h.join("b", "s", at_ms=30).phase("start", at_ms=100)
    h.room_send("a", "r", 1, at_ms=200).room_recv("b", "a", "r", 1, at_ms=210).room_recv("c", "a", "r", 1, at_ms=215)
    h.room_send("a", "r", 2, at_ms=300).room_recv("b", "a", "r", 2, at_ms=320).room_recv("b", "a", "r", 2, at_ms=330)
    h.room_send("a", "s", 1, at_ms=400).room_recv("d", "a", "s", 1, at_ms=410)
    h.phase("drain_start", at_ms=1000).phase("drain_end", at_ms=2000, quiescent=True).phase("end", at_ms=2001)
    return h.close_nodes()


def test_per_room_and_per_member_counts_are_exact() -> None:
    verdict = check(_mixed().frame())
    assert verdict.counts == counts(attempted=7, acknowledged=7, delivered=3, lost=4, duplicated=1, unexpected=1)
    rooms = verdict.details["rooms"]
    no_stable = {"p50": None, "p99": None, "count": 0}  # no message reached its whole room
    assert rooms["per_room"] == {
        "r": {"sends": 2, "acked": 2, "members": 4, "expected_receipts": 6, "delivered": 3, "lost": 3, "unseen": 0,
              "duplicated": 1, "unexpected": 0, "stable_latency_ms": no_stable},
        "s": {"sends": 1, "acked": 1, "members": 1, "expected_receipts": 1, "delivered": 0, "lost": 1, "unseen": 0,
              "duplicated": 0, "unexpected": 1, "stable_latency_ms": no_stable}}
    assert rooms["per_member"] == {
        "members": 6, "with_anomalies": 5, "cap": MEMBER_CAP,  # (r: a b c d) (s: b d); a has nothing to miss
        "totals": _member(expected=7, delivered=3, lost=4, duplicated=1, unexpected=1),
        "worst": [_member("r", "d", expected=2, lost=2), _member("r", "c", expected=2, delivered=1, lost=1),
                  _member("s", "b", expected=1, lost=1), _member("s", "d", unexpected=1),
                  _member("r", "b", expected=2, delivered=2, duplicated=1)]}


def test_lost_room_messages_carry_set_full_lost_latency_and_how_long_they_were_known_missing() -> None:
    rooms = check(_mixed().frame()).details["rooms"]
    assert rooms["lost_messages"] == 3  # r#1 (d), r#2 (c, d), s#1 (b)
    # set-full: ack -> last time any member had it: r#1 201 -> 215, r#2 301 -> 320, s#1 never seen (d's copy is
    # unexpected, not a read of the room's message by a member): 0
    assert rooms["lost_latency_ms"] == {"p50": 14.0, "p95": 18.5, "p99": 18.9, "max": 19.0, "count": 3}
    # ack -> end of the drain (2,000 ms): 1,799, 1,699, 1,599
    assert rooms["known_missing_ms"] == {"p50": 1699.0, "p95": 1789.0, "p99": 1797.0, "max": 1799.0, "count": 3}


def test_stable_latency_per_room_is_send_to_the_last_members_first_receipt() -> None:
    h = _room("b", "c").join("b", "s")
    h.room_send("a", "r", 1, at_ms=100).room_recv("b", "a", "r", 1, at_ms=105).room_recv("c", "a", "r", 1, at_ms=130)
    h.room_send("a", "s", 1, at_ms=200).room_recv("b", "a", "s", 1, at_ms=210)
    rooms = check(h.finished().frame()).details["rooms"]
    assert rooms["per_room"]["r"]["stable_latency_ms"] == {"p50": 30.0, "p99": 30.0, "count": 1}
    assert rooms["per_room"]["s"]["stable_latency_ms"] == {"p50": 10.0, "p99": 10.0, "count": 1}
    assert rooms["stable_latency_ms"] == {"p50": 20.0, "p95": 29.0, "p99": 29.8, "max": 30.0, "count": 2}


def test_an_offline_member_counts_unseen_and_a_refused_joiner_is_listed_with_nothing_expected() -> None:
    h = _room("b", "c").connect("d").join("d", "r", outcome="fail")
    h.room_send("a", "r", 1).room_recv("b", "a", "r", 1).disconnect("c")
    rooms = check(h.finished().frame()).details["rooms"]
    assert rooms["per_member"]["totals"] == _member(expected=2, delivered=1, unseen=1)
    assert rooms["per_member"]["members"] == 4 and rooms["per_member"]["worst"] == [
        _member("r", "c", expected=1, unseen=1)]
    assert rooms["lost_messages"] == 0 and rooms["known_missing_ms"]["count"] == 0  # unseen is not lost


def test_a_big_room_keeps_verdict_json_small_and_counts_every_member() -> None:
    h = History()
    members = [f"u{i:04d}" for i in range(2000)]
    for user in ("a", *members):
        h.connect(user).join(user, "big")
    h.room_send("a", "big", 1)
    for user in members[:-30]:  # the last 30 never get it
        h.room_recv(user, "a", "big", 1)
    verdict = check(h.finished().frame())
    per_member = verdict.details["rooms"]["per_member"]
    assert verdict.counts["lost"] == 30 and per_member["with_anomalies"] == 30 and per_member["members"] == 2001
    assert [m["member"] for m in per_member["worst"]] == members[-30:][:MEMBER_CAP]  # ties: by name
    assert per_member["totals"] == _member(expected=2000, delivered=1970, lost=30)
    assert len(json.dumps(verdict.details["rooms"])) < 6000
    assert len(analyse(h.frame()).rooms.members) == 2001  # the report still has every member


def test_a_leave_never_answered_keeps_later_copies_allowed_not_unexpected() -> None:
    """The leave timed out (``info``): the server may or may not have applied it. Before: the copy was called
    unexpected (a false alarm whenever a leave's answer was lost under a fault)."""
    h = _room("b", "c").leave("c", "r", outcome="info").room_send("a", "r", 1)
    h.room_recv("b", "a", "r", 1).room_recv("c", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.valid is True and verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)
    assert verdict.details["rooms"]["allowed_copies"] == 1
    # and c's copy is not required either: without it the verdict is the same
    quiet = _room("b", "c").leave("c", "r", outcome="info").room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    assert check(quiet.finished().frame()).counts == counts(attempted=1, acknowledged=1, delivered=1)


def test_a_join_acknowledged_after_an_unanswered_leave_is_required_again() -> None:
    h = _room("b", "c").leave("c", "r", outcome="info").join("c", "r").room_send("a", "r", 1)
    h.room_recv("b", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.counts["lost"] == 1 and verdict.lost_ids == [f"{History.room_mid('a', 'r', 1)}@c"]


def test_a_join_asked_while_the_leave_was_unanswered_leaves_membership_possible() -> None:
    """leave asked, join asked, then both acknowledged: the server may have applied them in either order. Before:
    the re-join was dropped, so c's copy was unexpected (false alarm)."""
    def run(with_copy: bool) -> Any:
        h = _room("b", "c").leave("c", "r", outcome=None).join("c", "r", outcome=None)
        h._add(None, process="c", type="ok", f="leave", room="r")
        h._add(None, process="c", type="ok", f="join", room="r")
        h.room_send("a", "r", 1).room_recv("b", "a", "r", 1)
        if with_copy:
            h.room_recv("c", "a", "r", 1)
        return check(h.finished().frame())

    for with_copy in (True, False):
        verdict = run(with_copy)
        assert verdict.valid is True and verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)
    # a later acknowledged leave settles it: a copy after that is unexpected again
    h = _room("b", "c").leave("c", "r", outcome=None).join("c", "r", outcome=None)
    h._add(None, process="c", type="ok", f="leave", room="r")
    h._add(None, process="c", type="ok", f="join", room="r")
    h.leave("c", "r").room_send("a", "r", 1).room_recv("b", "a", "r", 1).room_recv("c", "a", "r", 1)
    assert check(h.finished().frame()).counts["unexpected"] == 1


def test_a_server_that_never_answers_joins_is_not_a_pass_and_says_why() -> None:
    h = History().connect("a").connect("b").connect("c").join("b", "r", outcome="info").join("c", "r", outcome="info")
    h.room_send("a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.valid == "unknown" and verdict.counts["acknowledged"] == 0
    assert verdict.details["rooms"]["joins"] == {"asked": 2, "acknowledged": 0}
    assert "no room copy was required: 0 of 2 join(s) acknowledged, none before a send that was acknowledged; " \
           "nothing to judge" in verdict.reasons


def test_a_server_that_answers_few_joins_is_not_a_pass() -> None:
    h = _room("b").connect("c").connect("d").join("c", "r", outcome="info").join("d", "r", outcome="info")
    h.connect("e").join("e", "r", outcome="info")
    h.room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    verdict = check(h.finished().frame())
    assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)
    assert verdict.details["rooms"]["joins"] == {"asked": 5, "acknowledged": 2}  # a and b
    assert verdict.valid == "unknown"
    assert "only 2 of 5 join(s) were acknowledged: the room copies of the other members could not be required, " \
           "so most of the rooms were not judged" in verdict.reasons
    # half or more acknowledged: judged as usual
    fine = _room("b", "c").connect("d").join("d", "r", outcome="info").room_send("a", "r", 1)
    fine.room_recv("b", "a", "r", 1).room_recv("c", "a", "r", 1)
    assert check(fine.finished().frame()).valid is True


def test_a_receipt_that_does_not_say_its_room_gets_the_room_its_message_was_sent_to() -> None:
    """Before: such a receipt was counted lost (for the member) and unexpected (as a receipt), with no hint."""
    h = _room("b", "c").room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    h._add(None, process="c", type="ok", f="recv", msg_id=History.room_mid("a", "r", 1), sender="a", recipient="c",
           seq=1)
    verdict = check(h.finished().frame())
    assert verdict.valid is True and verdict.counts == counts(attempted=2, acknowledged=2, delivered=2)
    assert verdict.details["rooms"]["rooms_inferred"] == 1
    # a receipt without a room of a message nobody sent stays unexpected
    h._add(None, process="c", type="ok", f="recv", msg_id="a>#r#99", sender="a", recipient="c", seq=99)
    stray = check(h.frame())
    assert stray.counts["unexpected"] == 1 and stray.details["rooms"]["rooms_inferred"] == 1


def test_a_refused_rejoin_after_a_reconnect_stops_requiring_copies_from_its_request() -> None:
    """The driver drops the room when its rejoin is refused; before, the checker still required every later copy."""
    h = _room("b", "c").room_send("a", "r", 1).room_recv("b", "a", "r", 1).room_recv("c", "a", "r", 1)
    h.disconnect("c").connect("c").join("c", "r", outcome="fail")
    h.room_send("a", "r", 2).room_recv("b", "a", "r", 2)
    verdict = check(h.finished().frame())
    assert verdict.valid is True and verdict.counts == counts(attempted=3, acknowledged=3, delivered=3)
    assert verdict.details["rooms"]["rejoins_refused"] == 1
    h.room_recv("c", "a", "r", 2)  # and a copy that still came is allowed, not unexpected
    late = check(h.frame())
    assert late.valid is True and late.details["rooms"]["allowed_copies"] == 1
    # an acknowledged rejoin changes nothing: the copy is still required
    kept = _room("b", "c").disconnect("c").connect("c").join("c", "r").room_send("a", "r", 1)
    kept.room_recv("b", "a", "r", 1)
    assert check(kept.finished().frame()).counts["lost"] == 1
