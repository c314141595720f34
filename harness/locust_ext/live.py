"""What a run looks like while it goes, in users' words: the phase, the elapsed time, the fault schedule,
the numbers per cohort, and once judged the verdict. One snapshot feeds the Delivery tab and the
``harness run`` progress line, so the two never tell different stories.

``RunProgress`` watches ledger rows (an observer of the run's recorder, like the live tracker): the
``start`` phase row carries the fault schedule (``harness.run.controller``), ``fault`` rows say what
happened. Everything here is provisional until the verdict: "unseen now" is acknowledged and not yet
received, and only the checker turns it into lost or unseen. No Locust import (tested without it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from harness.ledger.recorder import Row
from harness.report.summary import experiment_line, headline, held, label
from harness.run.context import RunContext

__all__ = ["PHASE_WORDS", "FaultEvent", "RunProgress", "cohort_rows", "event_text", "final_by_cohort",
           "recipient_of", "schedule_rows", "snapshot", "verdict_banner"]

PHASE_WORDS = {
    "idle": "waiting for start", "connecting": "connecting", "start": "sending", "drain_start": "draining",
    "drain_end": "draining", "end": "judging", "interrupted": "interrupted",
}
"""Controller phases (ledger names) → what a user reads; "done" is shown once the verdict exists."""

SENDER_KEYS = ("sent", "acked", "failed", "info")
RECIPIENT_KEYS = ("received", "duplicated", "reconnects")


@dataclass
class FaultEvent:
    """One fault row as it happened: seconds since sending started (None: before it), action, source."""

    at_s: float | None
    fault: str
    action: str
    source: str
    kind: str
    cohort: str | None


@dataclass
class RunProgress:
    """Phase changes and fault events of one run, from its ledger rows (``observe`` is the recorder observer)."""

    phases: list[tuple[str, int]] = field(default_factory=list)
    """(ledger phase, t_ns) in order."""
    schedule: list[dict[str, Any]] = field(default_factory=list)
    """The ``start`` row's ``faults``: name, type, cohort, starts_s, duration_s."""
    events: list[FaultEvent] = field(default_factory=list)
    sending_t_ns: int | None = None
    changes: int = 0
    """Bumped on every phase change or fault event (a watcher prints something new when it moves)."""

    def observe(self, row: Row) -> None:
        f = row.get("f")
        if f not in ("phase", "fault"):
            return
        data = row.get("data") or {}
        t_ns = int(row.get("t_ns") or time.time_ns())
        if f == "phase":
            name = str(data.get("phase"))
            if name == "node_closed":
                return
            self.phases.append((name, t_ns))
            if name == "start":
                self.sending_t_ns = t_ns
                self.schedule = list(data.get("faults") or [])
        else:
            self.events.append(FaultEvent(self.since_sending(t_ns), str(data.get("fault")), str(data.get("action")),
                                          str(data.get("source") or "timeline"), str(data.get("type")),
                                          data.get("cohort")))
        self.changes += 1

    def since_sending(self, t_ns: int) -> float | None:
        return None if self.sending_t_ns is None else (t_ns - self.sending_t_ns) / 1e9

    @property
    def phase(self) -> str:
        return self.phases[-1][0] if self.phases else "idle"

    def phase_word(self) -> str:
        return PHASE_WORDS.get(self.phase, self.phase)

    def _until(self, now_ns: int) -> int:
        """Now, or the moment the run ended (a finished run's clock stops)."""
        return self.phases[-1][1] if self.phase in ("end", "interrupted") else now_ns

    def elapsed_s(self, now_ns: int) -> float:
        """Since the run began (the ``connecting`` row); 0 before."""
        return max(0.0, (self._until(now_ns) - self.phases[0][1]) / 1e9) if self.phases else 0.0

    def phase_elapsed_s(self, now_ns: int) -> float:
        return max(0.0, (self._until(now_ns) - self.phases[-1][1]) / 1e9) if self.phases else 0.0

    def phase_list(self, now_ns: int) -> list[dict[str, Any]]:
        """The user-visible phases (connecting, sending, draining, done), each with its duration so far."""
        shown: list[dict[str, Any]] = []
        for i, (name, t_ns) in enumerate(self.phases):
            word = PHASE_WORDS.get(name, name)
            end = self.phases[i + 1][1] if i + 1 < len(self.phases) else self._until(now_ns)
            if shown and shown[-1]["phase"] == word:
                shown[-1]["seconds"] += (end - t_ns) / 1e9
                continue
            shown.append({"phase": word, "seconds": (end - t_ns) / 1e9})
        for item in shown:
            item["seconds"] = round(max(0.0, item["seconds"]), 1)
        if shown:
            shown[-1]["current"] = True
        return shown


def schedule_rows(progress: RunProgress, now_ns: int) -> list[dict[str, Any]]:
    """Each scheduled occurrence (seconds since sending started) as ``past``, ``active``, ``next``, or
    ``not applied`` (skipped, failed, or its time passed without an inject), counted from the timeline's own
    fault rows; then one row per manual action from the web UI."""
    rows: list[dict[str, Any]] = []
    now_s = progress.since_sending(now_ns)
    for fault in progress.schedule:
        name = str(fault.get("fault"))
        duration = float(fault.get("duration_s") or 0)
        mine = [e for e in progress.events if e.fault == name and e.source == "timeline"]
        injected = sum(e.action == "inject" for e in mine)
        healed = sum(e.action == "heal" for e in mine)
        for n, start in enumerate(fault.get("starts_s") or []):
            end = float(start) + duration
            if n < healed:
                state = "past"
            elif n < injected:
                state = "active"
            elif progress.phase == "start" and (now_s is None or now_s < end):
                state = "next"
            else:
                state = "not applied"
            rows.append({"fault": name, "type": fault.get("type"), "cohort": fault.get("cohort") or "target",
                         "start_s": round(float(start), 1), "end_s": round(end, 1), "state": state})
    for e in progress.events:
        if e.source != "timeline" and e.action in ("inject", "heal"):
            rows.append({"fault": e.fault, "type": e.kind, "cohort": e.cohort or "target",
                         "start_s": None if e.at_s is None else round(e.at_s, 1), "end_s": None,
                         "state": "injected by hand" if e.action == "inject" else "healed by hand"})
    return rows


def recipient_of(msg_id: str) -> str:
    """The recipient in a harness message id (``run:sender>recipient#seq``)."""
    return msg_id.partition(">")[2].rpartition("#")[0]


def final_by_cohort(ids: dict[str, list[str]], cohort_of: dict[str, str]) -> dict[str, dict[str, int]]:
    """Lost and unseen per recipient cohort, from anomalies.json's id lists (the checker's final word)."""
    result: dict[str, dict[str, int]] = {}
    for category in ("lost", "unseen"):
        for msg_id in ids.get(category) or []:
            cohort = cohort_of.get(recipient_of(str(msg_id)), "?")
            result.setdefault(cohort, {"lost": 0, "unseen": 0})[category] += 1
    return result


def cohort_rows(ctx: RunContext, active_by_cohort: dict[str, list[str]],
                final: dict[str, dict[str, int]] | None) -> list[dict[str, Any]]:
    """One row per cohort: what its users sent (sender group) and what they received (recipient group).
    ``final`` (per cohort lost/unseen from the verdict) replaces the provisional "unseen now"."""
    tracker = ctx.tracker
    cohort_of = {slot.user_id: slot.cohort for slot in ctx.slots}
    unseen_now: dict[str, int] = {}
    for recipient in list(tracker.outstanding.values()):
        cohort = cohort_of.get(recipient)
        if cohort is not None:
            unseen_now[cohort] = unseen_now.get(cohort, 0) + 1
    members: dict[str, list[str]] = {}
    for user, cohort in cohort_of.items():  # one pass over the users, however many cohorts
        members.setdefault(cohort, []).append(user)
    rows = []
    for cohort in [c.name for c in ctx.scenario.cohorts]:
        users = members.get(cohort, [])
        sums = {key: sum(tracker.by_user[u][key] for u in users if u in tracker.by_user)
                for key in (*SENDER_KEYS, *RECIPIENT_KEYS)}
        row: dict[str, Any] = {
            "cohort": cohort, "users": len(users), "connected": sum(u in tracker.connected for u in users),
            "sender": {k: sums[k] for k in SENDER_KEYS},
            "recipient": {k: sums[k] for k in RECIPIENT_KEYS},
            "faults_active": active_by_cohort.get(cohort, []),
        }
        if final is None:
            row["recipient"]["unseen_now"] = unseen_now.get(cohort, 0)
        else:
            row["recipient"].update(final.get(cohort) or {"lost": 0, "unseen": 0})
        rows.append(row)
    return rows


def verdict_banner(doc: dict[str, Any], report_url: str | None) -> dict[str, Any]:
    """The verdict as the tab's banner shows it: colour (by label), headline, the counts that matter, reason."""
    c = doc.get("counts") or {}
    claim = (doc.get("details") or {}).get("claim") or {}
    keys = ["lost", "acknowledged", "delivered", "unseen", "duplicated", "unexpected"]
    if claim.get("ordered"):
        keys.append("reordered")
    return {
        "label": label(doc.get("valid")), "valid": doc.get("valid"), "headline": headline(doc),
        "counts": [{"name": k, "value": c.get(k)} for k in keys],
        "reason": doc.get("reason"), "experiment": experiment_line(doc),
        "claim": (f"{claim.get('delivery')}{', ordered' if claim.get('ordered') else ''}: "
                  f"{held(claim.get('held'))}") if claim else None,
        "exit_code": doc.get("exit_code"), "report_url": report_url,
    }


def event_text(e: FaultEvent) -> str:
    """One fault event in words, e.g. "u1-blackhole injected (timeout on u1) at 2.0 s"."""
    where = f"{e.kind} on {e.cohort}" if e.cohort else e.kind
    verb = {"inject": "injected", "heal": "healed", "skipped": "skipped", "failed": "FAILED"}.get(e.action, e.action)
    when = "" if e.at_s is None else f" at {e.at_s:.1f} s"
    by = " by hand" if e.source != "timeline" else ""
    return f"{e.fault} {verb}{by} ({where}){when}"


def snapshot(ctx: RunContext, progress: RunProgress, active: list[tuple[str, str | None]],
             verdict: dict[str, Any] | None, anomaly_ids: dict[str, list[str]] | None, report_url: str | None,
             now_ns: int | None = None) -> dict[str, Any]:
    """Everything the tab and the terminal show, as plain JSON. ``active`` is (fault, cohort or None for the
    whole target) of each fault active now; ``anomaly_ids`` (anomalies.json) makes the per-cohort numbers final."""
    now = now_ns if now_ns is not None else time.time_ns()
    by_cohort: dict[str, list[str]] = {}
    for name, cohort in active:
        for c in ctx.scenario.cohorts:
            if cohort in (None, c.name):
                by_cohort.setdefault(c.name, []).append(name)
    cohort_of = {slot.user_id: slot.cohort for slot in ctx.slots}
    final = final_by_cohort(anomaly_ids, cohort_of) if verdict is not None and anomaly_ids is not None else None
    cohorts = cohort_rows(ctx, by_cohort, final if verdict is not None else None)
    totals = {key: sum(row["sender"].get(key, 0) for row in cohorts) for key in ("sent", "acked")}
    totals["received"] = sum(row["recipient"]["received"] for row in cohorts)
    totals["unseen_now"] = len(ctx.tracker.outstanding)
    phases = progress.phase_list(now)
    if verdict is not None and phases:
        phases.append({"phase": "done", "seconds": 0.0, "current": True})
        phases[-2].pop("current", None)
    return {
        "scenario": ctx.scenario.name, "target": ctx.target, "run_id": ctx.run_id,
        "phase": "done" if verdict is not None else progress.phase_word(), "ledger_phase": progress.phase,
        "elapsed_s": round(progress.elapsed_s(now), 1), "phase_elapsed_s": round(progress.phase_elapsed_s(now), 1),
        "sending_planned_s": ctx.scenario.load.duration_s,
        "phases": phases, "schedule": schedule_rows(progress, now),
        "events": [event_text(e) for e in progress.events[-20:]], "changes": progress.changes,
        "cohorts": cohorts, "totals": totals, "provisional": verdict is None,
        "final_per_cohort": final is not None,
        "verdict": verdict_banner(verdict, report_url) if verdict is not None else None,
    }
