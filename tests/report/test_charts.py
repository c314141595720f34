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


def test_cdf_draws_at_most_its_cap_of_steps_with_both_ends() -> None:
    from harness.report.charts import CDF_STEPS, cdf_points

    ordered = np.sort(np.random.default_rng(7).lognormal(2.0, 1.0, 300_000))
    x, y = cdf_points(ordered)
    assert x.size == y.size == CDF_STEPS
    assert x[0] == ordered[0] and x[-1] == ordered[-1] and y[-1] == 1.0 and y[0] == 1 / ordered.size
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) > 0)
    # the median step sits where the full CDF has it (within one step of rank)
    half = int(np.searchsorted(y, 0.5))
    assert abs(x[half] - np.median(ordered)) <= ordered[150_000 + 100] - ordered[150_000 - 100]
    small = np.array([1.0, 2.0, 3.0])
    sx, sy = cdf_points(small)
    assert sx.tolist() == [1.0, 2.0, 3.0] and sy.tolist() == [1 / 3, 2 / 3, 1.0]


def test_a_log_axis_narrower_than_a_decade_never_repeats_a_tick_label() -> None:
    import matplotlib.pyplot as plt

    from harness.report.charts import plain_ms_axis

    for low, high in ((1.2, 1.9), (12.0, 19.0), (0.5, 20_000.0), (2.0, 9.0)):
        fig, ax = plt.subplots()
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        plain_ms_axis(ax, "x")
        fig.canvas.draw()
        shown = [t.get_text() for t in ax.get_xticklabels() if low <= t.get_position()[0] <= high and t.get_text()]
        plt.close(fig)
        assert shown and len(shown) == len(set(shown)), (low, high, shown)
    assert [_plain(v) for v in (1.2, 1.5, 12.5, 999.5, 1_500.0)] == ["1.2", "1.5", "12.5", "1,000", "1,500"]
