"""Readiness probes on real sockets, files and commands: each says what it waited for and what it saw."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from harness.config import Readiness
from harness.errors import TargetStartError
from harness.run.process import ManagedProcess
from harness.run.readiness import CommandProbe, HttpProbe, LogProbe, TcpProbe, build_probe


def test_tcp_probe_sees_a_listener_and_a_refusal() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert TcpProbe("127.0.0.1", port).check() == (True, "connected")
    ready, seen = TcpProbe("127.0.0.1", port).check()
    assert not ready and "refused" in seen.lower()


def test_log_probe_matches_a_line(tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    probe = LogProbe(log, r"^listening on \d+")
    assert probe.check()[0] is False
    log.write_text("starting\n")
    assert probe.check() == (False, "last line: 'starting'")
    log.write_text("starting\nlistening on 5000\n")
    assert probe.check() == (True, "matched")


def test_command_and_http_probes_report_what_they_saw() -> None:
    assert CommandProbe([sys.executable, "-c", "pass"]).check()[0] is True
    ready, seen = CommandProbe([sys.executable, "-c", "print('no'); raise SystemExit(3)"]).check()
    assert not ready and seen == "exit 3 no"
    ready, seen = HttpProbe("http://127.0.0.1:9/healthz").check()
    assert not ready and seen.startswith("ConnectError")


def test_a_timeout_names_the_probe_what_it_saw_and_the_log(tmp_path: Path) -> None:
    log = tmp_path / "target.log"
    proc = ManagedProcess("broker", [sys.executable, "-c", "print('binding 0.0.0.0 refused', flush=True); "
                                     "import time; time.sleep(30)"], log)
    proc.start()
    try:
        probe = build_probe(Readiness(kind="log", pattern="ready").model_dump(), 1, log, {})
        with pytest.raises(TargetStartError) as error:
            proc.wait_for_probe(probe, timeout_s=1.5)
    finally:
        proc.stop()
    text = str(error.value)
    assert "not ready after 1.5 s: waited for a line matching /ready/ in target.log" in text
    assert "last saw: last line: 'binding 0.0.0.0 refused'" in text
    assert "binding 0.0.0.0 refused" in error.value.log_tail


@pytest.mark.parametrize(("settings", "field"), [({"kind": "log"}, "pattern"), ({"kind": "command"}, "command"),
                                                 ({"kind": "log", "pattern": "("}, "pattern"),
                                                 ({"kind": "http", "path": "healthz"}, "path")])
def test_a_probe_without_its_settings_is_refused(settings: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Readiness.model_validate(settings)
