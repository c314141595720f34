"""report.html: verdict, claim, gate, charts and a forensic timeline per anomaly example (jinja2)."""

from __future__ import annotations

from typing import Any

import jinja2
import pandas as pd

from harness.checker import Analysis
from harness.report.charts import latency_cdf_chart, over_time_chart, per_cohort_chart
from harness.report.forensics import per_cohort, timelines_for
from harness.report.summary import experiment_line, held, label

__all__ = ["render_html", "forensics_for", "FORENSIC_EXAMPLES", "TEMPLATES"]

FORENSIC_EXAMPLES = 10
"""Timelines drawn per anomaly category (every id is still listed)."""

TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                               autoescape=jinja2.select_autoescape(["html", "j2"]))
"""The report templates (report.html.j2, compare.html.j2), shared by every page."""
_BAD_COUNTS = frozenset({"lost", "unseen", "unexpected", "unverifiable", "delivered_after_fail", "gap"})
_FORENSIC = ("lost", "unseen", "duplicated", "reordered", "gap", "unexpected", "delivered_after_fail",
             "duplicate_offsets")


def charts_for(analysis: Analysis, title: str) -> dict[str, str]:
    """The three charts of one run as PNG data URIs."""
    replayed = analysis.replayed
    latency_ms = replayed["latency_ns"].to_numpy(dtype="float64") / 1e6
    mask = replayed["replayed"].to_numpy(dtype=bool)
    return {
        "over_time": over_time_chart(analysis.over_time, analysis.state.faults, analysis.state.start_ns, title),
        "latency": latency_cdf_chart(latency_ms[~mask], latency_ms[mask], title),
        "cohorts": per_cohort_chart(per_cohort(analysis), title),
    }


def forensics_for(frame: pd.DataFrame, analysis: Analysis) -> dict[str, list[dict[str, Any]]]:
    """Up to FORENSIC_EXAMPLES timelines per anomaly category, built in one pass over the ledger."""
    examples = {name: analysis.ids.get(name, [])[:FORENSIC_EXAMPLES] for name in _FORENSIC}
    timelines = timelines_for(frame, analysis, [i for ids in examples.values() for i in ids])
    return {name: [{"msg_id": i, "events": timelines[i]} for i in ids] for name, ids in examples.items()}


def render_html(doc: dict[str, Any], analysis: Analysis, frame: pd.DataFrame) -> tuple[str, dict[str, str]]:
    """The page and its charts (PNG data URIs by name)."""
    title = f"{doc.get('scenario') or 'ledger'} on {doc.get('target') or '?'}"
    forensics = forensics_for(frame, analysis)
    anomalies = {name: analysis.ids.get(name, []) for name in _FORENSIC}
    details = doc.get("details") or {}
    charts = charts_for(analysis, title)
    page = TEMPLATES.get_template("report.html.j2").render(
        doc=doc, badge=label(doc.get("valid")), held=held, bad_counts=_BAD_COUNTS,
        claim=details.get("claim") or {}, gate=doc.get("gate") or {},
        charts=charts, anomalies=anomalies, forensics=forensics, experiment=experiment_line(doc),
    )
    return page, charts
