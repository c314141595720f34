"""A verdict is only as good as the experiment: faults that did not happen and damaged records are never a PASS.

Every case builds a run in which every acknowledged message *was* delivered, so the only thing that can keep
the verdict from ``True`` is the experiment itself; exact counts are asserted so nothing else moved.
"""

from __future__ import annotations

from typing import Any

from harness.checker import CheckOptions, check, exit_code
from tests.checker.builders import History
from tests.checker.test_check import counts

SCHEDULE = [{"fault": "u1-blackhole", "type": "timeout", "cohort": "u1", "starts_s": [1.0], "duration_s": 2.0}]


def _delivered_run(schedule: list[dict[str, Any]] | None = None) -> History:
    """a → b, three messages, all delivered; the fault schedule goes into the ``start`` phase."""
    h = History().connect("a").connect("b").phase("start", faults=schedule if schedule is not None else SCHEDULE)
    for seq in (1, 2, 3):
        h.send("a", "b", seq).recv("b", "a", "b", seq)
    return h


DELIVERED = counts(attempted=3, acknowledged=3, delivered=3)


class TestFaultsThatHappened:
    def test_scheduled_fault_injected_and_healed_passes(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1", at_ms=1010)
        h.fault("heal", "u1-blackhole", "u1", at_ms=3010)
        verdict = check(h.finished().frame())
        assert verdict.valid is True
        assert verdict.counts == DELIVERED
        faults = verdict.details["faults"]
        assert {k: faults[k] for k in ("scheduled", "applied", "problems")} == {
            "scheduled": 1, "applied": 1, "problems": []}
        assert [e["fault"] for e in faults["effects"]] == ["u1-blackhole"]

    def test_a_ledger_without_a_schedule_is_judged_as_before(self) -> None:
        """Ledgers written before schedules were recorded (or by hand) carry no claim to check."""
        h = History().connect("a").connect("b").phase("start")
        h.send("a", "b", 1).recv("b", "a", "b", 1)
        verdict = check(h.finished().frame())
        assert verdict.valid is True
        assert verdict.details["faults"] == {"scheduled": 0, "applied": 0, "problems": [], "effects": []}

    def test_manual_faults_from_the_web_ui_do_not_count_against_the_schedule(self) -> None:
        h = _delivered_run([]).fault("inject", "extra", "u1").fault("heal", "extra", "u1")
        verdict = check(h.finished().frame())
        assert verdict.valid is True


class TestFaultsThatDidNot:
    def test_a_fault_the_proxy_refused_is_unknown_never_a_pass(self) -> None:
        h = _delivered_run()
        h._add(None, process="controller", type="event", f="fault", data={
            "action": "failed", "fault": "u1-blackhole", "type": "bandwidth", "cohort": "u1",
            "error": "proxy refused: 400 rate must be >= 0"})
        verdict = check(h.finished().frame())
        assert verdict.valid == "unknown"
        assert verdict.counts == DELIVERED
        assert exit_code(verdict) == 3
        assert any("fault u1-blackhole could not be applied: proxy refused: 400 rate must be >= 0" in r
                   for r in verdict.reasons), verdict.reasons
        assert verdict.details["claim"]["held"] == "unknown"

    def test_a_scheduled_fault_that_never_appears_is_unknown(self) -> None:
        verdict = check(_delivered_run().finished().frame())
        assert verdict.valid == "unknown"
        assert verdict.counts == DELIVERED
        assert verdict.details["faults"]["applied"] == 0
        assert any("u1-blackhole: 0 of 1 scheduled occurrence(s) applied" in r for r in verdict.reasons)

    def test_a_repeated_fault_missing_one_occurrence_is_unknown(self) -> None:
        schedule = [{**SCHEDULE[0], "starts_s": [1.0, 4.0]}]
        h = _delivered_run(schedule).fault("inject", "u1-blackhole", "u1").fault("heal", "u1-blackhole", "u1")
        verdict = check(h.finished().frame())
        assert verdict.valid == "unknown"
        assert any("1 of 2 scheduled occurrence(s) applied" in r for r in verdict.reasons)

    def test_a_fault_never_healed_is_unknown(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1")
        verdict = check(h.finished().frame())
        assert verdict.valid == "unknown"
        assert any("u1-blackhole was never healed: the drain ran under the fault" in r for r in verdict.reasons)

    def test_a_fault_left_open_by_a_run_cut_short_says_there_was_no_drain(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1").phase("end").close_nodes()
        verdict = check(h.frame())
        assert verdict.valid == "unknown" and verdict.counts == DELIVERED
        assert verdict.details["faults"]["problems"] == [
            "fault u1-blackhole was never healed: the run ended under the fault, without a drain"]

    def test_a_target_that_died_on_its_own_is_never_a_pass(self) -> None:
        """A ``kill -9`` from outside while every acknowledged message had arrived: PASS before process_exit."""
        h = _delivered_run([])  # its start phase is the third row: 3 ms
        h._add(2603, process="controller", type="event", f="process_exit",
               data={"role": "target", "pid": 4242, "code": -9, "phase": "sending"})
        verdict = check(h.finished().frame())
        assert verdict.valid == "unknown" and verdict.counts == DELIVERED
        assert verdict.details["faults"]["problems"] == [
            "the target (PID 4242) died on its own (killed by signal 9) 2.6 s after sending started, during "
            "sending, and was not started again: a crash the scenario did not schedule"]
        assert exit_code(verdict) != 0

    def test_a_failed_fault_does_not_hide_real_loss(self) -> None:
        h = History().connect("a").connect("b").phase("start", faults=SCHEDULE)
        h.send("a", "b", 1)  # acknowledged, never received, recipient connected throughout
        h._add(None, process="controller", type="event", f="fault",
               data={"action": "failed", "fault": "u1-blackhole", "error": "boom"})
        verdict = check(h.finished().frame())
        assert verdict.valid is False
        assert verdict.counts == counts(attempted=1, acknowledged=1, lost=1)


class TestDamagedRecords:
    def test_an_index_hole_makes_the_node_damaged_and_its_messages_unseen_not_lost(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1").fault("heal", "u1-blackhole", "u1")
        h.send("a", "b", 4).recv("b", "a", "b", 4).finished()
        receipt = next(i for i, r in enumerate(h.rows) if r["f"] == "recv" and r["seq"] == 4)
        del h.rows[receipt]  # a receipt line deleted from the file: the per-node index shows the hole
        verdict = check(h.frame())
        assert verdict.valid == "unknown"
        assert verdict.counts == counts(attempted=4, acknowledged=4, delivered=3, unseen=1)
        assert verdict.details["unhealthy_nodes"] == {"local": f"ledger rows missing: index {receipt + 1}"}

    def test_a_damaged_node_is_unknown_even_when_everything_arrived(self) -> None:
        """Unreadable lines could hide an unexpected receipt or a fault row: never a pass."""
        h = _delivered_run().fault("inject", "u1-blackhole", "u1").fault("heal", "u1-blackhole", "u1")
        verdict = check(h.finished().frame(), CheckOptions(damaged_nodes={"local": "1 unreadable line (l.jsonl:5)"}))
        assert verdict.valid == "unknown"
        assert verdict.counts == DELIVERED
        assert any("l.jsonl:5" in r for r in verdict.reasons)

    def test_duplicate_indexes_are_damage_too(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1").fault("heal", "u1-blackhole", "u1").finished()
        h.rows.append(dict(h.rows[3]))  # a line written twice
        verdict = check(h.frame())
        assert verdict.valid == "unknown"
        assert "index 4 appears twice" in verdict.details["unhealthy_nodes"]["local"]


def _traffic(received: int) -> dict[str, Any]:
    return {"t_ns": 1, "bytes": {"upstream": {"received": received, "sent": received},
                                 "downstream": {"received": 0, "sent": 0}}}


def _with_evidence(before: int, at_heal: int, send_during: bool) -> History:
    """a (cohort c1) → b (cohort c2); the fault hits c2's listener; byte counters as the proxy reported them."""
    h = History().connect("a", cohort="c1").connect("b", cohort="c2")
    h.phase("start", faults=[{"fault": "f", "type": "timeout", "cohort": "c2", "starts_s": [1.0],
                              "duration_s": 1.0}])
    h.send("a", "b", 1).recv("b", "a", "b", 1)
    h._add(1000, process="controller", type="event", f="fault", data={
        "action": "inject", "fault": "f", "cohort": "c2", "traffic_before": _traffic(before),
        "traffic_at": _traffic(before)})
    if send_during:
        h.send("a", "b", 2).recv("b", "a", "b", 2)
    h._add(2000, process="controller", type="event", f="fault", data={
        "action": "heal", "fault": "f", "cohort": "c2", "traffic_at": _traffic(at_heal)})
    return h.finished()


class TestFaultEvidence:
    def test_a_fault_that_carried_bytes_and_messages_supports_the_verdict(self) -> None:
        verdict = check(_with_evidence(1000, 1500, send_during=True).frame())
        assert verdict.valid is True, verdict.reasons
        assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=2)

    def test_a_listener_that_carried_nothing_means_the_fault_touched_no_traffic(self) -> None:
        """A driver that bypasses the proxy: the fault rows are there, no byte went through the listener."""
        verdict = check(_with_evidence(0, 0, send_during=True).frame())
        assert verdict.valid == "unknown"
        assert any("fault f touched no traffic" in r and "self.slot.url" in r for r in verdict.reasons)

    def test_a_fault_while_its_cohort_had_no_messages_proves_nothing(self) -> None:
        verdict = check(_with_evidence(1000, 1040, send_during=False).frame())  # heartbeats only
        assert verdict.valid == "unknown"
        assert any("fault f touched no message: nothing was sent to or from cohort c2" in r
                   for r in verdict.reasons)
        assert verdict.counts == counts(attempted=1, acknowledged=1, delivered=1)

    def test_a_window_healed_from_the_web_ui_still_needs_its_evidence(self) -> None:
        h = _with_evidence(0, 0, send_during=True)
        for row in h.rows:
            if row["f"] == "fault" and row["data"]["action"] == "heal":
                row["data"]["source"] = "web-ui"
        verdict = check(h.frame())
        assert verdict.valid == "unknown"
        assert any("fault f touched no traffic" in r for r in verdict.reasons)


class TestFaultTiming:
    def test_a_fault_injected_late_did_not_test_its_schedule(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1", at_ms=4000)  # scheduled at 1 s
        h.fault("heal", "u1-blackhole", "u1", at_ms=6000)
        verdict = check(h.finished().frame())
        assert verdict.valid == "unknown" and verdict.counts == DELIVERED
        assert any("injected 3.0 s later than scheduled" in r for r in verdict.reasons), verdict.reasons
        assert verdict.details["faults"]["effects"][0]["late_s"] == 2.997  # the start phase was at 3 ms

    def test_a_toxic_healed_early_did_not_test_its_fault(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1", at_ms=1000)
        h.fault("heal", "u1-blackhole", "u1", at_ms=1500)  # 0.5 s of its 2 s
        verdict = check(h.finished().frame())
        assert verdict.valid == "unknown"
        assert any("lasted 0.5 s of its 2 s (healed early by the timeline)" in r for r in verdict.reasons)

    def test_a_window_opened_by_hand_keeps_its_own_times(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1", at_ms=1000)
        h.fault("heal", "u1-blackhole", "u1", at_ms=3000)
        h._add(5000, process="controller", type="event", f="fault",
               data={"action": "inject", "fault": "u1-blackhole", "cohort": "u1", "source": "web-ui"})
        h._add(5200, process="controller", type="event", f="fault",
               data={"action": "heal", "fault": "u1-blackhole", "cohort": "u1", "source": "web-ui"})
        assert check(h.finished().frame()).valid is True

    def test_within_tolerance_is_fine(self) -> None:
        h = _delivered_run().fault("inject", "u1-blackhole", "u1", at_ms=2500)  # 1.5 s late, 1.8 s long
        h.fault("heal", "u1-blackhole", "u1", at_ms=4300)
        assert check(h.finished().frame()).valid is True


class TestFaultEffects:
    """What each fault measurably did, from the ledger: exact values for a known history."""

    def test_a_blackhole_that_bit_disconnected_its_cohort_stalled_receipts_and_slowed_delivery(self) -> None:
        h = History().connect("a", cohort="c1", at_ms=0, conn=1).connect("b", cohort="c2", at_ms=0, conn=1)
        h.phase("start", at_ms=0, fair_chance_s=2.0,
                faults=[{"fault": "f", "type": "timeout", "cohort": "c2", "starts_s": [1.0], "duration_s": 2.0}])
        h.send("a", "b", 1).recv("b", "a", "b", 1, at_ms=20)  # sent at 1 ms: 19 ms
        h.invoke("a", "b", 2, at_ms=500).ok("a", "b", 2, at_ms=501).recv("b", "a", "b", 2, at_ms=520)  # 20 ms
        h._add(1000, process="controller", type="event", f="fault", data={
            "action": "inject", "fault": "f", "type": "timeout", "cohort": "c2",
            "traffic_before": _traffic(1000), "traffic_at": _traffic(1400)})
        h.invoke("a", "b", 3, at_ms=1200).ok("a", "b", 3, at_ms=1201)
        h._add(2500, process="b", type="event", f="disconnect", error="ping timeout")
        h._add(3000, process="controller", type="event", f="fault", data={
            "action": "heal", "fault": "f", "type": "timeout", "cohort": "c2", "traffic_at": _traffic(1900)})
        h.connect("b", at_ms=3750, conn=2).recv("b", "a", "b", 3, at_ms=3800)  # replayed: 2,600 ms
        effect = check(h.finished().frame()).details["faults"]["effects"]
        assert effect == [{"fault": "f", "occurrence": 1, "type": "timeout", "cohort": "c2", "active_s": 2.0,
                           "bytes_before": 400, "bytes_during": 500, "disconnects": 1, "back_after_heal_s": 0.75,
                           "receipts_before": 2, "receipts_during": 0,
                           "latency_ms_before": 19.5, "latency_ms_during": 2600.0, "late_s": 0.0}]

    def test_a_kill_replaced_the_target_and_its_restart_took_time_to_be_ready(self) -> None:
        h = History().connect("a", at_ms=0).connect("b", at_ms=0)
        h.phase("start", at_ms=0, fair_chance_s=2.0,
                faults=[{"fault": "crash", "type": "kill_target", "cohort": None, "starts_s": [1.0],
                         "duration_s": 1.0}])
        h.send("a", "b", 1).recv("b", "a", "b", 1, at_ms=30)
        h._add(1000, process="controller", type="event", f="fault", data={
            "action": "inject", "fault": "crash", "type": "kill_target", "cohort": None,
            "pids": {"target": 100, "proxy": 7, "store": 9}})
        h._add(1001, process="a", type="event", f="disconnect", error="transport closed")
        h._add(1001, process="b", type="event", f="disconnect", error="transport closed")
        h._add(2400, process="controller", type="event", f="fault", data={
            "action": "heal", "fault": "crash", "type": "kill_target", "cohort": None,
            "pids": {"target": 200, "proxy": 7, "store": 9}})
        h.connect("a", at_ms=2600).connect("b", at_ms=2900).send("a", "b", 2).recv("b", "a", "b", 2)
        effect = check(h.finished().frame()).details["faults"]["effects"][0]
        assert effect["replaced"] == ["target"] and effect["ready_after_s"] == 0.4
        assert effect["disconnects"] == 2 and effect["back_after_heal_s"] == 0.5
        assert effect["receipts_before"] == 1 and effect["receipts_during"] == 0

    def test_a_cohort_that_never_came_back_has_no_return_time(self) -> None:
        h = History().connect("b", cohort="c2", at_ms=0).phase(
            "start", at_ms=0, faults=[{"fault": "f", "type": "timeout", "cohort": "c2", "starts_s": [0.1],
                                       "duration_s": 1.0}])
        h.send("a", "b", 1).recv("b", "a", "b", 1)
        h._add(100, process="controller", type="event", f="fault", data={"action": "inject", "fault": "f",
                                                                         "type": "timeout", "cohort": "c2"})
        h._add(600, process="b", type="event", f="disconnect", error="ping timeout")
        h._add(1100, process="controller", type="event", f="fault", data={"action": "heal", "fault": "f",
                                                                          "type": "timeout", "cohort": "c2"})
        effect = check(h.finished().frame()).details["faults"]["effects"][0]
        assert effect["disconnects"] == 1 and effect["back_after_heal_s"] is None


    @staticmethod
    def _short_fault_near_the_end(disconnect_ms: int, error: str) -> dict[str, Any]:
        """A 1-s bandwidth fault healed at 1.1 s with a 5-s fair chance, the run's ``end`` at 2.1 s, and one
        disconnect of the cohort's user at ``disconnect_ms``: the effect of the fault."""
        h = History().connect("b", cohort="c2", at_ms=0, conn=1).phase(
            "start", at_ms=0, fair_chance_s=5.0,
            faults=[{"fault": "f", "type": "bandwidth", "cohort": "c2", "starts_s": [0.1], "duration_s": 1.0}])
        h.invoke("a", "b", 1, at_ms=10).ok("a", "b", 1, at_ms=11).recv("b", "a", "b", 1, at_ms=20)
        for at_ms, action in ((100, "inject"), (1100, "heal")):
            h._add(at_ms, process="controller", type="event", f="fault",
                   data={"action": action, "fault": "f", "type": "bandwidth", "cohort": "c2"})
        h._add(disconnect_ms, process="b", type="event", f="disconnect", error=error)
        h.phase("drain_end", at_ms=2000, quiescent=True).phase("end", at_ms=2100)
        effect: dict[str, Any] = check(h.close_nodes().frame()).details["faults"]["effects"][0]
        return effect

    def test_the_harness_closing_connections_after_the_end_is_not_the_faults_doing(self) -> None:
        """The fault's notice window (heal + fair chance) reaches past the run's ``end``, where the harness stops
        every user itself: those disconnects are teardown, not the fault's effect; one before the end is."""
        teardown = self._short_fault_near_the_end(2200, "client disconnect")
        assert teardown["disconnects"] == 0 and "back_after_heal_s" not in teardown
        noticed = self._short_fault_near_the_end(1900, "ping timeout")
        assert noticed["disconnects"] == 1 and noticed["back_after_heal_s"] is None


def test_a_ledger_cut_cleanly_after_its_end_is_damaged_not_a_pass() -> None:
    """The tail (a late ack, the node's close) cut off at a line boundary: no bad line, no index hole."""
    h = History().connect("a").connect("b").phase("start", faults=[])
    h.send("a", "b", 1).recv("b", "a", "b", 1).invoke("a", "b", 2)
    h.phase("drain_end", quiescent=False).phase("end")
    h.ok("a", "b", 2).node_closed("local")
    whole = check(h.frame())
    assert whole.valid is False and whole.counts["lost"] == 1
    h.rows = h.rows[:-2]
    cut = check(h.frame())
    assert cut.valid == "unknown"
    assert "never closed" in cut.details["unhealthy_nodes"]["local"]
