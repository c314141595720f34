"""Charts for the HTML reports (matplotlib, Agg backend), returned as PNG data URIs."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.checker.run_state import FaultWindow  # noqa: E402

__all__ = ["over_time_chart", "latency_cdf_chart", "per_cohort_chart"]


def _data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _shade(ax: Axes, faults: list[FaultWindow], origin_ns: int, end_s: float) -> None:
    for index, window in enumerate(faults):
        start = (window.inject_ns - origin_ns) / 1e9
        stop = (window.heal_ns - origin_ns) / 1e9 if window.heal_ns is not None else end_s
        ax.axvspan(start, stop, color="tab:red", alpha=0.12, label=f"fault: {window.fault}" if index < 4 else None)


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


def latency_cdf_chart(live_ms: np.ndarray, replayed_ms: np.ndarray, title: str) -> str:
    """Empirical CDF of delivery latency, live vs replayed (crossed a reconnect), log scale."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for values, name, color in ((live_ms, "live", "tab:green"), (replayed_ms, "replayed", "tab:purple")):
        values = np.sort(values[values > 0])
        if values.size:
            ax.step(values, np.arange(1, values.size + 1) / values.size, where="post", color=color,
                    label=f"{name} (n={values.size})")
    ax.set_xscale("log")
    ax.set_xlabel("delivery latency (ms, log)")
    ax.set_ylabel("fraction delivered")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "nothing delivered", transform=ax.transAxes, ha="center")
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
    ax.set_ylabel("messages")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _data_uri(fig)
