"""The live picture of a run (pure over ledger rows and the live tracker, no Locust): phases in users' words
with their durations, the fault schedule as past / active / next, per-cohort sender and recipient numbers
that are provisional until the verdict and final after it, and the verdict banner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import Scenario
from harness.ledger.recorder import LedgerWriter
from harness.locust_ext.live import RunProgress, final_by_cohort, recipient_of, schedule_rows, snapshot, verdict_banner
from harness.run.context import RunContext, Slot

S = 1_000_000_000
SCHEDULE = [{"fault": "f1", "type": "timeout", "cohort": "u1", "starts_s": [2.0, 6.0], "duration_s": 1.0}]


def _phase(progress: RunProgress, name: str, t_s: float, **data: Any) -> None:
    progress.observe({"f": "phase", "t_ns": int(t_s * S), "data": {"phase": name, **data}})


def _fault(progress: RunProgress, action: str, t_s: float, source: str = "timeline") -> None:
    progress.observe({"f": "fault", "t_ns": int(t_s * S), "data": {"action": action, "fault": "f1",
                                                                     "type": "timeout", "cohort": "u1",
                                                                     "source": source}})


def _started() -> RunProgress:
    progress = RunProgress()
    _phase(progress, "connecting", 100.0)
    _phase(progress, "start", 101.0, faults=SCHEDULE)
    return progress


class TestPhases:
    def test_ledger_phases_read_in_users_words_with_durations(self) -> None:
        progress = _started()
        _phase(progress, "drain_start", 111.0)
        _phase(progress, "drain_end", 114.0)
        assert progress.phase_word() == "draining"
        assert progress.phase_list(int(115.5 * S)) == [
            {"phase": "connecting", "seconds": 1.0}, {"phase": "sending", "seconds": 10.0},
            {"phase": "draining", "seconds": 4.5, "current": True}]
        assert progress.elapsed_s(int(115.5 * S)) == 15.5

    def test_the_clock_stops_at_the_end(self) -> None:
        progress = _started()
        _phase(progress, "end", 112.0)
        assert progress.elapsed_s(int(500 * S)) == 12.0 and progress.phase_word() == "judging"

    def test_node_closed_is_not_a_phase(self) -> None:
        progress = _started()
        _phase(progress, "node_closed", 103.0)
        assert progress.phase == "start" and progress.changes == 2


class TestSchedule:
    def test_every_occurrence_is_next_then_active_then_past(self) -> None:
        progress = _started()
        assert [r["state"] for r in schedule_rows(progress, int(101.5 * S))] == ["next", "next"]
        _fault(progress, "inject", 103.0)
        assert [r["state"] for r in schedule_rows(progress, int(103.5 * S))] == ["active", "next"]
        _fault(progress, "heal", 104.0)
        rows = schedule_rows(progress, int(104.5 * S))
        assert [(r["start_s"], r["end_s"], r["state"]) for r in rows] == [(2.0, 3.0, "past"), (6.0, 7.0, "next")]

    def test_an_occurrence_never_injected_once_sending_stopped_is_not_applied(self) -> None:
        progress = _started()
        _phase(progress, "drain_start", 111.0)
        assert [r["state"] for r in schedule_rows(progress, int(112 * S))] == ["not applied", "not applied"]

    def test_manual_actions_are_listed_apart_and_do_not_count_as_the_timeline(self) -> None:
        progress = _started()
        _fault(progress, "inject", 102.0, source="web-ui")
        rows = schedule_rows(progress, int(102.5 * S))
        assert [r["state"] for r in rows] == ["next", "next", "injected by hand"]
        assert rows[2]["start_s"] == 1.0


def _context(tmp_path: Path) -> RunContext:
    scenario = Scenario.model_validate({
        "name": "t", "targets": ["naive"], "cohorts": [{"name": "u1", "users": 1}, {"name": "u2", "users": 1}]})
    writer = LedgerWriter(tmp_path / "ledger.jsonl", "r", "local")
    slots = [Slot(uid, cohort, "http://127.0.0.1:9", "t") for uid, cohort in scenario.user_ids()]
    return RunContext(scenario, "naive", "r", writer, slots)


def _traffic(ctx: RunContext) -> None:
    """u2 sends two messages to u1, both acknowledged; one arrives."""
    w = ctx.writer
    for uid in ("u1-0", "u2-0"):
        w.append(process=uid, type="event", f="connect", conn=1)
    for seq in (1, 2):
        msg = ctx.message_id("u2-0", "u1-0", seq)
        w.append(process="u2-0", type="invoke", f="send", msg_id=msg, recipient="u1-0")
        w.append(process="u2-0", type="ok", f="send", msg_id=msg, recipient="u1-0")
    w.append(process="u1-0", type="ok", f="recv", msg_id=ctx.message_id("u2-0", "u1-0", 1), recipient="u1-0")


class TestSnapshot:
    def test_numbers_are_provisional_while_the_run_goes(self, tmp_path: Path) -> None:
        ctx = _context(tmp_path)
        _traffic(ctx)
        state = snapshot(ctx, _started(), [("f1", "u1")], None, None, None, now_ns=int(103 * S))
        u1, u2 = state["cohorts"]
        assert u2["sender"] == {"sent": 2, "acked": 2, "failed": 0, "info": 0}
        assert u1["recipient"] == {"received": 1, "duplicated": 0, "reconnects": 0, "unseen_now": 1}
        assert (u1["faults_active"], u2["faults_active"]) == (["f1"], [])
        assert state["provisional"] is True and state["verdict"] is None
        assert state["totals"] == {"sent": 2, "acked": 2, "received": 1, "unseen_now": 1}

    def test_the_verdict_replaces_unseen_now_with_lost_and_unseen_per_cohort(self, tmp_path: Path) -> None:
        ctx = _context(tmp_path)
        _traffic(ctx)
        doc = {"valid": False, "reason": "1 acknowledged message(s) lost", "exit_code": 1,
               "counts": {"lost": 1, "acknowledged": 2, "delivered": 1}}
        ids = {"lost": [ctx.message_id("u2-0", "u1-0", 2)], "unseen": []}
        state = snapshot(ctx, _started(), [], doc, ids, "/delivery/report/report.html", now_ns=int(120 * S))
        u1, u2 = state["cohorts"]
        assert u1["recipient"] == {"received": 1, "duplicated": 0, "reconnects": 0, "lost": 1, "unseen": 0}
        assert u2["recipient"]["lost"] == 0 and "unseen_now" not in u2["recipient"]
        assert state["provisional"] is False and state["phase"] == "done"
        assert state["phases"][-1] == {"phase": "done", "seconds": 0.0, "current": True}
        assert state["verdict"]["label"] == "FAIL"
        assert state["verdict"]["report_url"] == "/delivery/report/report.html"


def test_lost_and_unseen_are_counted_by_the_recipients_cohort() -> None:
    assert recipient_of("ab12:u2-0>u1-0#17") == "u1-0"
    ids = {"lost": ["r:u2-0>u1-0#1", "r:u2-0>u1-0#2", "r:u1-0>u2-0#1"], "unseen": ["r:u1-0>u2-0#2"]}
    assert final_by_cohort(ids, {"u1-0": "u1", "u2-0": "u2"}) == {"u1": {"lost": 2, "unseen": 0},
                                                                  "u2": {"lost": 1, "unseen": 1}}


class TestBanner:
    def test_a_pass_names_what_was_delivered(self) -> None:
        banner = verdict_banner({"valid": True, "exit_code": 0, "counts": {"acknowledged": 5, "lost": 0},
                                 "details": {"claim": {"delivery": "at-least-once", "ordered": False,
                                                       "held": True}}}, None)
        assert banner["label"] == "PASS" and banner["headline"] == "all 5 acknowledged messages delivered"
        assert banner["claim"] == "at-least-once: held"
        assert [c["name"] for c in banner["counts"]] == ["lost", "acknowledged", "delivered", "unseen", "duplicated",
                                                         "unexpected"]

    def test_an_unknown_says_why_and_an_ordered_claim_shows_reordering(self) -> None:
        banner = verdict_banner({"valid": "unknown", "reason": "run interrupted", "exit_code": 3, "counts": {},
                                 "details": {"claim": {"delivery": "at-least-once", "ordered": True}}}, None)
        assert (banner["label"], banner["headline"]) == ("UNKNOWN", "run interrupted")
        assert banner["counts"][-1]["name"] == "reordered"
