"""What the ledger says about the run itself (pure): did it finish, when did the drain end, who was
connected, which load processes are healthy, and when faults were active."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.checker.base import RowTotals

__all__ = ["RunState", "FaultWindow", "run_state"]


@dataclass(frozen=True)
class FaultWindow:
    """One injected fault: when it started and (if it did) when it healed."""

    fault: str
    cohort: str | None
    type: str | None
    inject_ns: int
    heal_ns: int | None


@dataclass(frozen=True)
class RunState:
    """Facts about the run needed before loss can be judged."""

    complete: bool
    """True when the controller wrote the ``end`` phase: sending stopped and the drain finished."""
    drain_end_ns: int | None
    """When the drain ended (``drain_end`` phase, else ``end``); loss is judged at this instant."""
    quiescent: bool | None
    """Whether the drain reached quiescence (every acked send delivered) before its timeout."""
    connected_at_end: dict[str, bool]
    """Per process with connection rows: was its last connect/disconnect before the drain end a connect."""
    node_of: dict[str, str] = field(default_factory=dict)
    """The load process (node) that observed each user (its connects and receipts)."""
    unhealthy_nodes: dict[str, str] = field(default_factory=dict)
    """Nodes whose record cannot be trusted to be complete, with the reason."""
    cohort_of: dict[str, str] = field(default_factory=dict)
    connects: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Every connect row: process, conn, t_ns (sorted by t_ns)."""
    faults: list[FaultWindow] = field(default_factory=list)
    start_ns: int | None = None
    """When sending started (``start`` phase), else the first row's time."""
    still_delivering: bool = False
    """The drain hit its limit while the outstanding count was still falling (``drain_end.progressing``)."""


def _data_field(rows: pd.DataFrame, key: str) -> list[Any]:
    return [d.get(key) if isinstance(d, dict) else None for d in rows["data"]]


def _fault_windows(frame: pd.DataFrame) -> list[FaultWindow]:
    rows = frame.loc[(frame["f"] == "fault").to_numpy(dtype=bool, na_value=False), ["t_ns", "index", "data"]]
    rows = rows.sort_values(["t_ns", "index"], kind="stable")
    open_faults: dict[str, tuple[int, dict[str, Any]]] = {}
    windows: list[FaultWindow] = []
    for t_ns, data in zip(rows["t_ns"], rows["data"], strict=True):
        if not isinstance(data, dict):
            continue
        name = str(data.get("fault"))
        if data.get("action") == "inject":
            open_faults[name] = (int(t_ns), data)
        elif data.get("action") == "heal" and name in open_faults:
            start, spec = open_faults.pop(name)
            windows.append(FaultWindow(name, spec.get("cohort"), spec.get("type"), start, int(t_ns)))
    for name, (start, spec) in open_faults.items():
        windows.append(FaultWindow(name, spec.get("cohort"), spec.get("type"), start, None))
    return sorted(windows, key=lambda w: w.inject_ns)


def _closing_rows(phase_rows: pd.DataFrame, phases: pd.DataFrame) -> tuple[dict[str, int | None], dict[str, str]]:
    """Each node's ``node_closed`` row index, and the nodes whose closing row carries another run id than the
    run's own (the ``start`` phase's): a ledger file copied in from another run."""
    closing = phases["phase"].to_numpy() == "node_closed"
    nodes = phase_rows["node"].astype(str).to_numpy()
    index_of: dict[str, int | None] = {}
    if "index" in phase_rows.columns:
        for node, index in zip(nodes[closing], phase_rows["index"].to_numpy()[closing], strict=True):
            index_of[node] = None if pd.isna(index) else int(index)
    foreign: dict[str, str] = {}
    if "run_id" in phase_rows.columns:
        runs = phase_rows["run_id"].to_numpy()
        own = [r for r, p in zip(runs, phases["phase"].to_numpy(), strict=True) if p == "start" and not pd.isna(r)]
        if own:
            for node, run in zip(nodes[closing], runs[closing], strict=True):
                if not pd.isna(run) and str(run) != str(own[-1]):
                    foreign[node] = str(run)
    return index_of, foreign


def run_state(frame: pd.DataFrame, damaged_nodes: dict[str, str] | None = None,
              totals: RowTotals | None = None) -> RunState:
    """Read phases, connections, node health and faults from a ledger frame.

    ``damaged_nodes``: nodes whose ledger file had unreadable lines (from the reader), with the reason.
    A node that wrote rows but no ``node_closed`` phase, while another node did, stopped without closing
    its ledger (a crashed load process): it is unhealthy too. So is a worker its master reported incomplete
    (``f == "node"`` rows), with the users it ran, even when none of its rows arrived; and a worker the master
    reported complete whose closed record is not in this frame (its ``ledger-<node>.jsonl`` missing from the
    folder, or a master's ``ledger.jsonl`` checked alone): what its users observed is not here to judge.
    ``totals``: for a frame without its send and receipt rows (a partitioned check), what those rows say.
    """
    wanted = [c for c in ("t_ns", "node", "data", "index", "run_id") if c in frame.columns]
    phase_rows = frame.loc[(frame["f"] == "phase").to_numpy(dtype=bool, na_value=False), wanted]
    phases = pd.DataFrame({"t_ns": phase_rows["t_ns"].to_numpy(), "node": phase_rows["node"].to_numpy(),
                           "phase": _data_field(phase_rows, "phase"),
                           "quiescent": _data_field(phase_rows, "quiescent"),
                           "progressing": _data_field(phase_rows, "progressing")})
    complete = bool((phases["phase"] == "end").any())

    def last_time(name: str) -> int | None:
        rows = phases[phases["phase"] == name]
        return None if rows.empty else int(rows["t_ns"].iloc[-1])

    drain_end = last_time("drain_end")
    if drain_end is None:
        drain_end = last_time("end")
    quiescent_rows = phases[phases["phase"] == "drain_end"]
    quiescent = None if quiescent_rows.empty else bool(quiescent_rows["quiescent"].iloc[-1])
    still_delivering = not quiescent_rows.empty and quiescent_rows["progressing"].iloc[-1] is True
    start = last_time("start")
    if start is None and not frame.empty:
        start = int(frame["t_ns"].min())
    if totals is not None and last_time("start") is None and totals.first_t_ns is not None:
        start = totals.first_t_ns if start is None else min(start, totals.first_t_ns)

    conn = frame.loc[frame["f"].isin(["connect", "disconnect"]).to_numpy(dtype=bool, na_value=False),
                     ["t_ns", "index", "process", "f", "conn", "node", "data"]]
    judged = conn[conn["t_ns"] <= drain_end] if drain_end is not None else conn
    judged = judged.sort_values(["t_ns", "index"], kind="stable")
    last = judged.groupby("process", sort=True)["f"].last()
    connected = {str(p): f == "connect" for p, f in last.items()}

    node_of = {str(p): str(n) for p, n in conn.groupby("process", sort=True)["node"].first().items()}
    connect_rows = conn[conn["f"] == "connect"]
    cohort_of = {str(p): str(c) for p, c in zip(connect_rows["process"], _data_field(connect_rows, "cohort"),
                                                strict=True) if c is not None}

    unhealthy = dict(damaged_nodes or {})
    if unhealthy:  # users seen only through receipts (ledgers without connect rows) still need their node
        recv = frame.loc[(frame["f"] == "recv").to_numpy(dtype=bool, na_value=False), ["recipient", "node"]]
        for user, node in recv.groupby("recipient", sort=True)["node"].first().items():
            node_of.setdefault(str(user), str(node))
        for user, node in sorted((totals.receivers if totals is not None else {}).items()):
            node_of.setdefault(user, node)
    closed = set(phases.loc[phases["phase"] == "node_closed", "node"].astype(str))
    closing_index, foreign = _closing_rows(phase_rows, phases)
    seen_nodes = {str(n) for n in frame["node"].dropna().unique()} | set(totals.nodes if totals else ())
    reports = frame.loc[(frame["f"] == "node").to_numpy(dtype=bool, na_value=False), "data"]
    for report in reports:  # a distributed master's word on each worker, which holds even if no row arrived
        if not isinstance(report, dict) or report.get("node") is None:
            continue
        node = str(report.get("node"))
        if report.get("complete") is False:
            reason = str(report.get("reason") or "its ledger did not arrive complete")
        elif node not in closed:  # the master saw it complete, but this ledger does not hold its record
            if node in seen_nodes:
                reason = (f"the master received its ledger complete, but the ledger-{node}.jsonl checked here "
                          "ends before its close (truncated after the run)")
            else:
                reason = (f"the master received its ledger complete, but ledger-{node}.jsonl is not in what was "
                          "checked (a missing file: check the whole run folder)")
        elif report.get("rows") is not None and closing_index.get(node) != int(report["rows"]):
            reason = (f"the master confirmed {int(report['rows'])} rows from it, but the ledger-{node}.jsonl checked "
                      f"here closes at row {closing_index.get(node)} (a file replaced after the run)")
        else:
            continue
        unhealthy.setdefault(node, reason)
        for user in report.get("users") or []:
            node_of[str(user)] = node
    for node, run in foreign.items():
        unhealthy.setdefault(node, f"its record belongs to another run ({run}), not this one: a file from another "
                                   "run in this folder")
    if closed or complete:  # a finished run closes every node's record: a missing close means a cut-off tail
        for node in seen_nodes - closed:
            unhealthy.setdefault(node, "its ledger was never closed (the load process stopped abruptly)")

    connects = pd.DataFrame({"process": connect_rows["process"].to_numpy(), "conn": connect_rows["conn"].to_numpy(),
                             "t_ns": connect_rows["t_ns"].to_numpy(dtype="int64")}).sort_values("t_ns", kind="stable")
    return RunState(complete, drain_end, quiescent, connected, node_of, unhealthy, cohort_of, connects,
                    _fault_windows(frame), start, still_delivering)
