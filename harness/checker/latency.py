"""Latency quantiles (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.checker.base import Quantiles

__all__ = ["quantiles_ms"]


def quantiles_ms(latency_ns: pd.Series) -> Quantiles:
    """p50/p95/p99/max of a series of nanosecond durations, in milliseconds (3 decimals)."""
    values = latency_ns.dropna().to_numpy(dtype="float64") / 1e6
    if values.size == 0:
        return Quantiles()
    p50, p95, p99, top = np.quantile(values, [0.5, 0.95, 0.99, 1.0])
    return Quantiles(round(p50, 3), round(p95, 3), round(p99, 3), round(top, 3), int(values.size))
