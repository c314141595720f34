"""Forensic timelines: one pass for many messages, only the recipient's own context, a conclusion for each."""

from __future__ import annotations

from pathlib import Path

from harness.checker import analyse
from harness.report.forensics import conclusion, timeline_for, timelines_for
from harness.report.html import forensics_for
from harness.report.marks import run_marks
from tests.checker.builders import History


def _two_cohorts() -> History:
    """b (cohort cb) loses a>b#2 during its outage; c (cohort cc) has its own outage and gets everything twice."""
    h = History()
    for user, cohort in (("a", "ca"), ("b", "cb"), ("c", "cc")):
        h.connect(user, at_ms=0, conn=1, cohort=cohort)
    h.phase("start", at_ms=1)
    h.invoke("a", "b", 1, at_ms=10).ok("a", "b", 1, at_ms=11).recv("b", "a", "b", 1, at_ms=12, conn=1)
    h.fault("inject", "b-out", "cb", at_ms=20).fault("inject", "c-out", "cc", at_ms=21)
    h.invoke("a", "b", 2, at_ms=30).ok("a", "b", 2, at_ms=31)
    h.invoke("a", "c", 1, at_ms=32).ok("a", "c", 1, at_ms=33)
    h.disconnect("b", at_ms=40).disconnect("c", at_ms=41)
    h.fault("heal", "b-out", "cb", at_ms=50).fault("heal", "c-out", "cc", at_ms=51)
    h.connect("b", at_ms=60, conn=2).connect("c", at_ms=61, conn=2)
    h.recv("c", "a", "c", 1, at_ms=62, conn=2).recv("c", "a", "c", 1, at_ms=63, conn=2)
    h.invoke("a", "b", 3, at_ms=70).ok("a", "b", 3, at_ms=71).recv("b", "a", "b", 3, at_ms=72, conn=2)
    return h.finished()


def test_many_timelines_in_one_pass_equal_one_at_a_time() -> None:
    frame = _two_cohorts().frame()
    analysis = analyse(frame)
    ids = ["a>b#2", "a>c#1", "a>b#1", "nobody>b#9"]
    together = timelines_for(frame, analysis, ids)
    assert together == {i: timeline_for(frame, analysis, i) for i in ids}
    assert together["nobody>b#9"] == []
    events = [e["event"] for e in together["a>b#2"]]
    # its own rows, b's connection changes and cb's fault; nothing of c or of cc's fault
    assert events == ["b connected (conn 1)", "fault b-out inject (timeout on cb)", "send invoked", "server acked",
                      "b disconnected (transport error)", "fault b-out heal (timeout on cb)", "b connected (conn 2)"]
    assert [e["t_ms"] for e in together["a>b#2"]] == [-1.0, 19.0, 29.0, 30.0, 39.0, 49.0, 59.0]
    assert [e["event"] for e in together["a>c#1"]][-2:] == ["received by c (conn 2)", "received by c (conn 2)"]
    assert "fault b-out inject (timeout on cb)" not in [e["event"] for e in together["a>c#1"]]


def test_each_category_has_its_conclusion_and_gaps_in_lost_are_not_repeated() -> None:
    frame = _two_cohorts().frame()
    analysis = analyse(frame)
    assert analysis.ids["lost"] == ["a>b#2"] and analysis.ids["gap"] == ["a>b#2"]
    assert analysis.ids["duplicated"] == ["a>c#1"]
    assert conclusion("lost", "a>b#2", analysis) == (
        "acknowledged by the server, not received by the end of the drain (72 ms) although b was connected then "
        "→ lost")
    assert conclusion("duplicated", "a>c#1", analysis) == "sent 1 time(s), received 2 times by c → duplicated"
    shown = forensics_for(frame, analysis)
    assert [x["msg_id"] for x in shown["lost"]] == ["a>b#2"]
    assert shown["gap"] == []  # the gap is the lost message, whose timeline is already there
    assert shown["duplicated"][0]["conclusion"].endswith("→ duplicated")


def test_lanes_show_who_dropped_and_who_lost_first() -> None:
    frame = _two_cohorts().frame()
    marks = run_marks(frame, analyse(frame))
    assert [(lane.process, lane.troubled) for lane in marks.lanes] == [("b", 1), ("c", 0)]
    assert [(len(lane.disconnects), len(lane.reconnects)) for lane in marks.lanes] == [(1, 1), (1, 1)]
    assert marks.lanes_left_out == 0
    one = run_marks(frame, analyse(frame), max_lanes=1)  # the recipient that lost a message keeps its lane
    assert [lane.process for lane in one.lanes] == ["b"] and one.lanes_left_out == 1


# -- rooms -------------------------------------------------------------------------------------------------------


def _lobby() -> History:
    """bob (cohort cb) joins the lobby 1.2 s before alice's send, is cut off by a fault while it is sent,
    reconnects 3.4 s after sending started and never gets it; carol does. dave joins after the send and still
    receives it; erin left before it; frank gets a copy in a room nobody sent it to."""
    h = History()
    for user, cohort in (("alice", "ca"), ("bob", "cb"), ("carol", "ca"), ("dave", "ca"), ("erin", "ca"),
                         ("frank", "ca")):
        h.connect(user, at_ms=0, conn=1, cohort=cohort)
    h.join("alice", "lobby", at_ms=10).join("carol", "lobby", at_ms=20).join("erin", "lobby", at_ms=30)
    h.join("bob", "lobby", at_ms=1099)  # acked at 1,100 ms = 0.1 s after the start
    h.phase("start", at_ms=1000)
    h.leave("erin", "lobby", at_ms=1500)
    h.fault("inject", "bob-out", "cb", at_ms=2000)
    h.room_send("alice", "lobby", 1, at_ms=2300)  # acked at 2,301 ms
    h.disconnect("bob", at_ms=2500).room_recv("carol", "alice", "lobby", 1, at_ms=2510)
    h.fault("heal", "bob-out", "cb", at_ms=3000)
    h.join("dave", "lobby", at_ms=3100).room_recv("dave", "alice", "lobby", 1, at_ms=3200)
    h.room_recv("erin", "alice", "lobby", 1, at_ms=3210)
    h.room_recv("frank", "alice", "lobby", 1, in_room="attic", at_ms=3220)
    h.connect("bob", at_ms=4400, conn=2)
    h.phase("drain_start", at_ms=5000).phase("drain_end", at_ms=10_000, quiescent=True).phase("end", at_ms=10_001)
    return h.close_nodes()


def test_a_lost_room_copy_shows_the_send_the_members_joins_connections_and_the_fault() -> None:
    frame = _lobby().frame()
    analysis = analyse(frame)
    assert analysis.ids["lost"] == ["alice>#lobby#1@bob"]
    assert analysis.ids["unexpected"] == ["alice>#lobby#1@dave", "alice>#lobby#1@erin",
                                          "alice>#lobby#1@frank (in attic)"]
    shown = forensics_for(frame, analysis)
    lost = shown["lost"][0]
    assert [(e["t_ms"], e["event"]) for e in lost["events"]] == [
        (-1000.0, "bob connected (conn 1)"),  # the connection it had before the window opens
        (99.0, "bob asked to join lobby"), (100.0, "bob joined lobby (server acked)"),
        (1000.0, "fault bob-out inject (timeout on cb)"),
        (1300.0, "send to room lobby invoked"), (1301.0, "server acked"),
        (1500.0, "bob disconnected (transport error)"),
        (2000.0, "fault bob-out heal (timeout on cb)"),
        (3400.0, "bob connected (conn 2)")]
    assert lost["conclusion"] == (
        "lost: bob was a member of lobby (joined 1.2 s before the send, never left) and connected from 3.4 s to "
        "the end of the drain (9.0 s), and never received it (fault bob-out hit its cohort cb from 1.0 s to "
        "2.0 s) → lost")


def test_unexpected_room_copies_say_why_the_receiver_was_not_a_member() -> None:
    frame = _lobby().frame()
    analysis = analyse(frame)
    words = {x["msg_id"]: x["conclusion"] for x in forensics_for(frame, analysis)["unexpected"]}
    assert words == {
        "alice>#lobby#1@dave": "received by dave in lobby, but dave was not a member then (its join of lobby was "
                               "acknowledged 0.8 s after the send) → unexpected",
        "alice>#lobby#1@erin": "received by erin in lobby, but erin was not a member then (had sent its leave of "
                               "lobby 0.8 s before the send was acknowledged) → unexpected",
        "alice>#lobby#1@frank (in attic)": "received by frank in attic, where this message was never sent "
                                           "→ unexpected"}
    erin = next(x for x in forensics_for(frame, analysis)["unexpected"] if x["msg_id"].endswith("@erin"))
    assert [e["event"] for e in erin["events"]] == [
        "erin connected (conn 1)", "erin asked to join lobby", "erin joined lobby (server acked)",
        "erin asked to leave lobby", "erin left lobby (server acked)", "send to room lobby invoked", "server acked",
        "received by erin in lobby"]


def test_one_conclusion_alone_looks_its_copy_up_itself() -> None:
    analysis = analyse(_lobby().frame())
    assert conclusion("lost", "alice>#lobby#1@bob", analysis).startswith(
        "lost: bob was a member of lobby (joined 1.2 s before the send, never left)")


def test_a_row_without_an_index_still_has_a_place_in_the_timeline(tmp_path: Path) -> None:
    """A damaged record (rows without an index) makes the verdict unknown; its report is still drawn, the
    timelines included (int() of a missing index broke the page)."""
    from harness.ledger.format import to_frame, write_parquet
    from harness.report.finalize import finalize

    h = History().phase("start").connect("a", conn=1).connect("b", conn=1)
    for seq in range(1, 5):
        h.send("a", "b", seq)
    h.recv("b", "a", "b", 1, conn=1).disconnect("b").connect("b", conn=2)
    h.finished()
    for row in h.rows:
        if row["f"] in ("connect", "disconnect") and row["process"] == "b":
            row["index"] = None
    write_parquet(to_frame(h.rows), tmp_path / "ledger.parquet")  # Parquet: such rows are kept (JSON Lines: bad)
    doc = finalize(tmp_path / "ledger.parquet", out_dir=tmp_path / "out")
    assert doc["valid"] == "unknown" and "3 row(s) without an index" in doc["reason"], doc["reason"]
    assert (tmp_path / "out" / "report.html").exists()
