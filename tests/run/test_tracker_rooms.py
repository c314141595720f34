"""The live tracker with rooms: an acknowledged room send is outstanding once per member but its sender, under
the checker's expanded ids, and each member's copy settles only that member's share."""

from __future__ import annotations

from typing import Any

from harness.run.context import DeliveryTracker


def _row(process: str, kind: str, f: str, **fields: Any) -> dict[str, Any]:
    return {"process": process, "type": kind, "f": f, **fields}


def _joined(tracker: DeliveryTracker, *users: str, room: str = "lobby") -> None:
    for user in users:
        tracker.apply(_row(user, "invoke", "join", room=room))
        tracker.apply(_row(user, "ok", "join", room=room))


def test_a_room_send_waits_for_every_member_but_the_sender() -> None:
    tracker = DeliveryTracker()
    _joined(tracker, "alice", "bob", "carol")
    tracker.apply(_row("alice", "invoke", "send", msg_id="m1", room="lobby"))
    tracker.apply(_row("alice", "ok", "send", msg_id="m1", room="lobby"))
    assert tracker.outstanding == {"m1@bob": "bob", "m1@carol": "carol"}
    tracker.apply(_row("bob", "ok", "recv", msg_id="m1", recipient="bob", room="lobby"))
    assert tracker.outstanding == {"m1@carol": "carol"} and not tracker.quiescent()
    tracker.apply(_row("carol", "ok", "recv", msg_id="m1", recipient="carol", room="lobby"))
    assert tracker.quiescent() and tracker.memory_items() == 0


def test_a_member_who_asked_to_leave_is_not_waited_for_and_an_early_copy_settles_its_share() -> None:
    tracker = DeliveryTracker()
    _joined(tracker, "alice", "bob", "carol")
    tracker.apply(_row("carol", "invoke", "leave", room="lobby"))
    tracker.apply(_row("alice", "invoke", "send", msg_id="m2", room="lobby"))
    tracker.apply(_row("bob", "ok", "recv", msg_id="m2", recipient="bob", room="lobby"))  # before the ack
    tracker.apply(_row("alice", "ok", "send", msg_id="m2", room="lobby"))
    assert tracker.outstanding == {} and tracker.quiescent() and tracker.memory_items() == 0


def test_an_unknown_outcome_leaves_each_members_copy_unsettled_until_it_arrives() -> None:
    tracker = DeliveryTracker()
    _joined(tracker, "alice", "bob")
    tracker.apply(_row("alice", "invoke", "send", msg_id="m3", room="lobby"))
    tracker.apply(_row("alice", "info", "send", msg_id="m3", room="lobby"))
    assert tracker.outstanding == {} and tracker.unsettled == {"m3@bob"}
    tracker.apply(_row("bob", "ok", "recv", msg_id="m3", recipient="bob", room="lobby"))
    assert tracker.unsettled == set()
