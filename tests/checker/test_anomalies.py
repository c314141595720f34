"""Each anomaly type injected into a known history, with exact counts and ids."""

from __future__ import annotations

from harness.checker import CheckOptions, analyse, check
from tests.checker.builders import History
from tests.checker.test_check import counts


class TestOrdering:
    def test_skip_later_filled_is_skipped_and_reordered_not_gap(self) -> None:
        h = History().connect("b")
        for seq in (1, 2, 3, 4, 5):
            h.send("a", "b", seq)
        for seq in (1, 4, 2, 3, 5):
            h.recv("b", "a", "b", seq)
        verdict = check(h.finished().frame(), CheckOptions(ordered=True))
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=5, acknowledged=5, delivered=5, reordered=2, skipped=1)
        assert verdict.examples["skipped"] == ["a>b#4"]
        assert verdict.examples["reordered"] == ["a>b#2", "a>b#3"]

    def test_skip_never_filled_is_a_gap_and_lost(self) -> None:
        h = History().connect("b")
        for seq in (1, 2, 3, 4):
            h.send("a", "b", seq)
        for seq in (1, 3, 4):
            h.recv("b", "a", "b", seq)
        verdict = check(h.finished().frame())
        assert verdict.counts == counts(attempted=4, acknowledged=4, delivered=3, lost=1, skipped=1, gap=1)
        assert verdict.examples["gap"] == ["a>b#2"] == verdict.lost_ids

    def test_lost_tail_is_not_a_gap(self) -> None:
        h = History().connect("b").send("a", "b", 1).send("a", "b", 2).recv("b", "a", "b", 1)
        verdict = check(h.finished().frame())
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, lost=1)

    def test_jumping_over_a_failed_send_is_not_a_skip(self) -> None:
        h = History().connect("b").send("a", "b", 1).send("a", "b", 2, "fail").send("a", "b", 3)
        h.recv("b", "a", "b", 1).recv("b", "a", "b", 3)
        verdict = check(h.finished().frame(), CheckOptions(ordered=True))
        assert verdict.valid is True
        assert verdict.counts == counts(attempted=3, acknowledged=2, failed=1, delivered=2)

    def test_duplicate_at_different_offsets(self) -> None:
        h = History().connect("b").send("a", "b", 1).send("a", "b", 2)
        h.recv("b", "a", "b", 1, offset="10").recv("b", "a", "b", 1, offset="10")  # same copy redelivered
        h.recv("b", "a", "b", 2, offset="11").recv("b", "a", "b", 2, offset="12")  # stored twice
        verdict = check(h.finished().frame())
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=2, duplicated=2, duplicate_offsets=1)
        assert verdict.examples["duplicate_offsets"] == ["a>b#2"]

    def test_streams_are_independent(self) -> None:
        h = History().connect("b").connect("c")
        h.send("a", "b", 1).send("a", "c", 1).send("a", "b", 2).send("a", "c", 2)
        h.recv("c", "a", "c", 2).recv("b", "a", "b", 1).recv("b", "a", "b", 2).recv("c", "a", "c", 1)
        verdict = check(h.finished().frame())
        assert verdict.counts == counts(attempted=4, acknowledged=4, delivered=4, reordered=1, skipped=1)
        assert verdict.examples["reordered"] == ["a>c#1"]


class TestClaims:
    def test_effectively_once_makes_duplicates_invalid(self) -> None:
        h = History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).recv("b", "a", "b", 1).finished()
        assert check(h.frame()).valid is True
        strict = check(h.frame(), CheckOptions(delivery="effectively-once"))
        assert strict.valid is False
        assert strict.details["claim"] == {"delivery": "effectively-once", "ordered": False, "held": False,
                                           "violations": ["duplicated=1"]}

    def test_at_most_once_claim_holds_despite_loss_but_valid_reports_it(self) -> None:
        h = History().connect("b").send("a", "b", 1).send("a", "b", 2).recv("b", "a", "b", 2).finished()
        verdict = check(h.frame(), CheckOptions(delivery="at-most-once", ordered=True))
        assert verdict.valid is False
        assert verdict.details["claim"]["held"] is True

    def test_at_least_once_claim_unknown_when_unjudgeable(self) -> None:
        h = History().connect("b").send("a", "b", 1).disconnect("b").finished()
        verdict = check(h.frame())
        assert verdict.details["claim"]["held"] == "unknown"


class TestLatency:
    def test_live_and_replayed_split_by_connection_epoch(self) -> None:
        h = History().connect("b", at_ms=0, conn=1).phase("start", at_ms=1)
        h.send("a", "b", 1).recv("b", "a", "b", 1, at_ms=12, conn=1)  # live: 10 ms after invoke at 2
        h.invoke("a", "b", 2, at_ms=100).ok("a", "b", 2, at_ms=101)  # sent while b's socket was dead
        h.disconnect("b", at_ms=500).connect("b", at_ms=1000, conn=2)
        h.recv("b", "a", "b", 2, at_ms=1020, conn=2)  # replayed: 920 ms after send, 20 ms after reconnect
        a = analyse(h.finished().frame())
        assert a.counts["replayed"] == 1
        assert (a.latency["live"].max, a.latency["live"].count) == (10.0, 1)
        assert (a.latency["redelivery"].max, a.latency["redelivery"].count) == (920.0, 1)
        assert a.latency["redelivery_since_reconnect"].max == 20.0
        assert a.latency["delivery"].count == 2

    def test_catch_up_after_heal(self) -> None:
        h = History().connect("b", at_ms=0, conn=1, cohort="cb").connect("c", at_ms=0, conn=1, cohort="cc")
        h.fault("inject", "b-down", "cb", at_ms=10)
        h.invoke("a", "b", 1, at_ms=20).ok("a", "b", 1, at_ms=21)
        h.invoke("a", "c", 1, at_ms=22).ok("a", "c", 1, at_ms=23).recv("c", "a", "c", 1, at_ms=24, conn=1)
        h.fault("heal", "b-down", "cb", at_ms=100)
        h.connect("b", at_ms=150, conn=2).recv("b", "a", "b", 1, at_ms=180, conn=2)
        a = analyse(h.finished().frame())
        assert a.catch_up == [{"fault": "b-down", "cohort": "cb", "heal_ns": 100_000_000, "pending_at_heal": 1,
                               "never_arrived": 0, "catch_up_ms": 80.0}]

    def test_catch_up_is_none_when_something_never_arrives(self) -> None:
        h = History().connect("b", conn=1, cohort="cb").fault("inject", "f", "cb").send("a", "b", 1)
        h.fault("heal", "f", "cb")
        assert analyse(h.finished().frame()).catch_up[0]["catch_up_ms"] is None


class TestUnseenOverTime:
    def test_unseen_rises_during_outage_and_falls_on_redelivery(self) -> None:
        h = History().connect("b").phase("start", at_ms=0)
        h.invoke("a", "b", 1, at_ms=50).ok("a", "b", 1, at_ms=60)
        h.invoke("a", "b", 2, at_ms=150).ok("a", "b", 2, at_ms=160)
        h.recv("b", "a", "b", 1, at_ms=350).recv("b", "a", "b", 2, at_ms=360)
        series = analyse(h.finished().frame()).over_time
        assert list(series["unseen"][:5]) == [0, 1, 2, 2, 0]
        assert list(series["delivered"][:5]) == [0, 0, 0, 0, 2]
        assert list(series["sent"][:5]) == [0, 1, 2, 2, 2]


class TestObserverHealth:
    def test_a_crashed_worker_makes_its_users_unknown_never_lost(self) -> None:
        h = History().connect("b", node="w1").connect("c", node="w2")
        h.send("a", "b", 1).send("a", "c", 1).recv("c", "a", "c", 1, node="w2")
        h.phase("drain_end", quiescent=False).phase("end").node_closed("local").node_closed("w2")
        verdict = check(h.frame())
        assert verdict.valid == "unknown"
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, unseen=1)
        assert verdict.details["unhealthy_nodes"] == {
            "w1": "its ledger was never closed (the load process stopped abruptly)"}
        assert "observed by unhealthy load process(es) w1" in (verdict.reason or "")

    def test_damaged_node_reported_by_the_reader(self) -> None:
        h = History().connect("b", node="w1").send("a", "b", 1).finished()
        verdict = check(h.frame(), CheckOptions(damaged_nodes={"w1": "2 unreadable line(s)"}))
        assert verdict.valid == "unknown"
        assert verdict.counts == counts(attempted=1, acknowledged=1, unseen=1)

    def test_healthy_nodes_still_judged(self) -> None:
        h = History().connect("b", node="w1").connect("c", node="w2").send("a", "b", 1).send("a", "c", 1)
        h.recv("b", "a", "b", 1, node="w1").finished()
        verdict = check(h.frame(), CheckOptions(damaged_nodes={"w1": "torn line"}))
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, lost=1)


    def test_a_receipt_whose_send_died_with_its_worker_is_unverifiable_not_unexpected(self) -> None:
        # w1 ran sender a and died before shipping a's second send; c (on healthy w2) received it.
        h = History().connect("a", node="w1").connect("c", node="w2")
        h._add(None, node="w1", process="a", type="invoke", f="send", msg_id="a>c#1", sender="a", recipient="c", seq=1)
        h._add(None, node="w1", process="a", type="ok", f="send", msg_id="a>c#1", sender="a", recipient="c", seq=1)
        h.recv("c", "a", "c", 1, node="w2").recv("c", "a", "c", 2, node="w2")
        h.phase("drain_end", quiescent=True).phase("end").node_closed("local").node_closed("w2")
        verdict = check(h.frame())
        assert verdict.valid == "unknown"
        assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1, unverifiable=1)
        assert verdict.examples["unverifiable"] == ["a>c#2"] and verdict.examples["unexpected"] == []
        assert "cannot tell whether they were sent" in (verdict.reason or "")

    def test_the_same_receipt_from_a_healthy_sender_is_unexpected(self) -> None:
        h = History().connect("a", node="w1").connect("c", node="w2").send("a", "c", 1)
        h.recv("c", "a", "c", 1, node="w2").recv("c", "a", "c", 2, node="w2").finished()
        h.node_closed("local").node_closed("w1").node_closed("w2")
        verdict = check(h.frame())
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1, unexpected=1)

    def test_a_receipt_whose_send_was_cut_off_by_an_interrupted_run_is_unverifiable(self) -> None:
        # The load process was SIGKILLed: a's second send never reached the ledger, c's receipt of it did.
        h = History().connect("a", node="w1").connect("c", node="w2").send("a", "c", 1)
        h.recv("c", "a", "c", 1, node="w2").recv("c", "a", "c", 2, node="w2")
        verdict = check(h.frame())  # no end phase, no node closed
        assert verdict.valid == "unknown"
        assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1, unverifiable=1)
        assert verdict.examples["unverifiable"] == ["a>c#2"] and verdict.examples["unexpected"] == []
        assert "incomplete" in (verdict.reason or "")

    def test_a_receipt_by_the_wrong_user_stays_unexpected_even_from_a_damaged_node(self) -> None:
        h = History().connect("b", node="w1").connect("c").send("a", "b", 1).recv("b", "a", "b", 1, node="w1")
        h.recv("c", "a", "b", 1).finished()
        verdict = check(h.frame(), CheckOptions(damaged_nodes={"w1": "torn line"}, bad_lines=1))
        assert verdict.counts["unexpected"] == 1 and verdict.counts["unverifiable"] == 0

    def test_a_masters_node_report_covers_a_worker_none_of_whose_rows_arrived(self) -> None:
        h = History().connect("a").send("a", "b", 1).send("a", "b", 2)
        h._add(None, process="controller", type="event", f="node",
               data={"node": "worker-2", "users": ["b"], "complete": False, "reason": "0 of 9 rows arrived"})
        h.finished().node_closed("local")
        verdict = check(h.frame())
        assert verdict.valid == "unknown"
        assert verdict.counts == counts(attempted=2, acknowledged=2, unseen=2)
        assert verdict.details["unhealthy_nodes"] == {"worker-2": "0 of 9 rows arrived"}


class TestRestartClaims:
    def _restart_history(self) -> History:
        h = History().connect("b", conn=1).send("a", "b", 1)
        h._add(None, process="controller", type="event", f="fault",
               data={"action": "inject", "fault": "deploy", "type": "restart_target", "cohort": None})
        h._add(None, process="controller", type="event", f="fault",
               data={"action": "heal", "fault": "deploy", "type": "restart_target", "cohort": None})
        return h.finished()

    def test_loss_after_a_restart_is_outside_a_memory_targets_claim(self) -> None:
        verdict = check(self._restart_history().frame())
        assert verdict.valid is False  # the facts stay the facts
        claim = verdict.details["claim"]
        assert claim["held"] is True and claim["survives_restart"] is False and "outside" in claim["note"]

    def test_unseen_messages_cannot_break_a_claim_that_allows_their_loss(self) -> None:
        # b reconnected just before the drain ended (no fair chance): its message is unseen, not lost
        h = History().connect("b", conn=1).send("a", "b", 1)
        h._add(None, process="controller", type="event", f="fault",
               data={"action": "inject", "fault": "deploy", "type": "restart_target", "cohort": None})
        h._add(None, process="controller", type="event", f="fault",
               data={"action": "heal", "fault": "deploy", "type": "restart_target", "cohort": None})
        h.phase("start", fair_chance_s=3.0).disconnect("b").connect("b", at_ms=4000, conn=2)
        h.phase("drain_end", at_ms=5000, quiescent=True).phase("end").node_closed("local")
        memory = check(h.frame())
        assert memory.counts == counts(attempted=1, acknowledged=1, unseen=1) and memory.valid == "unknown"
        assert memory.details["claim"]["held"] is True  # a loss would be outside its claim anyway
        store = check(h.frame(), CheckOptions(survives_restart=True))
        assert store.details["claim"]["held"] == "unknown"  # a loss would break it: cannot tell

    def test_loss_after_a_restart_breaks_a_survives_restart_claim(self) -> None:
        verdict = check(self._restart_history().frame(), CheckOptions(survives_restart=True))
        assert verdict.details["claim"]["held"] is False
        assert verdict.details["claim"]["violations"] == ["lost=1"]
