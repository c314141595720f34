"""The HTTP API against the Toxiproxy reference (../shared/reference/toxiproxy-api.md §1-4, §8 API list)."""

from __future__ import annotations

import json
import random
import socket
import string
from typing import Any

import httpx
import pytest

from tests.conftest import EchoServer


@pytest.fixture
def http(proxy_api: str) -> httpx.Client:
    return httpx.Client(base_url=proxy_api, timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _error(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    return response.status_code, response.json()


def test_request_id_header_and_browser_filter(http: httpx.Client) -> None:
    response = http.get("/proxies")
    assert response.status_code == 200 and response.json() == {}
    assert len(response.headers["X-Toxiproxy-Request-Id"]) >= 16
    browser = http.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert _error(browser) == (403, {"error": "User agent not allowed", "status": 403})
    assert http.get("/proxies", headers={"User-Agent": "Wget/1.21"}).status_code == 200


def test_version_unknown_path_wrong_method(http: httpx.Client) -> None:
    version = http.get("/version")
    assert version.text == '{"version": "2.12.0"}\n'
    assert version.headers["content-type"].startswith("application/json")
    missing = http.get("/nothing")
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert http.put("/proxies").status_code == 405
    assert http.get("/metrics").status_code == 404  # off unless --metrics


def test_create_validation_order(http: httpx.Client, echo_server: EchoServer) -> None:
    assert _error(http.post("/proxies", content=b"")) == (400, {"error": "bad request body: EOF", "status": 400})
    assert _error(http.post("/proxies", json={"upstream": "x:1"})) == (
        400, {"error": "missing required field: name", "status": 400})
    assert _error(http.post("/proxies", json={"name": "a"})) == (
        400, {"error": "missing required field: upstream", "status": 400})
    port = _free_port()
    created = http.post("/proxies", json={"name": "a", "upstream": f"localhost:{echo_server.port}",
                                           "listen": f"localhost:{port}"})
    assert created.status_code == 201
    assert created.json() == {"name": "a", "listen": f"127.0.0.1:{port}", "upstream": f"localhost:{echo_server.port}",
                              "enabled": True, "toxics": []}
    assert _error(http.post("/proxies", json={"name": "a", "upstream": "x:1"})) == (
        409, {"error": "proxy already exists", "status": 409})
    conflict = http.post("/proxies", json={"name": "b", "upstream": "x:1", "listen": f"127.0.0.1:{port}"})
    assert conflict.status_code == 500
    assert conflict.json()["error"] == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert "b" not in http.get("/proxies").json()
    assert http.delete("/proxies/a").status_code == 204
    again = http.post("/proxies", json={"name": "b", "upstream": "x:1", "listen": f"127.0.0.1:{port}"})
    assert again.status_code == 201


def test_disabled_create_then_enable_and_disable(http: httpx.Client, echo_server: EchoServer) -> None:
    port = _free_port()
    created = http.post("/proxies", json={"name": "d", "upstream": f"127.0.0.1:{echo_server.port}",
                                           "listen": f"localhost:{port}", "enabled": False}).json()
    assert created["listen"] == f"localhost:{port}" and created["enabled"] is False
    assert not _listening(port)
    enabled = http.patch("/proxies/d", json={"enabled": True}).json()
    assert enabled["enabled"] is True and enabled["listen"] == f"127.0.0.1:{port}"
    assert _listening(port)
    http.post("/proxies/d", json={"enabled": False})
    assert not _listening(port)


def test_update_same_address_keeps_live_connections(http: httpx.Client, echo_server: EchoServer) -> None:
    proxy = http.post("/proxies", json={"name": "u", "upstream": f"127.0.0.1:{echo_server.port}"}).json()
    port = int(proxy["listen"].rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"1")
        assert sock.recv(1) == b"1"
        assert http.patch("/proxies/u", json={"listen": f"localhost:{port}"}).status_code == 200
        sock.sendall(b"2")
        assert sock.recv(1) == b"2"  # hostname-equal listen: no restart
        moved = http.patch("/proxies/u", json={"listen": "localhost:0"}).json()
        assert moved["listen"] != f"127.0.0.1:{port}"


def test_populate_rules(http: httpx.Client, echo_server: EchoServer) -> None:
    up = f"127.0.0.1:{echo_server.port}"
    p1, p2 = _free_port(), _free_port()
    body = [{"name": "one", "upstream": up, "listen": f"localhost:{p1}"},
            {"name": "two", "upstream": up, "listen": f"localhost:{p2}", "enabled": False}]
    first = http.post("/populate", json=body)
    assert first.status_code == 201
    assert [(p["name"], p["enabled"]) for p in first.json()["proxies"]] == [("one", True), ("two", False)]
    assert _listening(p1) and not _listening(p2)
    http.post("/proxies/one/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    again = http.post("/populate", json=body[:1]).json()["proxies"][0]
    assert again["toxics"] and again["listen"] == f"127.0.0.1:{p1}"  # unchanged entry kept with its toxics
    changed = http.post("/populate", json=[{"name": "one", "upstream": "127.0.0.1:1", "listen": f"localhost:{p1}"}])
    assert changed.json()["proxies"][0]["toxics"] == []  # differing entry replaced
    bad = http.post("/populate", json=[{"name": "x", "upstream": up}, {"upstream": up}])
    assert _error(bad) == (400, {"error": "missing required field: name at proxy 2", "status": 400})
    assert "x" not in http.get("/proxies").json()  # validation error creates nothing
    partial = http.post("/populate", json=[{"name": "y", "upstream": up}, {"name": "z", "upstream": up,
                                                                           "listen": "local373"}])
    assert partial.status_code == 400  # documented deviation: upstream answers 500 for a malformed address
    assert partial.json()["error"] == "address local373: missing port in address"
    assert [p["name"] for p in partial.json()["proxies"]] == ["y"]
    assert "y" in http.get("/proxies").json() and "z" not in http.get("/proxies").json()
    assert http.post("/populate", json=[]).json() == {"proxies": None}


def test_toxic_crud_and_conflicts(http: httpx.Client, echo_server: EchoServer) -> None:
    http.post("/proxies", json={"name": "t", "upstream": f"127.0.0.1:{echo_server.port}"})
    assert http.get("/proxies/t/toxics").json() == []
    added = http.post("/proxies/t/toxics", json={"name": "lat", "type": "latency", "stream": "upstream",
                                                  "attributes": {"latency": 100}})
    assert added.status_code == 200
    assert added.json() == {"attributes": {"latency": 100, "jitter": 0}, "name": "lat", "type": "latency",
                            "stream": "upstream", "toxicity": 1.0}
    assert _error(http.post("/proxies/t/toxics", json={"name": "lat", "type": "noop"})) == (
        409, {"error": "toxic already exists", "status": 409})
    both = [http.post("/proxies/t/toxics", json={"type": "latency", "stream": s}).json()["name"]
            for s in ("upstream", "downstream")]
    assert both == ["latency_upstream", "latency_downstream"]
    assert http.post("/proxies/t/toxics", json={"type": "noop"}).json()["stream"] == "downstream"
    partial = http.post("/proxies/t/toxics", json={"name": "tx", "type": "noop", "toxicity": 0.2})
    assert partial.json()["toxicity"] == 0.2
    assert _error(http.post("/proxies/t/toxics", json={"type": "latency", "stream": "walrustream"}))[0] == 400
    assert _error(http.post("/proxies/t/toxics", json={"type": "latency", "stream": ""}))[0] == 400
    http.patch("/proxies/t/toxics/lat", json={"attributes": {"jitter": 5}, "toxicity": 0.5})
    kept = http.post("/proxies/t/toxics/lat", json={"attributes": {"latency": 7}}).json()
    assert kept["attributes"] == {"latency": 7, "jitter": 5} and kept["toxicity"] == 0.5
    names = [t["name"] for t in http.get("/proxies/t").json()["toxics"]]
    assert names == ["lat", "latency_upstream", "latency_downstream", "noop_downstream", "tx"]  # upstream first
    assert http.delete("/proxies/t/toxics/lat").status_code == 204
    assert _error(http.delete("/proxies/t/toxics/lat")) == (404, {"error": "toxic not found", "status": 404})
    assert _error(http.get("/proxies/nope/toxics")) == (404, {"error": "proxy not found", "status": 404})


def test_reset_enables_and_strips_toxics(http: httpx.Client, echo_server: EchoServer) -> None:
    proxy = http.post("/proxies", json={"name": "r", "upstream": f"127.0.0.1:{echo_server.port}"}).json()
    http.post("/proxies/r/toxics", json={"type": "latency"})
    http.patch("/proxies/r", json={"enabled": False})
    assert http.post("/reset").status_code == 204
    after = http.get("/proxies/r").json()
    assert after["enabled"] is True and after["toxics"] == []
    assert _listening(int(proxy["listen"].rpartition(":")[2]))


def _fuzz_bodies(rng: random.Random) -> list[bytes]:
    alphabet = string.printable + "éß漢字🙂\x00"
    bodies = [b"{", b"[]", b"null", b"42", b'"str"', b"{\"name\": 1, \"upstream\": []}", b"\xff\xfe",
              json.dumps({"name": "ü漢🙂", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:99999"}).encode(),
              json.dumps({"name": "n", "upstream": "127.0.0.1:1", "enabled": "yes"}).encode(),
              b"x" * (2 << 20)]
    for _ in range(60):
        length = rng.randrange(0, 64)
        bodies.append("".join(rng.choice(alphabet) for _ in range(length)).encode("utf-8", "surrogatepass"))
    return bodies


def _toxic_fuzz(rng: random.Random) -> list[Any]:
    values: list[Any] = [None, 1.5, -1, 2**70, "10", [], {}, True, "🙂"]
    cases: list[Any] = [[], "x", 3, {"type": None}, {"type": "latency", "attributes": []},
                        {"type": "latency", "toxicity": "high"}, {"type": "meteor"}, {"type": "latency", "name": 5}]
    for _ in range(60):
        cases.append({"type": rng.choice(["latency", "bandwidth", "slicer", "timeout", "nope", 1]),
                      "stream": rng.choice(["upstream", "downstream", "UP", "", 3]),
                      "attributes": {rng.choice(["latency", "rate", "average_size", "timeout", "bytes"]):
                                     rng.choice(values)}})
    return cases


def test_fuzzed_requests_always_get_a_4xx_with_the_error_json(http: httpx.Client, echo_server: EchoServer) -> None:
    rng = random.Random(20261125)
    http.post("/proxies", json={"name": "f", "upstream": f"127.0.0.1:{echo_server.port}"})
    for body in _fuzz_bodies(rng):
        for path in ("/proxies", "/proxies/f", "/populate", "/proxies/f/toxics"):
            response = http.post(path, content=body)
            if response.status_code < 300:
                continue  # a body that happens to be valid
            assert 400 <= response.status_code < 500, (path, body[:80], response.status_code, response.text)
            error = response.json()
            assert set(error) >= {"error", "status"} and error["status"] == response.status_code
    for spec in _toxic_fuzz(rng):
        response = http.post("/proxies/f/toxics", json=spec)
        if response.status_code == 200:
            http.delete(f"/proxies/f/toxics/{response.json()['name']}")
            continue
        assert response.status_code in (400, 409), (spec, response.status_code, response.text)
        assert response.json()["status"] == response.status_code
    assert http.get("/proxies/f").status_code == 200  # still serving


def test_a_rejected_update_changes_nothing(http: httpx.Client, echo_server: EchoServer) -> None:
    http.post("/proxies", json={"name": "u2", "upstream": f"127.0.0.1:{echo_server.port}"})
    http.post("/proxies/u2/toxics", json={"type": "latency", "toxicity": 0.5, "attributes": {"latency": 10}})
    bad = http.patch("/proxies/u2/toxics/latency_downstream", json={"toxicity": 0.9, "attributes": {"latency": 1.5}})
    assert bad.status_code == 400
    kept = http.get("/proxies/u2/toxics/latency_downstream").json()
    assert kept["toxicity"] == 0.5 and kept["attributes"] == {"latency": 10, "jitter": 0}
