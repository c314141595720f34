"""Charts for the HTML reports (matplotlib, Agg backend), returned as PNG data URIs."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from harness.checker.run_state import FaultWindow  # noqa: E402
from harness.report.marks import MessagePoints, RunMarks  # noqa: E402

__all__ = ["over_time_chart", "latency_cdf_chart", "stable_latency_cdf_chart", "per_cohort_chart", "per_message_chart",
           "plain_ms_axis",
           "latency_comparison_chart", "cdf_points", "CDF_STEPS", "MAX_POINTS", "LATENCY_RANGE_MS", "ROOM_LINES"]

LATENCY_RANGE_MS = (0.5, 20_000.0)
"""The latency axis of every per-message plot unless its data go beyond: runs side by side share one scale."""

ROOM_LINES = 6
"""Rooms drawn with their own line in the stable-latency CDF (the busiest); beyond, only every room together."""

MAX_POINTS = 20_000
"""Delivered messages drawn per series (evenly spaced in send order); lost and unseen are all drawn."""


def _plain(value: float, _pos: object = None) -> str:
    """1, 20, 500, 1,000 … instead of 10⁰ / 4×10⁻¹: ms a person reads at a glance. Below 1,000 three
    significant digits, so the ticks of an axis narrower than a decade (1.2, 1.4 …) do not all read "1"."""
    if value >= 999.5 or (value >= 1 and value == round(value)):  # .3g would print 1e+03
        return f"{value:,.0f}"
    return f"{value:.3g}"


def plain_ms_axis(ax: Axes, axis: str = "y") -> None:
    """A log axis in milliseconds with plain tick labels at 1-2-5 steps."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(_plain))
    target.set_minor_formatter(NullFormatter())


def _data_uri(fig: Figure, dpi: int = 90) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _shade(ax: Axes, faults: list[FaultWindow], origin_ns: int, end_s: float, labels: bool = True) -> None:
    for index, window in enumerate(faults):
        start = (window.inject_ns - origin_ns) / 1e9
        stop = (window.heal_ns - origin_ns) / 1e9 if window.heal_ns is not None else end_s
        ax.axvspan(start, stop, color="tab:red", alpha=0.12,
                   label=f"fault: {window.fault}" if labels and index < 4 else None)


def _drain(ax: Axes, marks: RunMarks, labels: bool = True) -> None:
    if marks.drain_start_ns is None or marks.drain_end_ns is None:
        return
    ax.axvspan((marks.drain_start_ns - marks.origin_ns) / 1e9, (marks.drain_end_ns - marks.origin_ns) / 1e9,
               color="tab:gray", alpha=0.13, hatch="//", label="drain (sending stopped)" if labels else None)


def _thin(t: np.ndarray, values: np.ndarray, cap: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``cap`` points: the slowest 5 % of the cap always (outliers are what a person looks for), the rest
    evenly spaced in send order."""
    if t.size <= cap:
        return t, values
    slowest = np.argsort(values, kind="stable")[-(cap // 20):]
    spaced = np.argsort(t, kind="stable")[np.linspace(0, t.size - 1, cap - slowest.size).astype(np.int64)]
    keep = np.union1d(slowest, spaced)
    return t[keep], values[keep]


def per_message_chart(points: MessagePoints, marks: RunMarks, faults: list[FaultWindow], title: str) -> str:
    """Every message at its send time: delivery latency if it arrived, a red mark on top if it was lost.

    Below, one lane per recipient that dropped its connection (▼ disconnect, ▲ reconnect); fault windows and
    the drain are shaded across the whole figure, so a lost message is seen *where* it was lost.
    """
    lanes = marks.lanes
    fig = plt.figure(figsize=(9.5, 4.6 + 0.28 * len(lanes)))
    grid = fig.add_gridspec(3, 1, height_ratios=[0.55, 3.2, 0.35 + 0.3 * max(1, len(lanes))], hspace=0.08)
    top = fig.add_subplot(grid[0])
    main = fig.add_subplot(grid[1], sharex=top)
    low = fig.add_subplot(grid[2], sharex=top)
    ends = [float(np.nanmax(a)) for a in (points.live_t, points.replayed_t, points.lost_t, points.unseen_t)
            if a.size and not np.isnan(a).all()]
    if marks.drain_end_ns is not None:
        ends.append((marks.drain_end_ns - marks.origin_ns) / 1e9)
    end = max(ends) if ends and max(ends) > 0 else 1.0
    for ax in (top, main, low):
        _shade(ax, faults, marks.origin_ns, end, labels=ax is main)
        _drain(ax, marks, labels=ax is main)
        ax.grid(alpha=0.25)
    for t, ms, name, color in ((points.live_t, points.live_ms, "delivered live", "tab:green"),
                               (points.replayed_t, points.replayed_ms, "delivered after a reconnect", "tab:purple")):
        if t.size:
            shown_t, shown_ms = _thin(t, np.maximum(ms, 0.01))
            note = f", {shown_t.size:,} drawn" if shown_t.size < t.size else ""
            main.scatter(shown_t, shown_ms, s=7, color=color, alpha=0.65, linewidths=0,
                         label=f"{name} (n={t.size:,}{note})", rasterized=True)
    if points.live_t.size or points.replayed_t.size:
        main.set_yscale("log")
        plain_ms_axis(main)
        delivered = np.concatenate([points.live_ms, points.replayed_ms])
        low_ms, high_ms = LATENCY_RANGE_MS
        main.set_ylim(min(low_ms, float(np.nanmin(np.maximum(delivered, 0.01)))) * 0.8,
                      max(high_ms, float(np.nanmax(delivered))) * 1.25)
    else:
        main.text(0.5, 0.5, "no message was delivered", transform=main.transAxes, ha="center", va="center")
    main.set_ylabel("delivery latency (ms)")
    top.set_yticks([0.5, 1.5], ["unseen", "lost"])
    top.set_ylim(0, 2)
    if points.lost_t.size:
        top.scatter(points.lost_t, np.full(points.lost_t.size, 1.5), marker="|", s=120, color="tab:red",
                    label=f"lost (n={points.lost_t.size:,})")
    if points.unseen_t.size:
        top.scatter(points.unseen_t, np.full(points.unseen_t.size, 0.5), marker="|", s=120, color="tab:orange",
                    label=f"unseen (n={points.unseen_t.size:,})")
    if not points.lost_t.size and not points.unseen_t.size:
        top.text(0.5, 0.5, "no message lost or unseen", ha="center", va="center", transform=top.transAxes,
                 fontsize=8, color="#2e7d32")
    top.tick_params(labelbottom=False)
    main.tick_params(labelbottom=False)
    top.set_title(f"{title}: each message at its send time" + ("" if not points.lost_t.size
                  else f" — {points.lost_t.size:,} lost, in red"), fontsize=10)
    for row, lane in enumerate(lanes):
        y = len(lanes) - 1 - row
        down = (np.asarray(lane.disconnects, dtype="float64") - marks.origin_ns) / 1e9
        up = (np.asarray(lane.reconnects, dtype="float64") - marks.origin_ns) / 1e9
        for start in down:  # offline span: from each disconnect to the next reconnect (or the end)
            later = up[up >= start]
            low.plot([start, later.min() if later.size else end], [y, y], color="tab:red", linewidth=3, alpha=0.35)
        low.scatter(down, np.full(down.size, y), marker="v", color="tab:red", s=28, zorder=3,
                    label="disconnect" if row == 0 else None)
        low.scatter(up, np.full(up.size, y), marker="^", color="tab:green", s=28, zorder=3,
                    label="reconnect" if row == 0 else None)
    if lanes:
        low.set_yticks(range(len(lanes)), [lane.process for lane in reversed(lanes)], fontsize=7.5)
        low.set_ylim(-0.7, len(lanes) - 0.3)
    else:
        low.set_yticks([])
        low.text(0.5, 0.5, "no recipient disconnected", transform=low.transAxes, ha="center", va="center", fontsize=8)
    if marks.lanes_left_out:
        low.text(1.0, -0.55, f"+{marks.lanes_left_out} more recipients disconnected", transform=low.transAxes,
                 ha="right", fontsize=7, color="#555")
    starts = [float(np.nanmin(a)) for a in (points.live_t, points.replayed_t, points.lost_t, points.unseen_t)
              if a.size and not np.isnan(a).all()]
    low.set_xlim(min([0.0, *starts]), end * 1.01)
    low.set_xlabel("send time (seconds since sending started)")
    handles: list[Any] = []
    labels: list[str] = []
    for ax in (top, main, low):  # one legend under the figure: none of it covers a message
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize=7.5, frameon=False)
    return _data_uri(fig, dpi=110)  # drawn page-wide: sharper than the other charts


def over_time_chart(series: pd.DataFrame, faults: list[FaultWindow], origin_ns: int | None, title: str) -> str:
    """Cumulative sent / acked / delivered, and unseen (acked, not yet delivered), fault windows shaded."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True, height_ratios=[3, 2])
    end = float(series["t_s"].max()) if len(series) else 1.0
    for column, color in (("sent", "tab:gray"), ("acked", "tab:blue"), ("delivered", "tab:green")):
        top.plot(series["t_s"], series[column], label=column, color=color, linewidth=1.4)
    bottom.fill_between(series["t_s"], series["unseen"], step="post", color="tab:orange", alpha=0.6,
                        label="unseen (acked, not yet delivered)")
    for ax in (top, bottom):
        if origin_ns is not None:
            _shade(ax, faults, origin_ns, end)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    top.set_ylabel("messages (cumulative)")
    bottom.set_ylabel("unseen")
    bottom.set_xlabel("seconds since sending started")
    top.set_title(title, fontsize=10)
    return _data_uri(fig)


CDF_STEPS = 4_000
"""Steps a CDF line draws at most (3 M latencies drawn step by step took 3 s and 360 MB; an 800 px chart
resolves a few hundred; capped at 4,000, no pixel differed by more than 10 %)."""


def cdf_points(ordered: np.ndarray, cap: int = CDF_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of sorted values as (x, fraction at or below x): every value when there are at most
    ``cap``, else ``cap`` ranks evenly spaced, the fastest and the slowest always among them."""
    if ordered.size <= cap:
        ranks = np.arange(ordered.size)
    else:
        ranks = np.unique(np.linspace(0, ordered.size - 1, cap).round().astype(np.int64))
    return ordered[ranks], (ranks + 1) / ordered.size


def latency_cdf_chart(live_ms: np.ndarray, replayed_ms: np.ndarray, title: str) -> str:
    """Empirical CDF of delivery latency, live vs replayed (crossed a reconnect), log scale; each line at most
    ``CDF_STEPS`` steps, its n the full count."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for values, name, color in ((live_ms, "live", "tab:green"), (replayed_ms, "replayed", "tab:purple")):
        values = np.sort(values[values > 0])
        if values.size:
            x, y = cdf_points(values)
            ax.step(x, y, where="post", color=color, label=f"{name} (n={values.size:,})")
    ax.set_xscale("log")
    plain_ms_axis(ax, "x")
    ax.set_xlabel("delivery latency (ms, log scale)")
    ax.set_ylabel("fraction delivered")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "nothing delivered", transform=ax.transAxes, ha="center")
    ax.set_title(title, fontsize=10)
    return _data_uri(fig)


def stable_latency_cdf_chart(every_ms: np.ndarray, by_room: dict[str, np.ndarray], title: str) -> str:
    """Empirical CDF of room messages' stable latency (send → the last member's first receipt), log scale:
    every room together, and one line per room for the ``ROOM_LINES`` busiest when there are several."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    series: list[tuple[str, np.ndarray, str | None]] = [("every room", every_ms, "black")]
    if len(by_room) > 1:
        busiest = sorted(by_room, key=lambda r: (-by_room[r].size, r))[:ROOM_LINES]
        series += [(f"room {room}", by_room[room], None) for room in sorted(busiest)]
    for name, values, color in series:
        values = np.sort(values[values > 0])
        if values.size:  # from 0 at the fastest: a room with one message still draws a visible step
            ax.step(np.concatenate([values[:1], values]), np.arange(0, values.size + 1) / values.size, where="post",
                    color=color, linewidth=2.0 if color else 1.2, label=f"{name} (n={values.size:,})")
    if ax.get_legend_handles_labels()[0]:
        ax.set_ylim(-0.02, 1.04)
        ax.set_xscale("log")
        plain_ms_axis(ax, "x")
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no room message reached every member", transform=ax.transAxes, ha="center")
    if len(by_room) > ROOM_LINES:
        ax.text(0.01, 0.97, f"{len(by_room) - ROOM_LINES:,} quieter rooms only in 'every room'",
                transform=ax.transAxes, ha="left", va="top", fontsize=7.5, color="#555")
    ax.set_xlabel("stable latency (ms, log scale): send → the last member's first receipt")
    ax.set_ylabel("fraction of room messages")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=10)
    return _data_uri(fig)


def per_cohort_chart(table: pd.DataFrame, title: str) -> str:
    """Grouped bars per recipient cohort: lost, unseen, duplicated."""
    fig, ax = plt.subplots(figsize=(9, 3.0))
    columns = ["lost", "unseen", "duplicated"]
    x = np.arange(len(table))
    for offset, (column, color) in enumerate(zip(columns, ("tab:red", "tab:orange", "tab:blue"), strict=True)):
        ax.bar(x + (offset - 1) * 0.27, table[column], width=0.27, label=column, color=color)
    ax.set_xticks(x, list(table.index))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # messages come whole
    ax.set_ylabel("messages")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _data_uri(fig)


_QUANTILE_MARKS = (("p50", "o", "p50"), ("p95", "s", "p95"), ("p99", "D", "p99"), ("max", "|", "max"))


def latency_comparison_chart(rows: list[tuple[str, dict[str, Any]]], title: str) -> str:
    """Targets on one shared latency axis (ms, log, plain ticks): delivery and redelivery quantiles per target,
    from each verdict's ``latency_ms`` (so it needs no ledger: committed comparisons redraw it)."""
    fig, ax = plt.subplots(figsize=(8.5, 1.4 + 0.5 * max(1, len(rows))))
    drawn = False
    series = ((0.13, "delivery", "tab:blue"), (-0.13, "redelivery", "tab:purple"))
    for position, (_target, latency) in enumerate(rows):
        y = len(rows) - 1 - position
        for shift, name, color in series:
            q = latency.get(name) or {}
            values = [q.get(k) for k, _, _ in _QUANTILE_MARKS]
            if q.get("p50") is None:
                continue
            present = [float(v) for v in values if v is not None and float(v) > 0]
            if not present:
                continue
            ax.plot([min(present), max(present)], [y + shift, y + shift], color=color, alpha=0.4, linewidth=2)
            for (key, marker, _), value in zip(_QUANTILE_MARKS, values, strict=True):
                if value is not None and float(value) > 0:
                    ax.scatter([float(value)], [y + shift], marker=marker, color=color, s=30, zorder=3,
                               label=f"{name} {key}")
            drawn = True
    if drawn:
        ax.set_xscale("log")
        plain_ms_axis(ax, "x")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(list(unique.values()), list(unique.keys()), loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize=7.5, frameon=False)
    else:
        ax.text(0.5, 0.5, "no latency measured", transform=ax.transAxes, ha="center", va="center")
    ax.set_yticks(range(len(rows)), [target for target, _ in reversed(rows)])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("latency (ms, log scale; the same axis for every target)")
    ax.grid(alpha=0.3, axis="x", which="both")
    ax.set_title(title, fontsize=10)
    return _data_uri(fig)
