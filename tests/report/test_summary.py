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
    assert experiment_line(DOC) == ("experiment UNHEALTHY: 5,000/5,000 users connected; 112/57,356 sends "
                                    "acknowledged outside faults; 1/1 faults applied; peak CPU load 100 %, "
                                    "target 97.5 %")


def test_it_is_in_the_terminal_and_in_report_md() -> None:
    assert any("experiment UNHEALTHY" in line for line in summary_lines(DOC))
    assert "**Experiment:** UNHEALTHY: 5,000/5,000 users connected" in render_markdown(DOC)


def test_a_ledger_without_measurements_has_no_line() -> None:
    assert experiment_line({"details": {}}) is None
