"""Forensic timelines: one pass for many messages, only the recipient's own context, a conclusion for each."""

from __future__ import annotations

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
