"""A target with named ports, started for real: each port gets its own number, its own proxy listener per
cohort, and a fault naming a port sits on that port's listener alone."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.config import Scenario, resolve_target
from harness.errors import ScenarioError
from harness.faults.pool import ProxyPool
from harness.ledger.recorder import LedgerWriter
from harness.run.context import Slot
from harness.run.stack import Stack
from harness.run.timeline import ToxicFault, build_faults

pytestmark = pytest.mark.integration

# Two echo listeners, each answering with its own name first (so a test can tell which port it reached).
# Literal braces are doubled: the command goes through str.format.
ECHO_TWO_PORTS = (
    "import socket, sys, threading\n"
    "def serve(name, port):\n"
    "    s = socket.create_server(('127.0.0.1', port))\n"
    "    while True:\n"
    "        c, _ = s.accept()\n"
    "        c.sendall(name.encode() + b'\\n')\n"
    "for name, port in (('sub', {port.sub}), ('pub', {port.pub})):\n"
    "    threading.Thread(target=serve, args=(name, port)).start()\n"
    "print('both up {{ok}}', flush=True)\n"
)


def _scenario(**fault: object) -> Scenario:
    return Scenario.model_validate({
        "name": "ports", "targets": ["two"], "cohorts": [{"name": "a"}, {"name": "b"}],
        "target": {"two": {"command": ["{python}", "-c", ECHO_TWO_PORTS], "ports": ["sub", "pub"],
                           "driver": "x.y:Z", "ready": {"kind": "tcp"}}},
        "faults": [{"name": "f", "type": "timeout", "cohort": "a", "at_s": 1, "duration_s": 1, **fault}],
    })


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    scenario = _scenario(port="sub")
    started = Stack(scenario, resolve_target("two", scenario.target), tmp_path, "r1", "s")
    try:
        started.start()
        yield started
    finally:
        started.stop()


def _first_line(url: str) -> str:
    host, _, port = url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        return sock.makefile().readline().strip()


def test_each_port_of_each_cohort_has_its_own_listener(stack: Stack, tmp_path: Path) -> None:
    assert "both up {ok}" in (tmp_path / "target-two.log").read_text()  # doubled braces reach the server single
    assert set(stack.port_numbers[0]) == {"sub", "pub"} and stack.ports == [stack.port_numbers[0]["sub"]]
    urls = {cohort: stack.cohort_urls(cohort) for cohort in ("a", "b")}
    assert len({u for by_port in urls.values() for u in by_port.values()}) == 4
    for by_port in urls.values():
        assert _first_line(by_port["sub"]) == "sub" and _first_line(by_port["pub"]) == "pub"
    assert stack.proxy_names == {"a": "r1-a.sub", "b": "r1-b.sub"}
    slot = Slot("a-0", "a", stack.cohort_url("a"), "tok")  # as the load process builds it
    assert slot.url == urls["a"]["sub"] and type(slot.url) is str and slot.urls == urls["a"]


def test_a_fault_naming_a_port_is_built_on_that_listener_only(stack: Stack, tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path / "l.jsonl", "r1", "local")
    (fault,) = build_faults(list(stack.scenario.faults), stack, writer)
    assert isinstance(fault, ToxicFault) and fault.proxies == {"sub": "r1-a.sub"}
    every = _scenario().faults[0]
    (on_all,) = build_faults([every], stack, writer)
    assert isinstance(on_all, ToxicFault) and on_all.proxies == {"sub": "r1-a.sub", "pub": "r1-a.pub"}
    writer.close()


def test_a_fault_on_a_port_the_target_lacks_stops_the_start(tmp_path: Path) -> None:
    scenario = _scenario(port="nope")
    started = Stack(scenario, resolve_target("two", scenario.target), tmp_path, "r2", "s")
    try:
        with pytest.raises(ScenarioError, match=r"faults.0.port.*has no port 'nope'; its ports: sub, pub"):
            started.start()
        assert started.processes == []  # refused before anything was started
    finally:
        started.stop()


def test_a_rolling_restart_moves_every_port_of_a_cohort_together(tmp_path: Path) -> None:
    scenario = Scenario.model_validate({**_scenario().model_dump(), "deploy": {"instances": 2}, "faults": []})
    started = Stack(scenario, resolve_target("two", scenario.target), tmp_path, "r3", "s")
    try:
        started.start()
        assert started.routes == {"a": 0, "b": 1}
        assert started.proxy_client is not None
        started.rolling_restart()  # instance 0's cohorts move to 1, then instance 1's (now all) move to 0
        assert started.routes == {"a": 0, "b": 0}
        for cohort in ("a", "b"):
            for port, name in started.port_proxies[cohort].items():
                assert started.proxy_client.get_proxy(name).upstream == started.address(0, port)
            assert _first_line(started.cohort_urls(cohort)["pub"]) == "pub"
    finally:
        started.stop()


def _proxy_listen_hosts(started: Stack, port: int) -> set[str]:
    """The addresses the stack's proxy processes listen on at this port number."""
    hosts: set[str] = set()
    for role, pid in started.pids().items():
        if role.startswith("proxy"):
            hosts |= {conn.laddr.ip for conn in psutil.Process(pid).net_connections(kind="tcp")
                      if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port}
    return hosts


def test_listeners_bind_the_listen_host_and_users_get_the_advertised_one(tmp_path: Path) -> None:
    """127.0.0.2 is loopback too, but another address: the proxy's listeners are bound there and nowhere
    else, and the URLs carry the advertised name (what workers on another machine would dial).

    The "nowhere else" is read from the proxy processes' own listening sockets, not by dialling
    127.0.0.1:N and expecting a refusal: 127.0.0.1:N is a different socket address that another process
    on a busy machine may hold (or a self-connect may answer), which once failed CI."""
    scenario = Scenario.model_validate({**_scenario().model_dump(), "faults": []})
    started = Stack(scenario, resolve_target("two", scenario.target), tmp_path, "r4", "s",
                    listen_host="127.0.0.2", advertise_host="localhost")
    try:
        started.start()
        assert started.proxy_client is not None
        for cohort in ("a", "b"):
            for port, url in started.cohort_urls(cohort).items():
                number = int(url.rpartition(":")[2])
                assert url == f"http://localhost:{number}"
                assert started.proxy_client.get_proxy(started.port_proxies[cohort][port]).listen.startswith(
                    "127.0.0.2:")
                assert _first_line(f"http://127.0.0.2:{number}") == port
                assert _proxy_listen_hosts(started, number) == {"127.0.0.2"}
        assert started.proxy_client.url.startswith("http://127.0.0.1:")  # the API stays on loopback
    finally:
        started.stop()


def test_cohorts_beyond_one_proxy_process_get_another_behind_the_same_client(tmp_path: Path) -> None:
    """Two links per cohort (two ports) and a budget of two links per process: each cohort in its own
    process; a fault on cohort b is a toxic in b's process only, through the one client the timeline has."""
    scenario = _scenario(port="pub", cohort="b")
    started = Stack(scenario, resolve_target("two", scenario.target), tmp_path, "r5", "s", links_per_proxy=2)
    try:
        started.start()
        assert started.proxy_members == {"a": 0, "b": 1}
        pool = started.proxy_client
        assert isinstance(pool, ProxyPool) and len(pool.members) == 2
        assert set(pool.members[0].proxies()) == {"r5-a.sub", "r5-a.pub"}
        assert set(pool.members[1].proxies()) == {"r5-b.sub", "r5-b.pub"}
        assert {"proxy", "proxy-1"} <= set(started.pids()) and started.pids()["proxy"] != started.pids()["proxy-1"]
        assert (tmp_path / "proxy.log").exists() and (tmp_path / "proxy-1.log").exists()
        for cohort in ("a", "b"):
            assert _first_line(started.cohort_urls(cohort)["pub"]) == "pub"
        writer = LedgerWriter(tmp_path / "l.jsonl", "r5", "local")
        (fault,) = build_faults(list(scenario.faults), started, writer)
        assert isinstance(fault, ToxicFault) and fault.proxies == {"pub": "r5-b.pub"}
        fault.inject()
        assert {(t["type"], t["stream"]) for t in pool.members[1].get_proxy("r5-b.pub").toxics} == {
            ("timeout", "upstream"), ("timeout", "downstream")}  # the fault's stream is "both"
        assert all(not p.toxics for p in pool.members[0].proxies().values())
        fault.heal()
        assert not pool.members[1].get_proxy("r5-b.pub").toxics
        writer.close()
    finally:
        started.stop()
    assert started.pids() == {}


def test_a_process_that_dies_on_its_own_is_reported_once_and_a_stop_by_the_harness_never(stack: Stack) -> None:
    import os
    import signal
    import time

    assert stack.unexpected_exits() == []
    target = stack.instances[0]
    assert target is not None and target.pid
    os.kill(target.pid, signal.SIGKILL)  # from outside, as a crash would
    deadline = time.monotonic() + 30
    exits: list[dict[str, object]] = []
    while not exits and time.monotonic() < deadline:
        exits = stack.unexpected_exits()
        time.sleep(0.05)
    assert exits == [{"role": "target", "pid": target.pid, "code": -signal.SIGKILL}]
    assert stack.unexpected_exits() == []  # once
    stack.stop_target(signal.SIGKILL)  # what a kill_target fault does: stop, start again, stop again
    stack.start_target()
    restarted = stack.instances[0]
    assert restarted is not None and restarted.alive() and restarted.pid != target.pid
    stack.stop_target(signal.SIGKILL)  # stopped by the harness: expected, never reported
    assert stack.unexpected_exits() == []
