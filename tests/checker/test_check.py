"""Checker verdicts on hand-built histories; every assertion covers the whole counts map."""

from __future__ import annotations

from typing import Any

from harness.checker import CheckOptions, check, exit_code
from tests.checker.builders import History

ZERO: dict[str, int] = {
    "attempted": 0, "acknowledged": 0, "failed": 0, "indeterminate": 0, "delivered": 0, "lost": 0,
    "unseen": 0, "duplicated": 0, "unexpected": 0, "unverifiable": 0, "recovered": 0, "delivered_after_fail": 0,
    "reordered": 0, "skipped": 0, "gap": 0, "duplicate_offsets": 0, "replayed": 0,
}


def counts(**changes: int) -> dict[str, Any]:
    return {**ZERO, **changes}


class TestEmpty:
    def test_empty_ledger_is_unknown_and_incomplete(self) -> None:
        verdict = check(History().frame())
        assert verdict.valid == "unknown"
        assert verdict.counts == ZERO
        assert verdict.complete is False
        assert exit_code(verdict) == 3

    def test_finished_run_without_sends_is_unknown(self) -> None:
        verdict = check(History().phase("start").finished().frame())
        assert verdict.valid == "unknown"
        assert verdict.reason == "no acknowledged sends: nothing to judge"
        assert verdict.details["claim"]["held"] == "unknown"  # a claim never "held" on nothing

    def test_nothing_acknowledged_is_no_claim_held_but_a_violation_still_counts(self) -> None:
        quiet = check(History().connect("a").connect("b").phase("start").finished().frame(),
                      CheckOptions(delivery="at-most-once"))
        assert quiet.details["claim"]["held"] == "unknown"
        h = History().connect("a").connect("b").phase("start").recv("b", "a", "b", 1)  # never sent
        broken = check(h.finished().frame(), CheckOptions(delivery="at-most-once"))
        assert broken.counts == counts(unexpected=1)
        assert broken.valid is False
        assert broken.details["claim"]["held"] is False
        assert broken.details["claim"]["violations"] == ["unexpected=1"]


class TestSane:
    def test_every_acked_send_delivered_once_in_order(self) -> None:
        h = History().connect("a").connect("b").phase("start")
        for seq in (1, 2, 3):
            h.send("a", "b", seq).recv("b", "a", "b", seq)
        verdict = check(h.finished().frame(), CheckOptions(ordered=True))
        assert verdict.valid is True
        assert verdict.counts == counts(attempted=3, acknowledged=3, delivered=3)
        assert verdict.lost_ids == []
        assert verdict.latency_ms["delivery"].count == 3
        assert exit_code(verdict) == 0

    def test_info_send_that_arrives_is_recovered_not_a_problem(self) -> None:
        # Jepsen total-queue "sane": one :info and one :ok enqueue, both dequeued.
        h = History().connect("b").invoke("a", "b", 1).info("a", "b", 1).send("a", "b", 2)
        h.recv("b", "a", "b", 1).recv("b", "a", "b", 2)
        verdict = check(h.finished().frame())
        assert verdict.valid is True
        assert verdict.counts == counts(attempted=2, acknowledged=1, indeterminate=1, delivered=2, recovered=1)
        assert verdict.examples["recovered"] == ["a>b#1"]

    def test_info_send_never_delivered_is_not_lost(self) -> None:
        h = History().connect("b").invoke("a", "b", 1).info("a", "b", 1).send("a", "b", 2).recv("b", "a", "b", 2)
        verdict = check(h.finished().frame())
        assert verdict.valid is True
        assert verdict.counts == counts(attempted=2, acknowledged=1, indeterminate=1, delivered=1)

    def test_send_without_completion_counts_as_indeterminate(self) -> None:
        h = History().connect("b").invoke("a", "b", 1).send("a", "b", 2).recv("b", "a", "b", 2)
        verdict = check(h.finished().frame())
        assert verdict.counts == counts(attempted=2, acknowledged=1, indeterminate=1, delivered=1)
        assert verdict.valid is True

    def test_duplicates_are_counted_but_do_not_invalidate(self) -> None:
        h = History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).recv("b", "a", "b", 1)
        h.recv("b", "a", "b", 1)
        verdict = check(h.finished().frame())
        assert verdict.valid is True
        assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1, duplicated=2)
        assert verdict.examples["duplicated"] == ["a>b#1"]

    def test_failed_send_never_delivered_is_fine(self) -> None:
        h = History().connect("b").send("a", "b", 1, "fail").send("a", "b", 2).recv("b", "a", "b", 2)
        verdict = check(h.finished().frame())
        assert verdict.valid is True
        assert verdict.counts == counts(attempted=2, acknowledged=1, failed=1, delivered=1)


class TestPathological:
    def test_jepsen_pathological_queue(self) -> None:
        # Jepsen total-queue "pathological": lost {:enqueued}, unexpected {:wtf}, duplicated {:dup}, ok-count 1.
        h = History().connect("b")
        h.send("a", "b", 1)  # "enqueued": acked, never dequeued
        h.send("a", "b", 2).recv("b", "a", "b", 2).recv("b", "a", "b", 2)  # "dup"
        h.recv("b", "x", "b", 99, msg_id="wtf")  # never attempted
        verdict = check(h.finished().frame())
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, lost=1, duplicated=1, unexpected=1,
                                        skipped=1, gap=1)  # seq 2 arrived over the lost seq 1
        assert verdict.lost_ids == ["a>b#1"]
        assert verdict.examples["unexpected"] == ["wtf"]
        assert exit_code(verdict) == 1

    def test_message_received_by_the_wrong_user_is_unexpected_and_still_lost(self) -> None:
        h = History().connect("b").connect("c").send("a", "b", 1).recv("c", "a", "b", 1)
        verdict = check(h.finished().frame())
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=1, acknowledged=1, lost=1, unexpected=1)

    def test_delivered_after_server_refused_is_invalid(self) -> None:
        h = History().connect("b").send("a", "b", 1, "fail").recv("b", "a", "b", 1).send("a", "b", 2)
        h.recv("b", "a", "b", 2)
        verdict = check(h.finished().frame())
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=2, acknowledged=1, failed=1, delivered=2, delivered_after_fail=1)

    def test_reordered_counts_always_and_invalidates_only_when_order_is_claimed(self) -> None:
        h = History().connect("b")
        for seq in (1, 2, 3, 4):
            h.send("a", "b", seq)
        for seq in (1, 3, 2, 4):
            h.recv("b", "a", "b", seq)
        h.send("c", "b", 1).recv("b", "c", "b", 1)  # other stream, unaffected
        frame = h.finished().frame()
        unordered = check(frame)
        assert unordered.valid is True
        assert unordered.counts == counts(attempted=5, acknowledged=5, delivered=5, reordered=1, skipped=1)
        assert unordered.examples["skipped"] == ["a>b#3"]
        assert unordered.examples["reordered"] == ["a>b#2"]
        ordered = check(frame, CheckOptions(ordered=True))
        assert ordered.valid is False
        assert ordered.counts == unordered.counts

    def test_redelivered_duplicate_is_not_reordered(self) -> None:
        h = History().connect("b").send("a", "b", 1).send("a", "b", 2)
        h.recv("b", "a", "b", 1).recv("b", "a", "b", 2).recv("b", "a", "b", 1)
        verdict = check(h.finished().frame(), CheckOptions(ordered=True))
        assert verdict.valid is True
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=2, duplicated=1)


class TestJudgeability:
    def test_interrupted_run_reports_unseen_never_lost(self) -> None:
        h = History().connect("b").phase("start").send("a", "b", 1).send("a", "b", 2).recv("b", "a", "b", 1)
        verdict = check(h.frame())
        assert verdict.valid == "unknown"
        assert verdict.complete is False
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, unseen=1)
        assert verdict.lost_ids == []
        assert verdict.reason is not None and "run incomplete" in verdict.reason

    def test_recipient_disconnected_at_drain_end_makes_its_messages_unseen(self) -> None:
        h = History().connect("b").connect("c").send("a", "b", 1).send("a", "c", 1).recv("c", "a", "c", 1)
        h.disconnect("b")
        verdict = check(h.finished().frame())
        assert verdict.valid == "unknown"
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, unseen=1)
        assert verdict.examples["unseen"] == ["a>b#1"]

    def test_reconnected_recipient_is_judged(self) -> None:
        h = History().connect("b").send("a", "b", 1).disconnect("b").connect("b")
        verdict = check(h.finished().frame())
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=1, acknowledged=1, lost=1)

    def test_unreadable_lines_turn_loss_into_unseen(self) -> None:
        h = History().connect("b").send("a", "b", 1)
        verdict = check(h.finished().frame(), CheckOptions(bad_lines=1))
        assert verdict.valid == "unknown"
        assert verdict.counts == counts(attempted=1, acknowledged=1, unseen=1)

    def test_lost_and_unknown_together_is_false(self) -> None:
        h = History().connect("b").connect("c").send("a", "b", 1).send("a", "c", 1).disconnect("c")
        verdict = check(h.finished().frame())
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=2, acknowledged=2, lost=1, unseen=1)

    def test_same_ledger_same_verdict(self) -> None:
        h = History().connect("b").send("a", "b", 1).send("a", "b", 2).recv("b", "a", "b", 2).finished()
        assert check(h.frame()).to_dict() == check(h.frame()).to_dict()
