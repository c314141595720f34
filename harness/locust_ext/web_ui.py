"""The Delivery tab in Locust's web UI: live numbers per cohort and buttons that inject or heal faults.

Rows are provisional while the run is going ("unseen now" is what is acknowledged but not yet received;
it only becomes "lost" after the drain); when the run ends, a final row carries the verdict. Every
manual fault action goes through the same fault objects as the timeline, so it is in the ledger too.

The fault routes change the run, so a page on another site must not be able to press the buttons (Locust
enables CORS for every origin): a POST must be JSON (a cross-site HTML form or "simple" request cannot
send that without a preflight) and carry no Origin other than the UI's own, else 403. Once the run has
ended (the ledger is closed), inject and heal answer 409: nothing could be recorded any more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request

from harness.report.summary import experiment_line
from harness.run.context import RunContext
from harness.run.timeline import TimelineFault

__all__ = ["COLUMNS", "delivery_rows", "install", "refusal"]

COLUMNS = [
    ("cohort", "Cohort"), ("connected", "Connected"), ("sent", "Sent"), ("acked", "Acked"), ("failed", "Failed"),
    ("info", "Outcome unknown"), ("received", "Received"), ("unseen_now", "Unseen now (provisional)"),
    ("duplicated", "Duplicated"), ("reconnects", "Reconnects"), ("faults", "Faults active"), ("phase", "Phase"),
]


def delivery_rows(ctx: RunContext, faults: list[TimelineFault], phase: str,
                  verdict: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per cohort (pure over the live tracker), plus the final verdict once there is one."""
    tracker = ctx.tracker
    cohort_of = {slot.user_id: slot.cohort for slot in ctx.slots}
    rows = []
    for cohort in [c.name for c in ctx.scenario.cohorts]:
        users = [u for u, c in cohort_of.items() if c == cohort]
        total = {key: sum(tracker.by_user[u][key] for u in users)
                 for key in ("sent", "acked", "failed", "info", "received", "duplicated", "reconnects")}
        active = [f.spec.name for f in faults if getattr(f, "active", False)
                  and (f.spec.cohort in (None, cohort))]
        rows.append({
            "cohort": cohort, "connected": f"{sum(u in tracker.connected for u in users)}/{len(users)}", **total,
            "unseen_now": sum(1 for r in tracker.outstanding.values() if cohort_of.get(r) == cohort),
            "faults": ", ".join(active) or "-", "phase": phase,
        })
    if verdict is not None:
        counts = verdict.get("counts") or {}
        rows.append({"cohort": "FINAL VERDICT", "connected": json.dumps(verdict.get("valid")),
                     "sent": counts.get("attempted"), "acked": counts.get("acknowledged"),
                     "failed": counts.get("failed"), "info": counts.get("indeterminate"),
                     "received": counts.get("delivered"), "unseen_now": f"lost {counts.get('lost')}",
                     "duplicated": counts.get("duplicated"), "reconnects": "-",
                     "faults": " · ".join(x for x in (verdict.get("reason"), experiment_line(verdict)) if x) or "-",
                     "phase": f"exit {verdict.get('exit_code')}"})
    return rows


def refusal(method: str, origin: str | None, own_origin: str, mimetype: str) -> str | None:
    """Why a state-changing request must be refused as possibly cross-site (None: it may go ahead)."""
    if method != "POST":
        return None
    if origin is not None and origin.rstrip("/") != own_origin.rstrip("/"):
        return f"cross-origin request refused (Origin {origin!r} is not this UI's {own_origin!r})"
    if mimetype != "application/json":
        return "send Content-Type: application/json (form posts are refused: another site could send them)"
    return None


def install(environment: Any, ctx: RunContext, faults: list[TimelineFault], phase: Callable[[], str],
            verdict: Callable[[], dict[str, Any] | None]) -> None:
    """Add the Delivery tab, its live data on /stats/requests, and the fault routes to Locust's web UI."""
    web_ui = environment.web_ui
    if web_ui is None:
        return
    web_ui.template_args["extended_tabs"] = [{"title": "Delivery", "key": "delivery"}]
    web_ui.template_args["extended_tables"] = [
        {"key": "delivery", "structure": [{"key": key, "title": title} for key, title in COLUMNS]}]
    by_name = {f.spec.name: f for f in faults}

    @web_ui.app.after_request
    def add_delivery_stats(response: Response) -> Response:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        rows = delivery_rows(ctx, faults, phase(), verdict())
        body = response.get_json(silent=True) or {}
        response.set_data(json.dumps({**body, "extended_stats": [{"key": "delivery", "data": rows}]}))
        return response

    @web_ui.app.route("/delivery/faults")
    def list_faults() -> Response:
        return jsonify([{"name": f.spec.name, "type": f.spec.type, "cohort": f.spec.cohort,
                         "active": getattr(f, "active", False)} for f in faults])

    @web_ui.app.route("/delivery/faults/<name>/<action>", methods=["POST"])
    def act_on_fault(name: str, action: str) -> tuple[Response, int]:
        refused = refusal(request.method, request.headers.get("Origin"), request.host_url, request.mimetype)
        if refused is not None:
            return jsonify({"error": refused}), 403
        fault = by_name.get(name)
        if fault is None or action not in ("inject", "heal"):
            return jsonify({"error": f"no fault '{name}' or action '{action}' (inject | heal)"}), 404
        if ctx.stopped or verdict() is not None or phase() == "end":
            return jsonify({"error": f"the run has ended: '{action}' would not be recorded in the ledger, "
                                     "so nothing was done", "phase": phase()}), 409
        (fault.inject if action == "inject" else fault.heal)(source="web-ui")  # in the ledger like a timed one
        return jsonify({"name": name, "active": getattr(fault, "active", False)}), 200

    @web_ui.app.route("/delivery")
    def delivery_page() -> Response:
        """A minimal page with the fault buttons (the Locust tab itself is table-only)."""
        buttons = "".join(
            f"<tr><td>{f.spec.name}</td><td>{f.spec.type}</td><td>{f.spec.cohort or 'target'}</td><td>"
            f"<button data-fault='{f.spec.name}' data-action='inject'>inject now</button> "
            f"<button data-fault='{f.spec.name}' data-action='heal'>heal now</button></td></tr>" for f in faults)
        page = ("<!doctype html><title>Delivery faults</title><h1>Faults</h1><table>" + buttons + "</table>"
                "<p id='status'></p><p><a href='/'>back to Locust</a> (Delivery tab)</p><script>"
                "for (const b of document.querySelectorAll('button')) b.onclick = async () => {"
                " const r = await fetch('/delivery/faults/' + b.dataset.fault + '/' + b.dataset.action,"
                " {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});"
                " document.getElementById('status').textContent = JSON.stringify(await r.json());"
                "};</script>")
        return Response(page, mimetype="text/html")
