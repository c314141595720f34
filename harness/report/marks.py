"""What the per-message plot draws besides messages (pure): the drain, and each recipient's connection changes.

Read from the ledger's few non-message rows (phases, connects, disconnects), so it costs one mask over the
ledger, not one per recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.checker import Analysis

__all__ = ["Lane", "RunMarks", "MessagePoints", "run_marks", "message_points", "MAX_LANES"]

MAX_LANES = 8
"""Recipients drawn with their own connection lane (those with most lost or unseen messages, then most
disconnects; drawn in time order); the rest are counted."""


@dataclass(frozen=True)
class Lane:
    """One recipient's disconnects and reconnects (ns), and whether it had lost or unseen messages."""

    process: str
    disconnects: list[int]
    reconnects: list[int]
    troubled: int
    """Lost + unseen messages to this recipient (lanes are ordered by it)."""


@dataclass(frozen=True)
class RunMarks:
    origin_ns: int
    drain_start_ns: int | None
    drain_end_ns: int | None
    lanes: list[Lane] = field(default_factory=list)
    lanes_left_out: int = 0
    """Recipients that disconnected but have no lane of their own (more than MAX_LANES)."""


@dataclass(frozen=True)
class MessagePoints:
    """Seconds since sending started (send time) and delivery latency (ms) of each message, by outcome."""

    live_t: np.ndarray
    live_ms: np.ndarray
    replayed_t: np.ndarray
    replayed_ms: np.ndarray
    lost_t: np.ndarray
    unseen_t: np.ndarray


def _phase_time(frame: pd.DataFrame, name: str) -> int | None:
    rows = frame.loc[(frame["f"] == "phase").to_numpy(dtype=bool, na_value=False), ["t_ns", "data"]]
    times = [int(t) for t, d in zip(rows["t_ns"], rows["data"], strict=True) if isinstance(d, dict)
             and d.get("phase") == name]
    return times[-1] if times else None


def run_marks(frame: pd.DataFrame, analysis: Analysis, max_lanes: int = MAX_LANES) -> RunMarks:
    """The drain window and the connection lanes of recipients that ever disconnected."""
    origin = analysis.state.start_ns or (int(frame["t_ns"].min()) if not frame.empty else 0)
    if frame.empty:
        return RunMarks(origin, None, None)
    conn = frame.loc[frame["f"].isin(["connect", "disconnect"]).to_numpy(dtype=bool, na_value=False),
                     ["t_ns", "index", "process", "f", "conn"]].sort_values(["t_ns", "index"], kind="stable")
    if analysis.state.drain_end_ns is not None:  # users closing their sockets after the run are not an outage
        conn = conn[conn["t_ns"].to_numpy(dtype=np.int64) <= analysis.state.drain_end_ns]
    troubled: dict[str, int] = {}
    for name in ("lost", "unseen"):
        ids = analysis.ids.get(name, [])
        if ids:  # isin, not .loc[ids]: a label lookup builds a hash of millions of ids
            chosen = analysis.messages.loc[analysis.messages.index.isin(ids), "recipient"]
            for who, n in chosen.astype(str).value_counts().items():
                troubled[str(who)] = troubled.get(str(who), 0) + int(n)
    # plain arrays split by process: per-group pandas calls cost ~7 ms each, seconds at a 1,000-user crowd
    process = conn["process"].astype(str).to_numpy(dtype=object)
    t_ns = conn["t_ns"].to_numpy(dtype=np.int64)
    is_down = (conn["f"] == "disconnect").to_numpy(dtype=bool)
    epoch = pd.to_numeric(conn["conn"], errors="coerce").fillna(1).to_numpy(dtype="float64")
    is_up = ~is_down & (epoch > 1)
    keep = is_down | is_up
    lanes: list[Lane] = []
    if keep.any():
        names, inverse = np.unique(process[keep], return_inverse=True)
        times, down = t_ns[keep], is_down[keep]
        order = np.argsort(inverse, kind="stable")  # stable: each lane keeps time order
        bounds = np.searchsorted(inverse[order], np.arange(names.size + 1))
        for code, name in enumerate(names):
            rows = order[bounds[code]:bounds[code + 1]]
            lanes.append(Lane(str(name), times[rows][down[rows]].tolist(), times[rows][~down[rows]].tolist(),
                              troubled.get(str(name), 0)))
    lanes.sort(key=lambda lane: (-lane.troubled, -len(lane.disconnects), lane.process))
    shown = sorted(lanes[:max_lanes], key=lambda lane: min(lane.disconnects + lane.reconnects))  # in time order
    return RunMarks(origin, _phase_time(frame, "drain_start"), analysis.state.drain_end_ns, shown,
                    max(0, len(lanes) - max_lanes))


def message_points(analysis: Analysis, origin_ns: int) -> MessagePoints:
    """Per-message coordinates for the plot: delivered ones by latency, lost and unseen ones by send time."""
    msgs = analysis.messages
    replayed = analysis.replayed
    delivered = msgs["first_recv_ns"].notna().to_numpy(dtype=bool)
    if int(delivered.sum()) == len(replayed) and replayed.index.equals(msgs.index[delivered]):
        invoke = msgs["invoke_ns"].to_numpy(dtype="float64")[delivered]  # the checker's own order: no lookup
    else:
        invoke = msgs["invoke_ns"].reindex(replayed.index).to_numpy(dtype="float64", na_value=np.nan)
    t = (invoke - origin_ns) / 1e9
    ms = replayed["latency_ns"].to_numpy(dtype="float64") / 1e6
    mask = replayed["replayed"].to_numpy(dtype=bool)

    def send_times(name: str) -> np.ndarray:
        ids = analysis.ids.get(name, [])
        if not ids:
            return np.zeros(0)
        invoked: np.ndarray = msgs.loc[msgs.index.isin(ids), "invoke_ns"].to_numpy(dtype="float64", na_value=np.nan)
        return (invoked - origin_ns) / 1e9

    return MessagePoints(t[~mask], ms[~mask], t[mask], ms[mask], send_times("lost"), send_times("unseen"))
