"""The Rooms section of report.md and report.html, from a hand-built room history (exact figures)."""

from __future__ import annotations

from harness.checker import analyse, check
from harness.report.html import charts_for, rooms_section
from harness.report.rooms import member_rows, room_rows, rooms_markdown
from harness.report.summary import render_markdown
from tests.checker.builders import History
from tests.checker.test_rooms import _mixed


def test_report_md_has_the_rooms_table_the_rule_and_the_worst_members() -> None:
    lines = rooms_markdown(check(_mixed().frame()).to_dict())
    assert lines[:4] == ["", "## Rooms", "", "3 room sends to 2 rooms, fan-out 2.3: 7 expected receipts, 3 "
                         "delivered, 4 lost, 0 unseen; stable latency p50 -, p99 -."]
    assert lines[5].startswith("**Membership rule:** A message sent to a room must reach every member other than "
                               "its sender: every user whose join the server had acknowledged before it "
                               "acknowledged the message, and who had not yet sent its leave.")
    assert "| r | 2 | 4 | 3.0 | 6 | 3 | 3 | 0 | 1 | 0 | - | - |" in lines
    assert "| s | 1 | 1 | 1.0 | 1 | 0 | 1 | 0 | 0 | 1 | - | - |" in lines
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
