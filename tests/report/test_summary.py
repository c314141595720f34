"""The terminal and report.md say what the verdict stands on, and say UNHEALTHY when it stands on little."""

from __future__ import annotations

from harness.report.summary import experiment_line, render_markdown, summary_lines

DOC = {
    "valid": "unknown", "target": "ackmap", "reason": "experiment unhealthy: target saturated", "counts": {},
    "details": {
        "health": {"healthy": False, "connected_at_start": {"connected": 5000, "users": 5000},
                   "acknowledged_share": {"acknowledged": 112, "attempted": 57356, "share": 0.002},
                   "cpu_peak_pct": {"load": 100.0, "target": 97.5}},
        "faults": {"scheduled": 1, "applied": 1, "problems": []},
    },
}


def test_the_experiment_line_names_every_measured_fact() -> None:
    assert experiment_line(DOC) == ("experiment UNHEALTHY (the health measurements show a problem): 5,000/5,000 "
                                    "users connected; 112/57,356 sends acknowledged outside faults; 1/1 faults "
                                    "applied; peak CPU load 100 %, target 97.5 %")


def test_it_is_in_the_terminal_and_in_report_md() -> None:
    assert any("experiment UNHEALTHY" in line for line in summary_lines(DOC))
    assert ("**Experiment:** UNHEALTHY (the health measurements show a problem): 5,000/5,000 users connected"
            in render_markdown(DOC))


def test_a_ledger_without_measurements_has_no_line() -> None:
    assert experiment_line({"details": {}}) is None


FAILED = {"valid": False, "target": "naive", "reason": "104 acknowledged message(s) lost", "exit_code": 1,
          "counts": {"attempted": 320, "acknowledged": 281, "delivered": 177, "lost": 104, "unseen": 0,
                     "duplicated": 0, "unexpected": 0, "reordered": 0, "recovered": 0},
          "latency_ms": {"delivery": {"p50": 1.5, "p99": 8.0, "max": 10.7}}}


def test_the_verdict_comes_first_with_the_expectation_beside_it_and_the_report_last() -> None:
    lines = summary_lines(FAILED, expected="expected FAIL, lost >= 1: as expected", report="runs/naive/report.html")
    assert lines[0] == ("[FAIL] naive: 104 of 281 acknowledged messages lost · expected FAIL, lost >= 1: "
                        "as expected")
    assert lines[1:3] == ["        attempted 320 · acknowledged 281 · delivered 177 · lost 104 · unseen 0",
                          "        duplicated 0 · unexpected 0 · reordered 0 · recovered 0"]
    assert all(len(line) <= 80 for line in lines[1:3])  # readable in an 80-column terminal
    assert lines[-1] == "        report: runs/naive/report.html"


def test_a_pass_says_what_was_delivered_and_an_unknown_says_why() -> None:
    passed = {**FAILED, "valid": True, "reason": None, "counts": {**FAILED["counts"], "lost": 0}}
    assert summary_lines(passed)[0] == "[PASS] naive: all 281 acknowledged messages delivered"
    unknown = {**FAILED, "valid": "unknown", "reason": "interrupted during phase 'start'",
               "counts": {**FAILED["counts"], "lost": 0}}
    assert summary_lines(unknown)[0] == "[UNKNOWN] naive: interrupted during phase 'start'"


BLACKHOLE = {"fault": "f", "occurrence": 1, "type": "timeout", "cohort": "c2", "active_s": 2.0, "bytes_before": 400,
             "bytes_during": 51_200, "disconnects": 1, "back_after_heal_s": 0.75, "receipts_before": 2,
             "receipts_during": 0, "latency_ms_before": 19.5, "latency_ms_during": 2600.0, "late_s": 0.0}
KILL = {"fault": "crash", "occurrence": 1, "type": "kill_target", "cohort": None, "active_s": 1.4,
        "disconnects": 2, "back_after_heal_s": None, "replaced": ["target"], "ready_after_s": 0.4}


def test_each_faults_measured_effect_in_one_line() -> None:
    from harness.report.summary import effect_phrase

    assert effect_phrase(BLACKHOLE) == (
        "f (timeout on c2, 2 s): 50 KB through its listener (400 B in the second before); 1 disconnect, all back "
        "0.75 s after the heal; 0 receipts during it (2 in as long before); median latency 19.5 ms → 2,600 ms")
    assert effect_phrase(KILL) == ("crash (kill_target, 1.4 s): replaced target, ready 0.4 s after its downtime; "
                                   "2 disconnects, not all back by the end")


def test_report_md_lists_what_each_fault_did() -> None:
    doc = {"valid": True, "counts": {"acknowledged": 3}, "details": {"faults": {"effects": [BLACKHOLE, KILL]}}}
    text = render_markdown(doc)
    assert "**What each fault did** (measured):" in text and "- crash (kill_target, 1.4 s): replaced target" in text


def test_a_bare_ledger_says_what_is_known_instead_of_none_or_a_question_mark() -> None:
    from harness.checker import check
    from harness.report.summary import render_markdown, summary_lines
    from tests.checker.builders import History

    doc = check(History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).finished().frame()).to_dict()
    assert doc["target"] is None and doc["latency_ms"]["redelivery"]["p50"] is None
    md = render_markdown(doc)
    assert md.splitlines()[0] == "# PASS: ledger (target not recorded)"
    assert "| redelivery | - | - | - | - | 0 |" in md.splitlines()
    assert "None" not in md and "?" not in md
    assert summary_lines(doc)[0] == "[PASS] target not recorded: all 1 acknowledged messages delivered"


def test_the_experiment_line_names_what_was_unhealthy() -> None:
    from harness.report.summary import experiment_line

    doc = {"details": {"health": {"healthy": True, "connected_at_start": {"connected": 2, "users": 2}},
                       "faults": {"scheduled": 1, "applied": 1, "problems": ["fault f was never healed"]}}}
    assert experiment_line(doc) == ("experiment UNHEALTHY (the faults did not run as scheduled; the health "
                                    "measurements were fine): 2/2 users connected; 1/1 faults applied")
    doc["details"]["faults"]["problems"] = []
    assert experiment_line(doc) == "experiment healthy: 2/2 users connected; 1/1 faults applied"
    doc["details"]["health"]["healthy"] = False
    assert experiment_line(doc) == ("experiment UNHEALTHY (the health measurements show a problem): 2/2 users "
                                    "connected; 1/1 faults applied")


def test_the_experiment_is_never_healthy_beside_a_record_the_verdict_cannot_trust() -> None:
    """A dead worker, an interrupted run or torn ledger lines make the verdict unknown; the experiment line said
    "healthy" beside them because the health measurements themselves were fine."""
    from harness.report.summary import experiment_line

    doc: dict = {"complete": True, "details": {"health": {"healthy": True, "connected_at_start": {"connected": 4,
                                                                                               "users": 4}}}}
    assert experiment_line(doc) == "experiment healthy: 4/4 users connected"
    doc["details"]["unhealthy_nodes"] = {"worker-b": "died", "worker-a": "replaced"}
    assert experiment_line(doc) == ("experiment UNHEALTHY (the record of load processes 'worker-a', 'worker-b' cannot "
                                    "be trusted; the health measurements were fine): 4/4 users connected")
    doc["details"]["unhealthy_nodes"] = {"worker-a": "died"}
    doc["complete"] = False
    doc["details"]["bad_lines"] = 2
    assert experiment_line(doc) == ("experiment UNHEALTHY (the record of load process 'worker-a' cannot be trusted; "
                                    "the run did not finish; 2 unreadable ledger lines; the health measurements "
                                    "were fine): 4/4 users connected")
    doc["bad_lines"] = [{"path": "ledger-worker-a.jsonl", "line": 9, "reason": "torn"}] * 3  # 2 of them orphans
    assert "; 3 unreadable ledger lines;" in str(experiment_line(doc))  # as many as the page's list shows
    doc["details"]["health"]["healthy"] = False
    doc["details"]["unhealthy_nodes"] = {}
    doc["details"]["bad_lines"] = 0
    assert experiment_line(doc) == ("experiment UNHEALTHY (the health measurements show a problem; the run did not "
                                    "finish; 3 unreadable ledger lines): 4/4 users connected")


def test_a_record_that_falls_short_is_named_even_when_nothing_was_measured() -> None:
    """A ledger cut off before any measurement: the checker still writes ``healthy`` and ``limits``, which are
    not measurements, so the line must neither vanish nor call the (absent) measurements fine."""
    from harness.report.summary import experiment_line, experiment_state

    doc: dict = {"complete": False, "details": {"health": {"healthy": True, "limits": {"cpu_pct": 90}}}}
    assert experiment_state(doc) == ("UNHEALTHY", "the run did not finish")
    assert experiment_line(doc) == ("experiment UNHEALTHY (the run did not finish): no health measurements in the "
                                    "ledger")
    doc["complete"] = True
    assert experiment_line(doc) is None


def test_a_verdict_with_nothing_judged_says_so_instead_of_none() -> None:
    """A checker crash or an unreadable ledger counts nothing: the terminal says so, never 'lost None'."""
    from harness.checker import CheckOptions, unjudged_verdict

    doc = unjudged_verdict("ledger unreadable: ledger.parquet: not a ledger: no f column", CheckOptions()).to_dict()
    lines = summary_lines(doc)
    assert lines == ["[UNKNOWN] target not recorded: ledger unreadable: ledger.parquet: not a ledger: no f column",
                     "        nothing was counted"]
    assert "None" not in render_markdown(doc)


def test_report_md_says_the_verdict_in_a_sentence_under_its_title() -> None:
    from harness.checker import check
    from tests.checker.builders import History

    h = History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).send("a", "b", 2).finished()
    lines = render_markdown(check(h.frame()).to_dict()).splitlines()
    assert lines[:3] == ["# FAIL: ledger (target not recorded)", "", "1 of 2 acknowledged messages lost."]
    passing = History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).finished()
    assert render_markdown(check(passing.frame()).to_dict()).splitlines()[2] == "All 1 acknowledged messages delivered."
    unknown = render_markdown(DOC).splitlines()  # not judged: the Why line says it, once
    assert unknown[2] == "**Why:** experiment unhealthy: target saturated"
