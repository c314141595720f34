"""Turn a run folder's ledger into verdict.json, ledger.parquet and report.md (the only writer of those)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.checker import CheckOptions, Verdict, check_safe, exit_code
from harness.ledger import BadLine, read_ledger, write_parquet

__all__ = ["finalize", "summary_lines", "render_markdown"]


def _label(verdict: Verdict) -> str:
    return "PASS" if verdict.valid is True else "FAIL" if verdict.valid is False else "UNKNOWN"


def render_markdown(verdict: Verdict, bad_lines: list[BadLine]) -> str:
    """A summary that reads well in a CI log or a PR comment."""
    icon = _label(verdict)
    lines = [f"# {icon}: {verdict.scenario or 'ledger'} on {verdict.target or 'unknown target'}", ""]
    if verdict.reason:
        lines += [f"**Why:** {verdict.reason}", ""]
    lines += ["| metric | count |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in verdict.counts.items()]
    q = verdict.latency_ms["delivery"]
    lines += ["", "Delivery latency (ms): "
              f"p50 {q.p50} · p95 {q.p95} · p99 {q.p99} · max {q.max} (n={q.count})", ""]
    for name, ids in verdict.examples.items():
        if ids:
            lines += [f"**{name}** (first {len(ids)}): " + ", ".join(f"`{i}`" for i in ids), ""]
    if bad_lines:
        lines += ["**Unreadable ledger lines:**", ""]
        lines += [f"- {b.path}:{b.line}: {b.reason}" for b in bad_lines[:50]]
    return "\n".join(lines) + "\n"


def summary_lines(verdict: Verdict) -> list[str]:
    """A short human summary for the terminal."""
    c = verdict.counts
    q = verdict.latency_ms["delivery"]
    head = _label(verdict)
    lines = [
        f"[{head}] {verdict.target}: valid={json.dumps(verdict.valid)}"
        f"  attempted={c['attempted']} acknowledged={c['acknowledged']} delivered={c['delivered']}"
        f" lost={c['lost']} duplicated={c['duplicated']} unexpected={c['unexpected']}"
        f" recovered={c['recovered']} reordered={c['reordered']} unseen={c['unseen']}",
        f"        delivery latency ms p50={q.p50} p99={q.p99} max={q.max}",
    ]
    if verdict.reason:
        lines.append(f"        reason: {verdict.reason}")
    if verdict.lost_ids:
        shown = ", ".join(verdict.lost_ids[:5])
        more = f" (+{c['lost'] - 5} more in verdict.json/report.md)" if c["lost"] > 5 else ""
        lines.append(f"        lost ids: {shown}{more}")
    return lines


def finalize(source: Path, *, target: str | None = None, scenario: str | None = None,
             ordered: bool = False, extra_reasons: list[str] | None = None, out_dir: Path | None = None) -> Verdict:
    """Check a ledger (a run folder or a ledger file) and write verdict.json, ledger.parquet and report.md.

    Output goes to ``out_dir``, by default the run folder (or the ledger file's folder).
    """
    run_dir = source if source.is_dir() else source.parent
    out_dir = out_dir or run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    load = read_ledger(source)
    meta = _manifest(run_dir)
    damaged, orphan_lines = load.damaged_nodes()
    claims = (meta or {}).get("claims", {})
    verdict = check_safe(load.frame, CheckOptions(
        delivery=claims.get("delivery", "at-least-once"),
        ordered=bool(claims.get("ordered", ordered)),
        bad_lines=orphan_lines,
        damaged_nodes=damaged,
        target=target or (meta or {}).get("target"),
        scenario=scenario or (meta or {}).get("scenario"),
    ))
    if extra_reasons:
        verdict.reasons.extend(extra_reasons)
    doc: dict[str, Any] = verdict.to_dict()
    doc["exit_code"] = exit_code(verdict)
    doc["bad_lines"] = [{"path": b.path, "line": b.line, "reason": b.reason} for b in load.bad_lines]
    (out_dir / "verdict.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    (out_dir / "report.md").write_text(render_markdown(verdict, load.bad_lines))
    if not load.frame.empty and not (source.suffix == ".parquet" and out_dir == run_dir):
        write_parquet(load.frame, out_dir / "ledger.parquet")
    return verdict


def _manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except ValueError:
        return None
