"""A run folder's artefacts from a hand-built ledger: verdict.json, report.md, junit.xml, report.html."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from harness.report import finalize, render_markdown
from tests.checker.builders import History


def _ledger(tmp_path: Path, history: History) -> Path:
    path = tmp_path / "ledger.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in history.rows))
    return path


def _story() -> History:
    h = History().connect("b", at_ms=0, conn=1, cohort="cb").connect("a", at_ms=0, conn=1, cohort="ca")
    h.phase("start", at_ms=1)
    h.invoke("a", "b", 1, at_ms=10).ok("a", "b", 1, at_ms=11).recv("b", "a", "b", 1, at_ms=12, conn=1)
    h.fault("inject", "b-blackhole", "cb", at_ms=20)
    h.invoke("a", "b", 2, at_ms=30).ok("a", "b", 2, at_ms=31)
    h.disconnect("b", at_ms=40).fault("heal", "b-blackhole", "cb", at_ms=50).connect("b", at_ms=60, conn=2)
    h.invoke("a", "b", 3, at_ms=70).ok("a", "b", 3, at_ms=71).recv("b", "a", "b", 3, at_ms=72, conn=2)
    h.recv("b", "a", "b", 3, at_ms=73, conn=2)
    return h.finished()


def test_every_artefact_is_written_and_agrees(tmp_path: Path) -> None:
    doc = finalize(_ledger(tmp_path, _story()), target="demo", scenario="story")
    for name in ("verdict.json", "report.md", "report.html", "junit.xml", "anomalies.json", "over_time.csv",
                 "ledger.parquet", "messages.png", "over_time.png", "latency.png", "cohorts.png"):
        assert (tmp_path / name).exists(), name
    saved: dict[str, Any] = json.loads((tmp_path / "verdict.json").read_text())
    assert saved == doc
    assert doc["valid"] is False and doc["exit_code"] == 1
    assert doc["counts"]["lost"] == 1 and doc["counts"]["duplicated"] == 1 and doc["counts"]["gap"] == 1
    assert doc["lost_ids"] == ["a>b#2"]
    assert doc["gate"]["reasons"] == ["lost = 1 exceeds 0"]
    assert json.loads((tmp_path / "anomalies.json").read_text())["lost"] == ["a>b#2"]

    html = (tmp_path / "report.html").read_text()
    assert '<div class="banner FAIL" id="verdict">' in html
    assert "<p class=\"why\" id=\"reason\"><b>Why:</b> 1 acknowledged message(s) lost</p>" in html
    # the lost message has one forensic timeline, which ends with its conclusion; the gap it also is repeats none
    assert html.count("<summary><code>a&gt;b#2</code></summary>") == 1
    assert ("<td>acknowledged by the server, not received by the end of the drain (73 ms) although b was "
            "connected then → lost</td>") in html
    assert "1 of these is a lost or unseen message with its timeline above: not repeated here." in html
    assert "<td>sent 1 time(s), received 2 times by b → duplicated</td>" in html
    assert ("demo claims at-least-once delivery: every acknowledged message arrives, perhaps more than once. "
            "This run broke that claim (lost=1): claim violated.") in html
    for event in ("fault b-blackhole inject (timeout on cb)", "send invoked", "server acked",
                  "b disconnected (transport error)", "fault b-blackhole heal (timeout on cb)", "b connected (conn 2)"):
        assert event in html, event
    assert html.count("data:image/png;base64,") == 4  # per message, over time, latency, per cohort

    suite = ET.fromstring((tmp_path / "junit.xml").read_text())
    results = {case.get("name"): [child.tag for child in case] for case in suite}
    assert results["lost <= 0"] == ["failure"]
    assert results["unexpected <= 0"] == []
    assert results["run complete and judgeable"] == []
    assert results["claim at-least-once holds"] == ["failure"]
    assert suite.get("failures") == "2"


def test_markdown_names_claim_gate_and_examples(tmp_path: Path) -> None:
    doc = finalize(_ledger(tmp_path, _story()), target="demo", scenario="story")
    text = render_markdown(doc)
    assert text.startswith("# FAIL: story on demo\n")
    assert "**Claim:** at-least-once, unordered — **violated** (lost=1)" in text
    assert "**Gate:** exit 1 — lost = 1 exceeds 0" in text
    assert "**lost** (first 1 of 1): `a>b#2`" in text
    assert "| b-blackhole | cb | 1 | 1 | None |" in text


def test_gate_overrides_change_only_the_decision(tmp_path: Path) -> None:
    doc = finalize(_ledger(tmp_path, _story()), gate_overrides={"max_lost": 1})
    assert doc["valid"] is False  # the facts do not change
    assert doc["exit_code"] == 0 and doc["gate"]["passed"] is True


def test_garbled_ledger_names_bad_lines_and_is_unknown(tmp_path: Path) -> None:
    path = _ledger(tmp_path, _story())
    with path.open("a") as handle:
        handle.write('{"run_id": "r", "type": "ok", "f": "recv", "t_ns": 99, "msg_id": "a>b#2", "recip')
    doc = finalize(path)
    assert doc["valid"] == "unknown" and doc["exit_code"] == 3
    assert doc["counts"]["lost"] == 0 and doc["counts"]["unseen"] == 1
    torn_line = len(_story().rows) + 1
    assert doc["bad_lines"] == [{"path": str(path), "line": torn_line, "reason": "torn last line (interrupted write)"}]
    assert "unhealthy_nodes" in doc["details"] and doc["details"]["unhealthy_nodes"] == {
        "local": f"1 unreadable ledger line(s): ledger.jsonl:{torn_line} torn last line (interrupted write)"}
    page = (tmp_path / "report.html").read_text()
    box = html.unescape(page[page.index('id="experiment"'):page.index('id="headline-counts"')])
    assert 'class="evidence UNHEALTHY"' in page  # never a green "experiment" box beside a damaged record
    assert ("Experiment UNHEALTHY (the record of load process 'local' cannot be trusted; 1 unreadable ledger line; "
            "the health measurements were fine):") in box
    assert "the record of load process 'local' cannot be trusted: 1 unreadable ledger line(s)" in box


def test_an_empty_finished_ledger_still_gets_every_report(tmp_path: Path) -> None:
    doc = finalize(_ledger(tmp_path, History().phase("start").finished()))
    assert doc["valid"] == "unknown" and doc["exit_code"] == 3
    assert (tmp_path / "report.html").exists() and (tmp_path / "over_time.png").exists()


def test_an_unsound_experiment_is_grey_and_says_why_at_the_top(tmp_path: Path) -> None:
    h = History().connect("b", at_ms=0, conn=1, cohort="cb").connect("a", at_ms=0, conn=1, cohort="ca")
    h.phase("start", at_ms=1, faults=[{"fault": "b-out", "type": "timeout", "cohort": "cb", "starts_s": [0.02],
                                       "duration_s": 0.03}])
    h.invoke("a", "b", 1, at_ms=10).ok("a", "b", 1, at_ms=11).recv("b", "a", "b", 1, at_ms=12, conn=1)
    doc = finalize(_ledger(tmp_path, h.finished()), target="demo", scenario="story")
    assert doc["valid"] == "unknown" and doc["counts"]["lost"] == 0
    html = (tmp_path / "report.html").read_text()
    assert '<div class="banner UNKNOWN" id="verdict">' in html
    assert '<div class="evidence UNHEALTHY" id="experiment">' in html
    problem = ("fault b-out: 0 of 1 scheduled occurrence(s) applied; the verdict does not cover the fault it was "
               "meant to test")
    assert f"<li>{problem}</li>" in html
    assert "Not judged: the run cannot support a pass or a fail (see why below)." in html
    assert "Whether it held cannot be told from this run" in html
