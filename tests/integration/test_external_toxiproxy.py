"""TOXIPROXY_URL: the harness creates its proxies on an already-running Toxiproxy instead of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.faults.client import ToxiproxyClient
from tests.integration.helpers import ROOT, STORY, verdict

pytestmark = pytest.mark.integration


def test_run_uses_the_toxiproxy_named_by_the_environment(tmp_path: Path) -> None:
    ready = tmp_path / "url"
    server = subprocess.Popen([sys.executable, "-m", "harness", "proxy", "--port", "0", "--ready-file", str(ready)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        url = ready.read_text()
        out = tmp_path / "run"
        run = subprocess.run([sys.executable, "-m", "harness", "run", str(STORY), "--target", "ackmap", "--out",
                              str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240,
                             env={**os.environ, "TOXIPROXY_URL": url})
        assert run.returncode == 0, run.stdout + run.stderr
        assert verdict(out)["valid"] is True
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["proxy"] == url
        assert not (out / "proxy.log").exists()  # no embedded proxy was started
        assert ToxiproxyClient(url).proxies() == {}  # the run removed what it created
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
