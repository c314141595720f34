"""`harness proxy` as its own process: config file, plug-in toxics, toxiproxy-python, clean shutdown."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import toxiproxy

from harness.faults.client import ToxiproxyClient
from tests.conftest import EchoServer

ROOT = Path(__file__).resolve().parents[2]


def test_standalone_proxy_with_config_and_plugin(tmp_path: Path, echo_server: EchoServer) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "echo", "upstream": f"127.0.0.1:{echo_server.port}"}]))
    ready = tmp_path / "url"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "proxy", "--port", "0", "--config", str(config),
                             "--ready-file", str(ready), "--plugin", "tests.faults.custom_toxic", "--metrics"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        url = ready.read_text()
        client = ToxiproxyClient(url)
        echo = client.get_proxy("echo")
        client.add_toxic("echo", "uppercase", stream="downstream")

        legacy = toxiproxy.Toxiproxy()
        legacy.update_api_consumer("127.0.0.1", int(url.rpartition(":")[2]))
        assert set(legacy.proxies()) == {"echo"}
        assert legacy.get_proxy("echo").toxics()["uppercase_downstream"].type == "uppercase"

        with socket.create_connection(("127.0.0.1", echo.port), timeout=5) as sock:
            sock.sendall(b"quiet please")
            got = b""
            while len(got) < 12:
                got += sock.recv(64)
        assert got == b"QUIET PLEASE"
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=10)[0].decode()
    assert proc.returncode == 0, output
    assert "fault proxy API listening on http://127.0.0.1:" in output


def test_unknown_plugin_is_a_usage_error() -> None:
    run = subprocess.run([sys.executable, "-m", "harness", "proxy", "--plugin", "no.such.module"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "--plugin no.such.module: cannot import it" in run.stderr


def test_a_bad_config_ends_the_proxy_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "b", "upstream": 5}]))
    done = subprocess.run([sys.executable, "-m", "harness", "proxy", "--port", "0", "--config", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(f"{config}: proxy 2: bad request body: json: cannot unmarshal into Go "
                                        "struct field proxy.upstream")
    assert "Traceback" not in done.stderr
