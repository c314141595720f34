"""The health sampler on this machine's real processes: CPU, memory, and run-queue wait where Linux says."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from harness.run.health import ProcessSampler, run_queue_wait_ns


def test_run_queue_wait_of_a_real_process() -> None:
    if run_queue_wait_ns(1) is None:
        pytest.skip("no /proc/PID/schedstat on this kernel")
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    try:
        sampler = ProcessSampler(lambda: {"busy": busy.pid}, machine=False)
        first = sampler.sample()
        assert "wait_pct" not in first  # the first sample only starts each interval
        time.sleep(1.0)
        second = sampler.sample()
        assert set(second["wait_pct"]) == {"load", "busy"}
        assert all(0.0 <= v <= 100.5 for v in second["wait_pct"].values()), second
        assert second["cpu"]["busy"] > 0  # it ran: cpu + wait are both measured per interval
    finally:
        busy.kill()
        busy.wait()
