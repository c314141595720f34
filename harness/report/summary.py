"""Text summaries of a verdict: the terminal lines and report.md (reads well in a CI log or PR comment)."""

from __future__ import annotations

from typing import Any

from harness.report.numbers import number
from harness.report.rooms import copies_note, rooms_markdown

__all__ = ["label", "held", "headline", "summary_lines", "render_markdown", "experiment_line", "experiment_state",
           "subject", "NO_TARGET"]

NO_TARGET = "target not recorded"
"""What a page says for the target when the ledger alone was checked (no run folder, no --target)."""


def label(valid: Any) -> str:
    return "PASS" if valid is True else "FAIL" if valid is False else "UNKNOWN"


def held(value: Any) -> str:
    """A claim's ``held`` value in words."""
    return "held" if value is True else "violated" if value is False else "unknown"


def subject(doc: dict[str, Any]) -> str:
    """What was run on what, in words: "blip on naive", or "ledger (target not recorded)"."""
    scenario = doc.get("scenario") or "ledger"
    return f"{scenario} on {doc['target']}" if doc.get("target") else f"{scenario} ({NO_TARGET})"


_MEASUREMENTS = ("connected_at_start", "acknowledged_share", "cpu_peak_pct")
"""Health keys that are measurements (``healthy`` and ``limits`` are always written, measured or not)."""


def experiment_state(doc: dict[str, Any]) -> tuple[str, str | None]:
    """("healthy" | "UNHEALTHY", why): what the verdict stands on, never "healthy" beside a verdict that could
    not be judged because of the experiment itself. Unhealthy when the health measurements were
    (``details.health.healthy`` false), the faults did not run as scheduled (``details.faults.problems``), a load
    process's record cannot be trusted (``details.unhealthy_nodes``: a worker that died, was replaced or whose
    file is foreign), the run did not finish (``complete`` false) or ledger lines were unreadable (the
    ``bad_lines`` list, or ``details.bad_lines`` lines that belong to no load process). ``why`` says what went
    wrong in each, and, only where health was measured and was fine, that it was, so the page never says
    "UNHEALTHY" beside fine measurements without saying what was not."""
    details = doc.get("details") or {}
    health, faults = details.get("health") or {}, details.get("faults") or {}
    sick = health.get("healthy", True) is False
    causes: list[str] = ["the health measurements show a problem"] if sick else []
    if faults.get("problems"):
        causes.append("the faults did not run as scheduled")
    nodes = sorted(details.get("unhealthy_nodes") or {})
    if nodes:
        names = ", ".join(f"'{n}'" for n in nodes)
        causes.append(f"the record of load process{'es' if len(nodes) > 1 else ''} {names} cannot be trusted")
    if doc.get("complete") is False:
        causes.append("the run did not finish")
    bad = max(len(doc.get("bad_lines") or []), int(details.get("bad_lines") or 0))
    if bad:
        causes.append(f"{bad:,} unreadable ledger line{'s' if bad != 1 else ''}")
    if not causes:
        return "healthy", None
    fine = not sick and any(health.get(k) for k in _MEASUREMENTS)
    return "UNHEALTHY", "; ".join(causes) + ("; the health measurements were fine" if fine else "")


def experiment_line(doc: dict[str, Any]) -> str | None:
    """One line on what the verdict stands on: users connected, share acknowledged, faults applied, peak CPU. None
    when nothing was judged (a checker crash, an unreadable ledger): nothing is known of the experiment either."""
    if not doc.get("counts") and not doc.get("details"):
        return None
    details = doc.get("details") or {}
    health, faults = details.get("health") or {}, details.get("faults") or {}
    parts: list[str] = []
    if health.get("connected_at_start"):
        c = health["connected_at_start"]
        parts.append(f"{c['connected']:,}/{c['users']:,} users connected")
    if health.get("acknowledged_share"):
        a = health["acknowledged_share"]
        parts.append(f"{a['acknowledged']:,}/{a['attempted']:,} sends acknowledged outside faults")
    if faults.get("scheduled"):
        parts.append(f"{faults['applied']}/{faults['scheduled']} faults applied")
    if health.get("cpu_peak_pct"):
        parts.append("peak CPU " + ", ".join(f"{k} {v:g} %" for k, v in health["cpu_peak_pct"].items()))
    state, why = experiment_state(doc)
    if not parts and why is None:
        return None
    if not parts:  # nothing measured, but the record itself falls short: say so, as the page does
        return f"experiment {state} ({why}): no health measurements in the ledger"
    state += f" ({why})" if why else ""
    warnings = [str(w).split(":", 1)[0] for w in health.get("warnings") or []]
    if warnings:
        parts.append("warning: " + ", ".join(warnings) + " (see report)")
    return f"experiment {state}: " + "; ".join(parts)


def _ms(value: Any) -> str:
    """A latency in report.md's table: as measured (ms, full precision), '-' when none was."""
    return "-" if value is None else str(value)


def _kb(n: int) -> str:
    return f"{n:,} B" if n < 10_000 else f"{n / 1024:,.0f} KB"


def effect_phrase(effect: dict[str, Any]) -> str:
    """What one fault occurrence measurably did, in one line (``details.faults.effects``)."""
    name = str(effect.get("fault")) + (f" #{effect['occurrence']}" if (effect.get("occurrence") or 1) > 1 else "")
    where = f" on {effect['cohort']}" + (f":{effect['port']}" if effect.get("port") else "") \
        if effect.get("cohort") else ""
    parts: list[str] = []
    if "bytes_during" in effect:
        before = f" ({_kb(int(effect['bytes_before']))} in the second before)" if "bytes_before" in effect else ""
        parts.append(f"{_kb(int(effect['bytes_during']))} through its listener{before}")
    if effect.get("replaced") is not None:
        replaced = ", ".join(effect["replaced"]) or "no process"
        ready = f", ready {effect['ready_after_s']:g} s after its downtime" if "ready_after_s" in effect else ""
        parts.append(f"replaced {replaced}{ready}")
    drops = int(effect.get("disconnects") or 0)
    if drops:
        back = effect.get("back_after_heal_s")
        when = "not all back by the end" if back is None else f"all back {back:g} s after the heal"
        parts.append(f"{drops} disconnect{'s' if drops != 1 else ''}, {when}")
    else:
        parts.append("no disconnect")
    if "receipts_during" in effect:
        parts.append(f"{effect['receipts_during']:,} receipts during it ({effect['receipts_before']:,} in as long "
                     "before)")
    if effect.get("latency_ms_before") is not None or effect.get("latency_ms_during") is not None:
        def ms(v: Any) -> str:
            return "-" if v is None else f"{v:,g} ms"
        parts.append(f"median latency {ms(effect.get('latency_ms_before'))} → {ms(effect.get('latency_ms_during'))}")
    if effect.get("late_s") is not None and effect["late_s"] > 0.5:
        parts.append(f"injected {effect['late_s']:g} s late")
    return f"{name} ({effect.get('type')}{where}, {effect.get('active_s', 0):g} s): " + "; ".join(parts)


def headline(doc: dict[str, Any]) -> str:
    """What the verdict says in a few words: the loss, or why it could not be judged."""
    c = doc.get("counts") or {}
    acked, lost = c.get("acknowledged") or 0, c.get("lost") or 0
    if doc.get("valid") is True:
        return f"all {acked:,} acknowledged messages delivered"
    if lost:
        return f"{lost:,} of {acked:,} acknowledged messages lost"
    return str(doc.get("reason") or ("violated" if doc.get("valid") is False else "not judged"))


def _counts_lines(c: dict[str, Any]) -> list[str]:
    """The counts in two short lines (they stay under 80 columns), the ones that decide the verdict first."""
    first = ("attempted", "acknowledged", "delivered", "lost", "unseen")
    second = ("duplicated", "unexpected", "reordered", "recovered")
    return [" · ".join(f"{k} {c.get(k)}" for k in keys) for keys in (first, second)]


def summary_lines(doc: dict[str, Any], expected: str | None = None, report: str | None = None) -> list[str]:
    """A short human summary of a verdict.json document for the terminal: the verdict and, beside it, what the
    scenario expected (``expected``, e.g. "expected FAIL: as expected"), then the counts, the reason, what the
    verdict stands on, examples, and where the report is (``report``)."""
    c = doc.get("counts") or {}
    q = (doc.get("latency_ms") or {}).get("delivery") or {}
    head = f"[{label(doc.get('valid'))}] {doc.get('target') or NO_TARGET}: {headline(doc)}"
    lines = [head + (f" · {expected}" if expected else "")]
    lines += [f"        {line}" for line in _counts_lines(c)] if c else ["        nothing was counted"]
    copies = copies_note(doc)
    if copies:
        lines.append(f"        {copies}")
    if c:
        lines.append(f"        delivery latency ms p50 {_ms(q.get('p50'))} · p99 {_ms(q.get('p99'))} · "
                     f"max {_ms(q.get('max'))}")
    if doc.get("reason") and doc.get("reason") != headline(doc):
        lines.append(f"        reason: {doc['reason']}")
    experiment = experiment_line(doc)
    if experiment:
        lines.append(f"        {experiment}")
    lost_ids = doc.get("lost_ids") or []
    if lost_ids:
        more = f" (+{c['lost'] - 5} more in verdict.json/report.html)" if c.get("lost", 0) > 5 else ""
        lines.append(f"        lost ids: {', '.join(lost_ids[:5])}{more}")
    for bad in (doc.get("bad_lines") or [])[:5]:
        lines.append(f"        unreadable: {bad['path']}:{bad['line']}: {bad['reason']}")
    gate = doc.get("gate") or {}
    if gate.get("reasons") and gate.get("exit_code") != 0:
        lines.append(f"        gate (exit {gate['exit_code']}): {'; '.join(gate['reasons'])}")
    if report:
        lines.append(f"        report: {report}")
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """report.md: verdict, claim, gate, counts, latency, fault effects, rooms (if any) and example ids."""
    c = doc.get("counts") or {}
    claim = (doc.get("details") or {}).get("claim") or {}
    gate = doc.get("gate") or {}
    lines = [f"# {label(doc.get('valid'))}: {subject(doc)}", ""]
    head = headline(doc)
    if c and head != doc.get("reason"):  # the verdict in a sentence, as the terminal's first line has it
        lines += [f"{head[0].upper()}{head[1:]}.", ""]
    if doc.get("reason"):
        lines += [f"**Why:** {doc['reason']}", ""]
    experiment = experiment_line(doc)
    if experiment:
        lines += [f"**Experiment:** {experiment.removeprefix('experiment ')}", ""]
    for warning in ((doc.get("details") or {}).get("health") or {}).get("warnings") or []:
        lines += [f"**Warning** (the verdict stands): {warning}", ""]
    if claim:
        ordered = "ordered" if claim.get("ordered") else "unordered"
        lines += [f"**Claim:** {claim.get('delivery')}, {ordered} — **{held(claim.get('held'))}**"
                  + (f" ({', '.join(claim['violations'])})" if claim.get("violations") else ""), ""]
    if gate:
        lines += [f"**Gate:** exit {gate.get('exit_code')}"
                  + (f" — {'; '.join(gate['reasons'])}" if gate.get("reasons") else " — all checks passed"), ""]
    lines += ["| metric | count |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in c.items()]
    copies = copies_note(doc)
    if copies:
        lines += ["", copies]
    lines += ["", "| latency (ms) | p50 | p95 | p99 | max | n |", "|---|---:|---:|---:|---:|---:|"]
    for name, q in (doc.get("latency_ms") or {}).items():
        values = " | ".join([_ms(q.get(k)) for k in ("p50", "p95", "p99", "max")] + [number(q.get("count"))])
        lines.append(f"| {name} | {values} |")
    effects = ((doc.get("details") or {}).get("faults") or {}).get("effects") or []
    if effects:
        lines += ["", "**What each fault did** (measured):", ""] + [f"- {effect_phrase(e)}" for e in effects]
    catch = (doc.get("details") or {}).get("catch_up") or []
    if catch:
        lines += ["", "| fault healed | cohort | pending at heal | never arrived | catch-up ms |",
                  "|---|---|---:|---:|---:|"]
        keys = ("fault", "cohort", "pending_at_heal", "never_arrived", "catch_up_ms")
        lines += ["| " + " | ".join(str(x[k]) for k in keys) + " |" for x in catch]
    lines += rooms_markdown(doc)
    lines.append("")
    for name, ids in (doc.get("examples") or {}).items():
        if ids:
            shown = ", ".join(f"`{i}`" for i in ids)
            lines += [f"**{name}** (first {len(ids)} of {c.get(name, len(ids))}): {shown}", ""]
    bad = doc.get("bad_lines") or []
    if bad:
        lines += ["**Unreadable ledger lines:**", ""] + [f"- {b['path']}:{b['line']}: {b['reason']}" for b in bad[:50]]
    return "\n".join(lines) + "\n"
