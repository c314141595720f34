"""Rooms: each membership rule on a hand-built history, with exact counts.

Counts are per (message, expected member) pair; ``details.rooms`` carries sends, fan-out and stable latency.
"""

from __future__ import annotations

from harness.checker import CheckOptions, check
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
    assert rooms["per_room"] == {"r": {"sends": 2, "acked": 2, "members": 3, "expected_receipts": 4}}
    assert rooms["stable_latency_ms"]["count"] == 2


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
