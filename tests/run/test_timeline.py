"""Toxic faults on named ports, through the real embedded proxy and real TCP: a fault on one port leaves the
cohort's other listeners alone, and its traffic evidence is that port's alone."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from harness.config import FaultSpec
from harness.faults.client import ToxiproxyClient
from harness.ledger.recorder import LedgerWriter
from harness.run.timeline import ToxicFault, _stamp
from tests.conftest import EchoServer


def _echoes(port: int, payload: bytes, timeout_s: float = 1.0) -> bool:
    """One round trip through a listener: True if the bytes came back within the timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(payload)
        got = b""
        try:
            while len(got) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                got += chunk
        except TimeoutError:
            return False
        return got == payload


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["data"] for line in path.read_text().splitlines() if '"f":"fault"' in line]


def _two_ports(client: ToxiproxyClient, echo: EchoServer) -> dict[str, int]:
    return {port: client.create_proxy(f"r-c.{port}", f"127.0.0.1:{echo.port}").port for port in ("sub", "pub")}


def test_a_fault_on_one_port_blackholes_that_listener_only(proxy_api_with_metrics: str, echo_server: EchoServer,
                                                          tmp_path: Path) -> None:
    client = ToxiproxyClient(proxy_api_with_metrics)
    listen = _two_ports(client, echo_server)
    writer = LedgerWriter(tmp_path / "ledger.jsonl", "r", "local")
    spec = FaultSpec(name="sub-down", type="timeout", cohort="c", port="sub", at_s=0, duration_s=1,
                     attributes={"timeout": 0})
    fault = ToxicFault(spec, client, {"sub": "r-c.sub"}, writer)
    assert _echoes(listen["sub"], b"warm") and _echoes(listen["pub"], b"warm")
    fault.prepare()
    fault.inject()
    assert len(client.get_proxy("r-c.sub").toxics) == 2 and client.get_proxy("r-c.pub").toxics == []
    assert _echoes(listen["pub"], b"pub still works")
    assert not _echoes(listen["sub"], b"swallowed", timeout_s=0.5)
    fault.heal()
    writer.close()
    assert client.get_proxy("r-c.sub").toxics == []
    assert _echoes(listen["sub"], b"back")
    inject, heal = _rows(tmp_path / "ledger.jsonl")
    assert (inject["action"], heal["action"]) == ("inject", "heal")
    assert inject["port"] == "sub" and inject["ports"] == ["sub"] and inject["listeners"] == ["r-c.sub"]
    for record in (inject["traffic_before"], inject["traffic_at"], heal["traffic_at"]):
        assert list(record["ports"]) == ["sub"]  # the pub listener is no part of this fault's evidence
        assert record["bytes"] == record["ports"]["sub"]
    # the sub listener received the bytes sent into the blackhole (the fault touched traffic)
    received = [sum(d["received"] for d in r["bytes"].values())
                for r in (inject["traffic_at"], heal["traffic_at"])]
    assert received[1] > received[0]


def test_a_fault_without_a_port_sits_on_every_listener_of_the_cohort(proxy_api_with_metrics: str,
                                                                    echo_server: EchoServer, tmp_path: Path) -> None:
    client = ToxiproxyClient(proxy_api_with_metrics)
    listen = _two_ports(client, echo_server)
    assert _echoes(listen["sub"], b"abc") and _echoes(listen["pub"], b"defgh")
    time.sleep(0.1)  # the counters are read from the proxy's /metrics after the bytes passed
    writer = LedgerWriter(tmp_path / "ledger.jsonl", "r", "local")
    spec = FaultSpec(name="all-down", type="timeout", cohort="c", at_s=0, duration_s=1, attributes={"timeout": 0})
    fault = ToxicFault(spec, client, {"sub": "r-c.sub", "pub": "r-c.pub"}, writer)
    fault.inject()
    assert len(client.get_proxy("r-c.sub").toxics) == 2 and len(client.get_proxy("r-c.pub").toxics) == 2
    fault.heal()
    writer.close()
    assert client.get_proxy("r-c.sub").toxics == [] and client.get_proxy("r-c.pub").toxics == []
    inject = _rows(tmp_path / "ledger.jsonl")[0]
    assert inject["port"] is None and inject["ports"] == ["sub", "pub"]
    at = inject["traffic_at"]
    assert at["ports"]["sub"]["upstream"]["received"] == 3 and at["ports"]["pub"]["upstream"]["received"] == 5
    assert at["bytes"]["upstream"]["received"] == 8 and at["bytes"]["downstream"]["received"] == 8


def test_a_refused_toxic_on_the_second_listener_removes_the_first(proxy_api: str, echo_server: EchoServer,
                                                                  tmp_path: Path) -> None:
    client = ToxiproxyClient(proxy_api)
    _two_ports(client, echo_server)
    spec = FaultSpec(name="dup", type="latency", cohort="c", stream="downstream", at_s=0, duration_s=1,
                     attributes={"latency": 10})
    client.add_toxic("r-c.pub", "latency", stream="downstream", name="dup_downstream", attributes={"latency": 1})
    fault = ToxicFault(spec, client, {"sub": "r-c.sub", "pub": "r-c.pub"}, LedgerWriter(tmp_path / "l", "r", "x"))
    try:
        fault.inject()
    except Exception:
        pass
    else:
        raise AssertionError("a toxic name already on the pub listener must be refused")
    assert client.get_proxy("r-c.sub").toxics == [] and not fault.active


def test_evidence_is_unmeasured_when_any_listener_has_no_counters() -> None:
    assert _stamp({"sub": {"upstream": (1, 1)}, "pub": None}) is None
    assert _stamp({}) is None
    stamped = _stamp({"sub": {"upstream": (1, 2)}, "pub": {"upstream": (10, 20)}})
    assert stamped is not None and stamped["bytes"] == {"upstream": {"received": 11, "sent": 22}}
