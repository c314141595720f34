"""Several proxy processes behind one client: how cohorts are placed (pure), and a pool over two real
``harness proxy`` processes whose calls each reach the process that holds the proxy."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ProxyError
from harness.faults.client import ToxiproxyClient
from harness.faults.pool import ProxyPool, link_budget, plan_members
from tests.conftest import EchoServer

ROOT = Path(__file__).resolve().parents[2]


class TestPlan:
    def test_everything_in_one_process_when_it_fits(self) -> None:
        assert plan_members({"a": 10, "b": 20, "c": 5}, 35) == {"a": 0, "b": 0, "c": 0}

    def test_largest_first_then_first_fit(self) -> None:
        # 7,500 + 7,500 users do not fit one 9,000-link process: one each; the small cohort joins the first
        assert plan_members({"big1": 7500, "big2": 7500, "small": 1000}, 9000) == {"big1": 0, "big2": 1, "small": 0}
        assert plan_members({"a": 4, "b": 3, "c": 3, "d": 2}, 6) == {"a": 0, "b": 1, "c": 1, "d": 0}

    def test_a_cohort_above_the_budget_gets_a_process_of_its_own(self) -> None:
        assert plan_members({"crowd": 12000, "u1": 1}, 7000) == {"crowd": 0, "u1": 1}

    def test_no_cohorts_no_processes(self) -> None:
        assert plan_members({}, 10) == {}

    def test_budget_from_the_open_file_limit(self) -> None:
        assert link_budget(20000) == 7462  # (20,000 - 100) / 2 links, 75 % of them planned
        assert link_budget(150) == 18
        assert link_budget(10) == 1


def _proxy_process(tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], ToxiproxyClient]:
    ready = tmp_path / f"{name}.url"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "proxy", "--port", "0", "--ready-file", str(ready),
                             "--metrics"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90  # a busy machine starts a Python process slowly
    while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc, ToxiproxyClient(ready.read_text())


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[ProxyPool]:
    started = [_proxy_process(tmp_path, f"p{i}") for i in range(2)]
    made = ProxyPool([client for _, client in started])
    try:
        yield made
    finally:
        made.close()
        for proc, _ in started:
            proc.terminate()
            proc.wait(10)


def _echo(port: int, data: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return sock.recv(100)


@pytest.mark.integration
def test_each_call_reaches_the_process_holding_the_proxy(pool: ProxyPool, echo_server: EchoServer) -> None:
    upstream = f"127.0.0.1:{echo_server.port}"
    first = pool.create_proxy("u1", upstream, member=0)
    second = pool.create_proxy("u2", upstream, member=1)
    assert set(pool.members[0].proxies()) == {"u1"} and set(pool.members[1].proxies()) == {"u2"}
    assert set(pool.proxies()) == {"u1", "u2"} and pool.urls == [m.url for m in pool.members]

    pool.add_toxic("u2", "timeout", stream="downstream", attributes={"timeout": 0})  # a blackhole on u2 only
    assert [t["name"] for t in pool.members[1].get_proxy("u2").toxics] == ["timeout_downstream"]
    assert pool.members[0].get_proxy("u1").toxics == []
    assert _echo(first.port, b"hello") == b"hello"
    with pytest.raises(TimeoutError):
        _echo(second.port, b"held", timeout=1)
    pool.update_toxic("u2", "timeout_downstream", attributes={"timeout": 0})
    pool.remove_toxic("u2", "timeout_downstream")
    assert _echo(second.port, b"again") == b"again"

    counts = pool.byte_counts("u1")  # from the metrics of the process holding u1
    assert counts is not None and counts["upstream"][0] == len(b"hello")
    assert pool.get_proxy("u2").listen == second.listen
    pool.update_proxy("u2", enabled=False)
    assert pool.members[1].get_proxy("u2").enabled is False

    pool.reset()  # every member: u2 enabled again
    assert pool.members[1].get_proxy("u2").enabled is True
    pool.delete_proxy("u2")
    assert set(pool.proxies()) == {"u1"}
    with pytest.raises(ProxyError):
        pool.members[1].get_proxy("u2")
