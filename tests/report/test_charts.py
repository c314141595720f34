"""Chart helpers: plain millisecond ticks, and thinning that never drops the slow outliers."""

from __future__ import annotations

import numpy as np

from harness.report.charts import MAX_POINTS, _plain, _thin


def test_ticks_read_as_plain_milliseconds() -> None:
    assert [_plain(v) for v in (0.5, 1.0, 20.0, 500.0, 5000.0, 20000.0)] == ["0.5", "1", "20", "500", "5,000",
                                                                            "20,000"]


def test_thinning_caps_points_and_keeps_the_slowest() -> None:
    t = np.arange(100_000, dtype=float)
    latency = np.ones(100_000)
    latency[[7, 50_001, 99_998]] = [900.0, 5_000.0, 12_000.0]
    shown_t, shown_ms = _thin(t, latency)
    assert shown_t.size <= MAX_POINTS
    assert {7.0, 50_001.0, 99_998.0} <= set(shown_t.tolist())
    assert shown_ms.max() == 12_000.0
    small_t, small_ms = _thin(t[:10], latency[:10])
    assert small_t.tolist() == t[:10].tolist() and small_ms.tolist() == latency[:10].tolist()
