"""Judge a ledger and write every artefact of a run folder.

Writes verdict.json (with the gate's decision), report.md, report.html, junit.xml, anomalies.json
(full id lists), over_time.csv, ledger.parquet and the charts as PNG files. This module is the only writer
of those files.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from harness.checker import CheckOptions, analyse, crashed_verdict, judge
from harness.config import GatePolicy
from harness.gate import gate
from harness.ledger.format import read_ledger, write_parquet
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.summary import render_markdown

__all__ = ["finalize", "read_manifest", "CHART_FILES"]

CHART_FILES = frozenset({"messages", "over_time", "latency", "cohorts", "rooms"})
"""Every chart a run folder may hold as <name>.png (cohorts only when something was lost or duplicated, rooms
only when the run had rooms)."""

log = logging.getLogger(__name__)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except ValueError:
        return None


def _policy(meta: dict[str, Any] | None, override: dict[str, Any] | None) -> GatePolicy:
    base = ((meta or {}).get("config") or {}).get("gate") or {}
    merged = {**base, **{k: v for k, v in (override or {}).items() if v is not None}}
    return GatePolicy.model_validate(merged)


def finalize(source: Path, *, target: str | None = None, scenario: str | None = None, ordered: bool = False,
             extra_reasons: list[str] | None = None, out_dir: Path | None = None,
             gate_overrides: dict[str, Any] | None = None, html: bool = True) -> dict[str, Any]:
    """Check a ledger (a run folder or a ledger file) and write the run's artefacts; returns verdict.json.

    Output goes to ``out_dir``, by default the run folder (or the ledger file's folder).
    """
    run_dir = source if source.is_dir() else source.parent
    out_dir = out_dir or run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    load = read_ledger(source)
    meta = read_manifest(run_dir)
    damaged, orphan_lines = load.damaged_nodes()
    claims = (meta or {}).get("claims", {})
    options = CheckOptions(
        delivery=claims.get("delivery", "at-least-once"),
        ordered=bool(claims.get("ordered", ordered)),
        survives_restart=bool(claims.get("survives_restart", False)),
        bad_lines=orphan_lines,
        damaged_nodes=damaged,
        target=target or (meta or {}).get("target"),
        scenario=scenario or (meta or {}).get("scenario"),
    )
    analysis = None
    try:
        analysis = analyse(load.frame, options)
        verdict = judge(analysis, options)
    except Exception as exc:  # a checker bug must never read as a pass
        log.exception("checker crashed")
        verdict = crashed_verdict(exc, options)
    if extra_reasons:
        verdict.reasons.extend(extra_reasons)
    doc: dict[str, Any] = verdict.to_dict()
    doc["bad_lines"] = [{"path": b.path, "line": b.line, "reason": b.reason} for b in load.bad_lines]
    decision = gate(doc, _policy(meta, gate_overrides))
    doc["gate"] = decision.to_dict()
    doc["exit_code"] = decision.exit_code

    (out_dir / "verdict.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "report.md").write_text(render_markdown(doc))
    (out_dir / "junit.xml").write_text(render_junit(doc))
    if analysis is not None:
        (out_dir / "anomalies.json").write_text(json.dumps(analysis.ids, indent=1) + "\n")
        analysis.over_time.to_csv(out_dir / "over_time.csv", index=False)
        if html:
            try:
                page, charts = render_html(doc, analysis, load.frame)
            except Exception:  # a broken chart must not cost the verdict, which is already written
                log.exception("report.html could not be rendered")
            else:
                (out_dir / "report.html").write_text(page)
                for name in CHART_FILES - set(charts):  # a chart left out (e.g. nothing lost) must not go stale
                    (out_dir / f"{name}.png").unlink(missing_ok=True)
                for name, uri in charts.items():  # also as files, for comparison pages and PR comments
                    (out_dir / f"{name}.png").write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    if source.suffix == ".parquet":  # already Parquet: copy its bytes, no rewrite (9 s at 10 M rows)
        if not load.frame.empty and out_dir != run_dir:
            shutil.copyfile(source, out_dir / "ledger.parquet")
    elif not load.frame.empty:
        write_parquet(load.frame, out_dir / "ledger.parquet")
    return doc
