"""report.html: the verdict first (banner, reason, experiment evidence, headline counts, the per-message plot),
then the claim in words, the anomalies' forensic timelines each ending in its conclusion, and the rest folded
(jinja2)."""

from __future__ import annotations

from typing import Any

import jinja2
import pandas as pd

from harness.checker import Analysis
from harness.report.charts import (
    latency_cdf_chart,
    over_time_chart,
    per_cohort_chart,
    per_message_chart,
    stable_latency_cdf_chart,
)
from harness.report.forensics import conclusion, example_facts, per_cohort, timelines_for
from harness.report.marks import message_points, run_marks
from harness.report.rooms import (
    MEMBERSHIP_RULE,
    ROOM_COLUMNS,
    copies_note,
    loss_latency_sentence,
    member_rows,
    membership_note,
    quiet_rooms_note,
    room_rows,
    room_summary,
)
from harness.report.summary import effect_phrase, experiment_line, experiment_state, held, label, subject
from harness.report.words import BAD_COUNTS, claim_sentence, headline, headline_counts, number, other_counts

__all__ = ["render_html", "forensics_for", "charts_for", "rooms_section", "FORENSIC_EXAMPLES", "TEMPLATES"]

FORENSIC_EXAMPLES = 10
"""Timelines drawn per anomaly category (every id is still listed)."""

TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                               autoescape=jinja2.select_autoescape(["html", "j2"]))
"""The report templates (report.html.j2, compare.html.j2), shared by every page."""
TEMPLATES.filters["num"] = number

_FORENSIC = ("lost", "unseen", "duplicated", "reordered", "gap", "unexpected", "delivered_after_fail",
             "duplicate_offsets")
_MEANING = {
    "lost": "acknowledged by the server, never received by its connected recipient after the drain",
    "unseen": "acknowledged, not received, but the run could not have read it (not counted as lost)",
    "duplicated": "received more often than it was sent",
    "reordered": "received after a later message of the same sender→recipient stream",
    "gap": "never received although a later message of the same stream was",
    "unexpected": "received, but never sent to that recipient",
    "delivered_after_fail": "received although the server refused the send",
    "duplicate_offsets": "received at two or more different server offsets",
}


def forensics_for(frame: pd.DataFrame, analysis: Analysis) -> dict[str, list[dict[str, Any]]]:
    """Up to FORENSIC_EXAMPLES timelines per anomaly category, built in one pass over the ledger, each ending
    with its conclusion. Gaps that are lost or unseen messages get no second timeline (they are listed)."""
    shown_elsewhere = set(analysis.ids.get("lost", [])) | set(analysis.ids.get("unseen", []))
    examples = {name: [i for i in analysis.ids.get(name, []) if name != "gap" or i not in shown_elsewhere]
                [:FORENSIC_EXAMPLES] for name in _FORENSIC}
    every = [i for ids in examples.values() for i in ids]
    timelines = timelines_for(frame, analysis, every)
    facts = example_facts(analysis, every)
    return {name: [{"msg_id": i, "events": timelines[i], "conclusion": conclusion(name, i, analysis, facts)}
                   for i in ids] for name, ids in examples.items()}


def charts_for(analysis: Analysis, frame: pd.DataFrame, title: str) -> dict[str, str]:
    """The run's charts as PNG data URIs; the per-cohort chart only when something was lost, unseen or duplicated
    (an empty bar chart says less than the words that replace it)."""
    replayed = analysis.replayed
    latency_ms = replayed["latency_ns"].to_numpy(dtype="float64") / 1e6
    mask = replayed["replayed"].to_numpy(dtype=bool)
    marks = run_marks(frame, analysis)
    charts = {
        "messages": per_message_chart(message_points(analysis, marks.origin_ns), marks, analysis.state.faults, title),
        "over_time": over_time_chart(analysis.over_time, analysis.state.faults, analysis.state.start_ns, title),
        "latency": latency_cdf_chart(latency_ms[~mask], latency_ms[mask], title),
    }
    cohorts = per_cohort(analysis)
    if int(cohorts.to_numpy().sum()):
        charts["cohorts"] = per_cohort_chart(cohorts, title)
    if analysis.rooms.sends:
        charts["rooms"] = stable_latency_cdf_chart(analysis.rooms.stable_ms(), analysis.rooms.stable_ms_by_room(),
                                                   f"{title}: stable latency of room messages")
    return charts


def rooms_section(doc: dict[str, Any], analysis: Analysis) -> dict[str, Any] | None:
    """What the page's Rooms section shows (None without rooms): the line, the rule, the per-room rows, the
    worst members (more than verdict.json keeps) and the lost room messages' latencies in words."""
    rooms = (doc.get("details") or {}).get("rooms")
    if not rooms:
        return None
    members, left_out = member_rows(analysis)
    return {"summary": room_summary(rooms), "rule": MEMBERSHIP_RULE, "columns": ROOM_COLUMNS,
            "rows": room_rows(rooms), "members": members, "members_left_out": left_out,
            "member_count": (rooms.get("per_member") or {}).get("members", 0), "loss": loss_latency_sentence(rooms),
            "quiet": quiet_rooms_note(rooms), "membership": membership_note(rooms)}


def _fault_rows(analysis: Analysis) -> list[dict[str, Any]]:
    origin = analysis.state.start_ns or 0
    return [{"fault": w.fault, "type": w.type, "cohort": w.cohort or "(whole target)",
             "inject_ms": round((w.inject_ns - origin) / 1e6),
             "heal_ms": None if w.heal_ns is None else round((w.heal_ns - origin) / 1e6)}
            for w in analysis.state.faults]


def _record_problems(doc: dict[str, Any]) -> list[str]:
    """Why the run's record falls short of what a verdict needs, beside the health and fault problems: load
    processes whose record cannot be trusted, a run that did not finish, unreadable ledger lines."""
    details = doc.get("details") or {}
    found = [f"the record of load process '{node}' cannot be trusted: {why}"
             for node, why in sorted((details.get("unhealthy_nodes") or {}).items())]
    if doc.get("complete") is False:
        found.append("the run did not finish (no 'end' phase in the ledger): loss not judged")
    orphans = int(details.get("bad_lines") or 0)
    if orphans:
        lines = f"{orphans:,} unreadable ledger line" + ("s that belong" if orphans != 1 else " that belongs")
        found.append(f"{lines} to no load process could hide receipts: loss not judged")
    return found


def render_html(doc: dict[str, Any], analysis: Analysis, frame: pd.DataFrame) -> tuple[str, dict[str, str]]:
    """The page and its charts (PNG data URIs by name)."""
    title = subject(doc)
    forensics = forensics_for(frame, analysis)
    anomalies = {name: analysis.ids.get(name, []) for name in _FORENSIC}
    gap_ids = set(anomalies["gap"])
    gaps_in_lost = len(gap_ids & (set(anomalies["lost"]) | set(anomalies["unseen"])))
    details = doc.get("details") or {}
    counts = doc.get("counts") or {}
    charts = charts_for(analysis, frame, title)
    page = TEMPLATES.get_template("report.html.j2").render(
        doc=doc, badge=label(doc.get("valid")), held=held, bad_counts=BAD_COUNTS, title=title,
        headline=headline(doc), claim_text=claim_sentence(doc),
        counts_first=headline_counts(counts), counts_rest=other_counts(counts),
        claim=details.get("claim") or {}, gate=doc.get("gate") or {},
        health=details.get("health") or {}, faults=details.get("faults") or {}, fault_rows=_fault_rows(analysis),
        fault_effects=[effect_phrase(e) for e in (details.get("faults") or {}).get("effects") or []],
        charts=charts, anomalies=anomalies, forensics=forensics, meaning=_MEANING, gaps_in_lost=gaps_in_lost,
        experiment=experiment_line(doc), experiment_state=experiment_state(doc),
        record_problems=_record_problems(doc),
        drained=analysis.state.drain_end_ns is not None, rooms=rooms_section(doc, analysis),
        copies=copies_note(doc),
    )
    return page, charts
