"""What the ledger says about the run itself: did it finish, when did the drain end, who was connected."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["RunState", "run_state"]


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


def _phase_time(phases: pd.DataFrame, name: str) -> int | None:
    rows = phases[phases["phase"] == name]
    return None if rows.empty else int(rows["t_ns"].iloc[-1])


def run_state(frame: pd.DataFrame) -> RunState:
    """Read phases and connection events from a ledger frame (pure)."""
    phase_rows = frame[frame["f"] == "phase"]
    phases = pd.DataFrame(
        {
            "t_ns": phase_rows["t_ns"].to_numpy(),
            "phase": [d.get("phase") if isinstance(d, dict) else None for d in phase_rows["data"]],
            "quiescent": [d.get("quiescent") if isinstance(d, dict) else None for d in phase_rows["data"]],
        }
    )
    complete = bool((phases["phase"] == "end").any())
    drain_end = _phase_time(phases, "drain_end")
    if drain_end is None:
        drain_end = _phase_time(phases, "end")
    quiescent_rows = phases[phases["phase"] == "drain_end"]
    quiescent = None if quiescent_rows.empty else bool(quiescent_rows["quiescent"].iloc[-1])

    conn = frame[frame["f"].isin(["connect", "disconnect"])]
    if drain_end is not None:
        conn = conn[conn["t_ns"] <= drain_end]
    conn = conn.sort_values(["t_ns", "index"], kind="stable")
    last = conn.groupby("process", sort=True)["f"].last()
    connected = {str(p): f == "connect" for p, f in last.items()}
    return RunState(complete, drain_end, quiescent, connected)
