"""The Delivery tab in Locust's web UI, the fault page, and the run's report.html served next to them.

Locust draws an extended tab as a plain table (``extended_tables``, fed here on ``/stats/requests``); the
harness's own panel (``static/tab.js``, added to Locust's index page) draws over it from ``/delivery/state``:
a verdict banner (red FAIL, green PASS, grey UNKNOWN) with the counts that matter, the reason, the
experiment line and a link to report.html; the phases in users' words with elapsed time; the fault
schedule (past, active, next); per cohort a sender and a recipient group. Until the verdict, "unseen now"
is marked provisional; after it, the checker's lost and unseen per cohort replace it. If the script does
not run, Locust's plain table shows the same numbers.

The fault routes change the run, so a page on another site must not be able to press the buttons (Locust
enables CORS for every origin): a POST must be JSON (a cross-site HTML form or "simple" request cannot
send that without a preflight) and carry no Origin other than the UI's own, else 403. Once the run has
ended (the ledger is closed), inject and heal answer 409: nothing could be recorded any more. Every answer
carries a sentence (``message`` or ``error``) that the fault page shows as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from flask import Response, jsonify, request, send_from_directory

from harness.locust_ext.live import RunProgress, snapshot
from harness.run.context import RunContext
from harness.run.timeline import TimelineFault

__all__ = ["COLUMNS", "delivery_rows", "install", "refusal", "fault_answer"]

HERE = Path(__file__).parent
STATIC = HERE / "static"
_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
REPORT_FILES = ("report.html", "report.md", "verdict.json", "anomalies.json", "junit.xml", "over_time.csv")
"""What /delivery/report/ serves from the run folder, besides the report's images (``*.png``)."""

COLUMNS = [
    ("cohort", "Cohort"), ("sent", "Sender: sent"), ("acked", "Sender: acked"), ("failed", "Sender: refused"),
    ("info", "Sender: outcome unknown"), ("connected", "Recipient: connected"), ("received", "Recipient: received"),
    ("unseen", "Recipient: unseen now (provisional) / lost at the end"), ("duplicated", "Recipient: duplicated"),
    ("reconnects", "Recipient: reconnects"), ("faults", "Faults active"), ("phase", "Phase"),
]
"""Locust's own table for the tab (shown only if the panel script does not run)."""


def delivery_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Locust's plain table: one row per cohort from a snapshot, plus the verdict in one row of its own."""
    rows = []
    for c in state["cohorts"]:
        r = c["recipient"]
        unseen = f"unseen now {r['unseen_now']}" if "unseen_now" in r else f"lost {r['lost']}, unseen {r['unseen']}"
        rows.append({"cohort": c["cohort"], **c["sender"], "connected": f"{c['connected']}/{c['users']}",
                     "received": r["received"], "unseen": unseen, "duplicated": r["duplicated"],
                     "reconnects": r["reconnects"], "faults": ", ".join(c["faults_active"]) or "-",
                     "phase": state["phase"]})
    banner = state.get("verdict")
    if banner is not None:
        rows.append({"cohort": f"VERDICT {banner['label']}", "sent": banner["headline"],
                     "faults": banner.get("reason") or "-", "phase": f"exit {banner['exit_code']}"})
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


def fault_answer(fault: TimelineFault, action: str, was_active: bool) -> str:
    """What an inject or heal did, in a sentence."""
    where = f"{fault.spec.type} on {fault.spec.cohort}'s listener" if fault.spec.cohort else fault.spec.type
    now_active = bool(getattr(fault, "active", False))
    if action == "inject":
        if was_active:
            return f"{fault.spec.name} was already active: nothing changed."
        return f"{fault.spec.name} injected ({where}); recorded in the ledger as a manual action."
    if not was_active:
        return f"{fault.spec.name} was not active: nothing to heal."
    return (f"{fault.spec.name} healed ({where}); recorded in the ledger as a manual action." if not now_active
            else f"{fault.spec.name} is still active after the heal: see the proxy log.")


def install(environment: Any, ctx: RunContext, faults: list[TimelineFault], progress: RunProgress,
            verdict: Callable[[], dict[str, Any] | None], run_dir: Path) -> None:
    """Add the Delivery tab, its state, the report, and the fault page and routes to Locust's web UI."""
    web_ui = environment.web_ui
    if web_ui is None:
        return
    web_ui.template_args["extended_tabs"] = [{"title": "Delivery", "key": "delivery"}]
    web_ui.template_args["extended_tables"] = [
        {"key": "delivery", "structure": [{"key": key, "title": title} for key, title in COLUMNS]}]
    by_name = {f.spec.name: f for f in faults}

    final: dict[str, Any] = {}  # anomalies.json, read once when the verdict exists (a soak's can be large)

    def state() -> dict[str, Any]:
        doc = verdict()
        if doc is not None and "ids" not in final and (run_dir / "anomalies.json").exists():
            final["ids"] = json.loads((run_dir / "anomalies.json").read_text())
        ids = final.get("ids")
        report = "/delivery/report/report.html" if doc is not None and (run_dir / "report.html").exists() else None
        active = [(f.spec.name, f.spec.cohort) for f in faults if getattr(f, "active", False)]
        return snapshot(ctx, progress, active, doc, ids, report)

    def ended() -> bool:
        return ctx.stopped or verdict() is not None or progress.phase in ("end", "interrupted")

    @web_ui.app.after_request
    def extend(response: Response) -> Response:
        if request.path == "/stats/requests" and response.is_json:
            body = response.get_json(silent=True) or {}
            rows = delivery_rows(state())
            response.set_data(json.dumps({**body, "extended_stats": [{"key": "delivery", "data": rows}]}))
        elif request.path == "/" and response.mimetype == "text/html" and not response.direct_passthrough:
            page = response.get_data(as_text=True)
            tags = ('<link rel="stylesheet" href="/delivery/static/delivery.css">'
                    '<script src="/delivery/static/tab.js" defer></script>')
            response.set_data(page.replace("</head>", tags + "</head>", 1))
        return response

    @web_ui.app.route("/delivery/state")
    def delivery_state() -> Response:
        return jsonify(state())

    @web_ui.app.route("/delivery/static/<path:name>")
    def delivery_static(name: str) -> Response:
        return send_from_directory(STATIC, name, max_age=0)

    @web_ui.app.route("/delivery/report/<path:name>")
    def delivery_report(name: str) -> Response | tuple[Response, int]:
        """The run folder's report (and its images), once written; nothing else of the folder."""
        if name not in REPORT_FILES and not (name.endswith(".png") and "/" not in name):
            return jsonify({"error": f"{name} is not a report file"}), 404
        if not (run_dir / name).exists():
            return jsonify({"error": f"{name} is written when the run has been judged"}), 404
        return send_from_directory(run_dir.resolve(), name, max_age=0)

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
            return jsonify({"error": f"there is no fault '{name}' or action '{action}' (inject or heal)"}), 404
        if ended():
            return jsonify({"error": f"the run has ended, so '{action}' would not be recorded in the ledger: "
                                     "nothing was done", "phase": progress.phase_word()}), 409
        was_active = bool(getattr(fault, "active", False))
        try:
            (fault.inject if action == "inject" else fault.heal)(source="web-ui")  # in the ledger like a timed one
        except Exception as exc:  # the proxy or the process refused: say so, the fault's own state is unchanged
            return jsonify({"error": f"{name} could not be {'injected' if action == 'inject' else 'healed'}: "
                                     f"{exc}", "active": getattr(fault, "active", False)}), 502
        return jsonify({"name": name, "active": getattr(fault, "active", False),
                        "message": fault_answer(fault, action, was_active)}), 200

    @web_ui.app.route("/delivery")
    def delivery_page() -> Response:
        """The fault page: one row per fault with inject / heal buttons, answered in words."""
        listed = [{"name": f.spec.name, "type": f.spec.type, "cohort": f.spec.cohort,
                   "active": getattr(f, "active", False)} for f in faults]
        page = _TEMPLATES.get_template("faults.html.j2").render(
            scenario=ctx.scenario.name, target=ctx.target, faults=listed, phase=progress.phase_word(),
            note="The run has ended: actions are refused." if ended() else "")
        return Response(page, mimetype="text/html")
