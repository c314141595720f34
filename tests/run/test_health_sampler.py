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


def test_the_proxy_probe_times_each_api_and_a_failing_probe_is_left_out() -> None:
    import http.server
    import threading

    from harness.run.health import ProcessSampler, proxy_api_probe

    class Version(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"2.12.0")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Version)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        closed = http.server.HTTPServer(("127.0.0.1", 0), Version)
        dead = f"http://127.0.0.1:{closed.server_address[1]}"
        closed.server_close()  # nothing listens there now
        probe = proxy_api_probe({"proxy": f"http://127.0.0.1:{server.server_address[1]}", "proxy-1": dead})

        def broken() -> dict[str, object]:
            raise RuntimeError("a probe that fails")

        sample = ProcessSampler(probes=[probe, broken]).sample()
        assert set(sample["proxy_api_ms"]) == {"proxy"} and 0 < sample["proxy_api_ms"]["proxy"] < 2_000
    finally:
        server.shutdown()
        server.server_close()
