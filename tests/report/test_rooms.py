"""The Rooms section of report.md and report.html, from a hand-built room history (exact figures)."""

from __future__ import annotations

from harness.checker import analyse, check
from harness.report.html import charts_for, rooms_section
from harness.report.rooms import copies_note, member_rows, membership_note, room_rows, rooms_markdown
from harness.report.summary import render_markdown, summary_lines
from tests.checker.builders import History
from tests.checker.test_rooms import _mixed, _room


def test_report_md_has_the_rooms_table_the_rule_and_the_worst_members() -> None:
    lines = rooms_markdown(check(_mixed().frame()).to_dict())
    assert lines[:4] == ["", "## Rooms", "", "3 room sends to 2 rooms → 7 expected copies (fan-out 2.3): 3 "
                         "delivered, 4 lost, 0 unseen; stable latency p50 -, p99 - (n 0: over the room messages "
                         "that reached every expected member only)."]
    assert lines[5].startswith("**Membership rule:** A message sent to a room and acknowledged must reach every "
                               "member other than its sender whose join the server had acknowledged before the "
                               "message was sent (invoked), and whose leave was sent only after the message's "
                               "acknowledgement arrived: such a copy is expected. A copy received by a user whose "
                               "membership was only possible at some point while the message was in flight (from "
                               "its join being sent until its leave was acknowledged; a leave never answered, or "
                               "a join and a leave in flight together, leave it possible until a later leave is "
                               "acknowledged), or by the sender itself, is allowed but not required; any other "
                               "copy, or one received in another room, is unexpected.")
    assert "| r | 2 | 4 | 3.0 | 6 | 3 | 3 | 0 | 1 | 0 | - | - | 0 |" in lines
    assert "| s | 1 | 1 | 1.0 | 1 | 0 | 1 | 0 | 0 | 1 | - | - | 0 |" in lines
    assert "| r | d | 2 | 0 | 2 | 0 | 0 | 0 |" in lines and "| s | d | 0 | 0 | 0 | 0 | 0 | 1 |" in lines
    assert any(line.startswith("3 room message(s) lost for at least one member. Known missing (from the ack to "
                               "the end of the drain): p50 1,699 ms · p99 1,797 ms · max 1,799 ms.") for line in lines)


def test_a_run_without_rooms_has_no_rooms_section() -> None:
    doc = check(History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).finished().frame()).to_dict()
    assert rooms_markdown(doc) == [] and "## Rooms" not in render_markdown(doc)


def test_a_clean_room_says_every_member_got_everything() -> None:
    h = History().connect("a").connect("b").join("a", "r").join("b", "r").room_send("a", "r", 1, at_ms=100)
    h.room_recv("b", "a", "r", 1, at_ms=112)
    doc = check(h.finished().frame()).to_dict()
    assert rooms_markdown(doc)[-1] == "Every one of the 2 members received what it had to."
    assert room_rows(doc["details"]["rooms"])[0]["stable p50 ms"] == 12.0


def test_the_page_lists_members_beyond_the_verdicts_cap_and_draws_the_stable_latency_cdf() -> None:
    h = History()
    members = [f"u{i:03d}" for i in range(150)]
    for user in ("a", *members):
        h.connect(user).join(user, "big")
    h.room_send("a", "big", 1).room_send("a", "big", 2)
    for user in members[:20]:  # 20 get message 1, the other 130 lose it; everyone loses message 2
        h.room_recv(user, "a", "big", 1)
    frame = h.finished().frame()
    analysis = analyse(frame)
    shown, left_out = member_rows(analysis)
    assert len(shown) == 100 and left_out == 50
    assert shown[0] == {"room": "big", "member": "u020", "expected": 2, "delivered": 0, "lost": 2, "unseen": 0,
                        "duplicated": 0, "unexpected": 0}  # the 130 who lost both come first, by name
    section = rooms_section(check(frame).to_dict(), analysis)
    assert section is not None and section["member_count"] == 151 and section["members_left_out"] == 50
    assert charts_for(analysis, frame, "t")["rooms"].startswith("data:image/png;base64,")


def test_a_room_without_sends_shows_0_sends_and_no_other_figure() -> None:
    h = History().connect("a").connect("b").connect("c").join("b", "r").join("c", "q")
    h.room_send("a", "r", 1, at_ms=100).room_recv("b", "a", "r", 1, at_ms=112)
    doc = check(h.finished().frame()).to_dict()
    lines = rooms_markdown(doc)
    assert "| q | 0 | - | - | - | - | - | - | - | - | - | - | - |" in lines
    assert "| r | 1 | 1 | 1.0 | 1 | 1 | 0 | 0 | 0 | 0 | 12.0 | 12.0 | 1 |" in lines
    assert lines[3] == ("1 room send to 1 room (1 more without a send) → 1 expected copy (fan-out 1.0): 1 delivered, "
                        "0 lost, 0 unseen; stable latency p50 12.0 ms, p99 12.0 ms (n 1: over the room messages "
                        "that reached every expected member only).")
    assert "1 room had no send (q): nothing to judge there, so no figure but 0 sends." in lines


def test_counts_say_they_count_room_copies_and_add_up() -> None:
    h = History().connect("a").connect("b").connect("c").join("b", "r").join("c", "r")
    h.send("a", "b", 1).recv("b", "a", "b", 1).room_send("a", "r", 2).room_recv("b", "a", "r", 2)
    doc = check(h.finished().frame()).to_dict()
    note = ("Counts are per copy: a room send counts once for each member that had to receive it. 3 acknowledged "
            "= 2 copies of 1 acknowledged room send (one per expected member) + 1 point-to-point message.")
    assert copies_note(doc) == note
    assert note in render_markdown(doc).splitlines()
    assert summary_lines(doc)[3] == "        " + note
    no_rooms = check(History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).finished().frame()).to_dict()
    assert copies_note(no_rooms) is None


def test_the_rooms_section_says_what_membership_rested_on() -> None:
    """Joins asked / acknowledged (a rejoin is not a new join), a refused rejoin and a receipt without a room, in
    words, on both pages."""
    h = _room("b", "c").room_send("a", "r", 1).room_recv("b", "a", "r", 1)
    h._add(None, process="c", type="ok", f="recv", msg_id=History.room_mid("a", "r", 1), sender="a", recipient="c",
           seq=1)
    h.disconnect("c").connect("c").join("c", "r", outcome="fail")
    frame = h.finished().frame()
    doc = check(frame).to_dict()
    note = ("Membership: 3 of 3 joins acknowledged by the server; 1 rejoin after a reconnect refused (membership "
            "certain until each, only possible after); 1 receipt without a room judged in the room their message "
            "was sent to.")
    assert membership_note(doc["details"]["rooms"]) == note
    assert note in rooms_markdown(doc)
    section = rooms_section(doc, analyse(frame))
    assert section is not None and section["membership"] == note
    assert membership_note({"joins": {"asked": 0, "acknowledged": 0}}) is None
