"""Regression tests for the API hardening: each test is a request that used to give a 500, invalid JSON,
a hanging proxy or a half-applied change (found by tests/faults/test_api_fuzz.py or reported)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from harness.faults.api import ProxyCollection, create_app
from harness.faults.base import INT64_MAX, MAX_MS, Toxic, ToxicValidationError, registry
from harness.faults.proxy import parse_address
from harness.faults.toxics import MAX_RATE, MAX_SIZE, Latency
from tests.conftest import EchoServer
from tests.faults.custom_toxic import Uppercase


@pytest.fixture
def http(proxy_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy_api, timeout=5) as client:
        yield client


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port some other socket listens on, so binding it fails with 'address already in use'."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield int(sock.getsockname()[1])


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    return json.loads(text, parse_constant=refuse)


def _rejected(response: httpx.Response, status: int = 400) -> str:
    """The error text of a Toxiproxy-shaped error answer with ``status``."""
    body = _strict(response.text)
    assert (response.status_code, body["status"]) == (status, status), response.text
    assert isinstance(body["error"], str)
    return str(body["error"])


def _echo(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(payload)
        return sock.recv(64)


def _port(proxy: dict[str, Any]) -> int:
    return int(proxy["listen"].rpartition(":")[2])


def _make(http: httpx.Client, echo: EchoServer, name: str = "p", **extra: Any) -> dict[str, Any]:
    response = http.post("/proxies", json={"name": name, "upstream": f"127.0.0.1:{echo.port}", **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


# -- bodies the parser used to choke on -------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"[" * 5000 + b"]" * 5000,  # was 500: RecursionError
    b'{"name": ' * 2000 + b"1" + b"}" * 2000,
    b"[" * 65 + b"]" * 65,  # parses, but deeper than the 64 levels accepted
    b'{"name": "p", "upstream": "127.0.0.1:1", "extra": ' + b"[" * 900 + b"]" * 900 + b"}",
])
def test_deeply_nested_json_is_a_400(http: httpx.Client, body: bytes) -> None:
    assert _rejected(http.post("/proxies", content=body)) == "bad request body: exceeded max depth"
    assert http.get("/proxies").json() == {}


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_nan_infinity_and_overflowing_numbers_are_rejected_at_input(
        http: httpx.Client, echo_server: EchoServer, raw: str) -> None:
    _make(http, echo_server)
    added = http.post("/proxies/p/toxics", content=f'{{"type": "latency", "toxicity": {raw}}}')
    assert _rejected(added).startswith("bad request body: ")
    http.post("/proxies/p/toxics", json={"type": "latency", "name": "lat"})
    updated = http.patch("/proxies/p/toxics/lat", content=f'{{"toxicity": {raw}}}')
    assert _rejected(updated).startswith("bad request body: ")
    listing = http.get("/proxies")
    assert _strict(listing.text)["p"]["toxics"][0]["toxicity"] == 1.0  # was: NaN, invalid JSON


@pytest.mark.parametrize("toxicity", [1.5, -0.1, 2, -1, 10**400, 2**64])
def test_toxicity_out_of_range_is_a_400(http: httpx.Client, echo_server: EchoServer, toxicity: Any) -> None:
    _make(http, echo_server)
    response = http.post("/proxies/p/toxics", content=json.dumps({"type": "noop", "toxicity": toxicity}))
    assert _rejected(response) == "toxicity must be a number from 0 to 1"  # 10**400 was a 500 (OverflowError)
    assert http.get("/proxies/p/toxics").json() == []


def test_toxicity_bounds_are_accepted(http: httpx.Client, echo_server: EchoServer) -> None:
    _make(http, echo_server)
    for name, toxicity in (("zero", 0), ("one", 1), ("half", 0.5)):
        response = http.post("/proxies/p/toxics", json={"type": "noop", "name": name, "toxicity": toxicity})
        assert response.status_code == 200 and response.json()["toxicity"] == float(toxicity)


def test_a_lone_surrogate_in_a_name_is_a_400(http: httpx.Client, echo_server: EchoServer) -> None:
    body = '{"name": "\\ud800", "upstream": "127.0.0.1:' + str(echo_server.port) + '"}'
    assert "not valid UTF-8" in _rejected(http.post("/proxies", content=body))  # was 500 (seeding the rng)
    _make(http, echo_server)
    assert "not valid UTF-8" in _rejected(http.post("/proxies/p/toxics", content='{"type": "noop", "name": "\\udfff"}'))
    assert http.get("/proxies").json()["p"]["toxics"] == []


# -- listen and upstream: types, shapes, and a failed bind changes nothing --------------------------------------

@pytest.mark.parametrize("listen", [5, 8080, True, [], {"host": "127.0.0.1"}])
def test_a_non_string_listen_on_update_is_a_400(http: httpx.Client, echo_server: EchoServer, listen: Any) -> None:
    proxy = _make(http, echo_server)
    response = http.patch("/proxies/p", json={"listen": listen})
    assert _rejected(response) == "bad request body: json: cannot unmarshal into Go struct field proxy.listen"
    assert http.get("/proxies/p").json() == proxy  # was a 500 ('int' object has no attribute 'endswith')
    assert _echo(_port(proxy)) == b"ping"


@pytest.mark.parametrize("upstream", [5, 1.5, True, ["127.0.0.1:1"], {"host": "x"}])
def test_a_non_string_upstream_is_a_400(http: httpx.Client, echo_server: EchoServer, upstream: Any) -> None:
    proxy = _make(http, echo_server)
    response = http.post("/proxies/p", json={"upstream": upstream})
    assert _rejected(response) == "bad request body: json: cannot unmarshal into Go struct field proxy.upstream"
    assert http.get("/proxies/p").json() == proxy
    assert _echo(_port(proxy)) == b"ping"  # was: accepted, and every connection through it hung
    assert _rejected(http.post("/proxies", json={"name": "q", "upstream": upstream})).startswith("bad request")


@pytest.mark.parametrize("upstream", ["nohost", "x:0", ":80", "a b:1", "h:99999", "h:-1", "h:\u0663", "1:2:3",
                                      "[::1:80", "h:80\n"])
def test_a_malformed_upstream_address_is_a_400(http: httpx.Client, echo_server: EchoServer, upstream: str) -> None:
    assert _rejected(http.post("/proxies", json={"name": "q", "upstream": upstream})).startswith("bad upstream address")
    proxy = _make(http, echo_server)
    assert _rejected(http.patch("/proxies/p", json={"upstream": upstream})).startswith("bad upstream address")
    assert http.get("/proxies").json() == {"p": proxy}


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "local373", "a b:0", "[::1", "::1:80", "127.0.0.1:\u0663",
                                    "192.0.2.1:0"])
def test_a_bad_listen_update_keeps_the_old_listener_and_reset_still_works(
        http: httpx.Client, echo_server: EchoServer, listen: str) -> None:
    proxy = _make(http, echo_server)
    http.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    before = http.get("/proxies").json()
    _rejected(http.patch("/proxies/p", json={"listen": listen, "upstream": "127.0.0.1:1"}))
    assert http.get("/proxies").json() == before  # listen and upstream unchanged, toxics kept
    assert _echo(_port(proxy)) == b"ping"  # was: the old listener already closed
    assert http.post("/reset").status_code == 204  # was: 400, reset tried to bind the bad address


def test_a_listen_update_onto_a_taken_port_keeps_the_old_listener(
        http: httpx.Client, echo_server: EchoServer, held_port: int) -> None:
    proxy = _make(http, echo_server)
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=3) as live:
        live.sendall(b"1")
        assert live.recv(1) == b"1"
        response = http.patch("/proxies/p", json={"listen": f"127.0.0.1:{held_port}"})
        assert _rejected(response, 500) == f"listen tcp 127.0.0.1:{held_port}: bind: address already in use"
        live.sendall(b"2")
        assert live.recv(1) == b"2"  # the connection survived the rejected move
    assert http.get("/proxies/p").json() == proxy
    assert _echo(_port(proxy)) == b"ping"
    assert http.post("/reset").status_code == 204


def test_a_move_to_another_spelling_of_the_same_port_works(http: httpx.Client, echo_server: EchoServer) -> None:
    proxy = _make(http, echo_server)
    port = _port(proxy)
    moved = http.patch("/proxies/p", json={"listen": f"0.0.0.0:{port}"})  # conflicts with its own listener
    assert moved.status_code == 200, moved.text
    assert moved.json()["listen"] == f"0.0.0.0:{port}"
    assert _echo(port) == b"ping"
    http.patch("/proxies/p", json={"listen": f"127.0.0.1:{port}"})


def test_an_upstream_change_keeps_the_listener(http: httpx.Client, echo_server: EchoServer) -> None:
    proxy = _make(http, echo_server, upstream="127.0.0.1:1")
    changed = http.patch("/proxies/p", json={"upstream": f"localhost:{echo_server.port}"}).json()
    assert changed["listen"] == proxy["listen"] and changed["upstream"] == f"localhost:{echo_server.port}"
    assert _echo(_port(proxy)) == b"ping"


def test_a_failed_enable_of_a_disabled_proxy_changes_nothing(
        http: httpx.Client, echo_server: EchoServer, held_port: int) -> None:
    proxy = _make(http, echo_server, enabled=False, listen="127.0.0.1:0")
    response = http.patch("/proxies/p", json={"enabled": True, "listen": f"127.0.0.1:{held_port}"})
    _rejected(response, 500)
    assert http.get("/proxies/p").json() == proxy


def test_create_rejects_an_unassignable_listen_with_a_400(http: httpx.Client, echo_server: EchoServer) -> None:
    response = http.post("/proxies", json={"name": "q", "upstream": f"127.0.0.1:{echo_server.port}",
                                           "listen": "192.0.2.1:0"})
    assert _rejected(response) == "listen tcp 192.0.2.1:0: bind: cannot assign requested address"  # was 500
    assert "address x y:0: invalid host" == _rejected(http.post("/proxies", json={
        "name": "q", "upstream": "h:1", "listen": "x y:0", "enabled": False}))  # checked even when disabled


def test_reset_is_all_or_nothing(http: httpx.Client, echo_server: EchoServer, held_port: int) -> None:
    _make(http, echo_server, name="a", enabled=False)
    _make(http, echo_server, name="b", enabled=False, listen=f"127.0.0.1:{held_port}")
    http.post("/proxies/a/toxics", json={"type": "latency"})
    before = http.get("/proxies").json()
    _rejected(http.post("/reset"), 500)  # b cannot bind
    assert http.get("/proxies").json() == before  # was: a enabled and stripped, b marked enabled but not listening


def test_a_failed_populate_replacement_keeps_the_old_proxy(
        http: httpx.Client, echo_server: EchoServer, held_port: int) -> None:
    proxy = _make(http, echo_server)
    http.post("/proxies/p/toxics", json={"type": "latency"})
    before = http.get("/proxies").json()
    response = http.post("/populate", json=[{"name": "p", "upstream": "127.0.0.1:1",
                                             "listen": f"127.0.0.1:{held_port}"}])
    assert response.status_code == 500 and response.json()["proxies"] is None
    assert http.get("/proxies").json() == before  # was: the old proxy deleted
    assert _echo(_port(proxy)) == b"ping"


def test_attributes_that_are_not_an_object_are_a_400(http: httpx.Client, echo_server: EchoServer) -> None:
    _make(http, echo_server)
    for attributes in ([], [{"latency": 1}], "x", 0):
        _rejected(http.post("/proxies/p/toxics", json={"type": "latency", "attributes": attributes}))
    assert http.post("/proxies/p/toxics", json={"type": "latency", "attributes": None}).status_code == 200


# -- toxic attribute ranges ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "attributes"), [
    ("latency", {"latency": 10**400}),  # was accepted: the link stalled (OverflowError in the toxic)
    ("latency", {"latency": MAX_MS + 1}),
    ("latency", {"latency": -1}),
    ("latency", {"jitter": -5}),
    ("bandwidth", {"rate": -1}),
    ("bandwidth", {"rate": MAX_RATE + 1}),
    ("slow_close", {"delay": 2**63}),
    ("timeout", {"timeout": -1}),
    ("reset_peer", {"timeout": MAX_MS + 1}),
    ("slicer", {"average_size": MAX_SIZE + 1}),
    ("slicer", {"average_size": 10, "delay": -1}),
    ("slicer", {"average_size": 0, "size_variation": 0}),
    ("limit_data", {"bytes": INT64_MAX + 1}),
    ("limit_data", {"bytes": -1}),
    ("limit_time", {"time": MAX_MS + 1}),
    ("slow_open", {"delay": -1}),
])
def test_out_of_range_attributes_are_a_400(
        http: httpx.Client, echo_server: EchoServer, kind: str, attributes: dict[str, int]) -> None:
    _make(http, echo_server)
    message = _rejected(http.post("/proxies/p/toxics", json={"type": kind, "attributes": attributes}))
    assert any(name in message for name in attributes)
    assert http.get("/proxies/p/toxics").json() == []
    added = http.post("/proxies/p/toxics", json={"type": kind, "name": "t", "attributes": {"average_size": 1}})
    before = added.json()
    _rejected(http.patch("/proxies/p/toxics/t", json={"attributes": attributes, "toxicity": 0.5}))
    assert http.get("/proxies/p/toxics/t").json() == before


@pytest.mark.parametrize(("kind", "attributes"), [
    ("latency", {"latency": MAX_MS, "jitter": MAX_MS}),
    ("bandwidth", {"rate": MAX_RATE}),
    ("limit_data", {"bytes": INT64_MAX}),
    ("slicer", {"average_size": MAX_SIZE, "size_variation": MAX_SIZE, "delay": MAX_MS * 1000}),
    ("latency", {"latency": 5, "unknown": 10**400}),  # unknown names stay ignored, as upstream
])
def test_range_limits_themselves_are_accepted(
        http: httpx.Client, echo_server: EchoServer, kind: str, attributes: dict[str, int]) -> None:
    _make(http, echo_server)
    response = http.post("/proxies/p/toxics", json={"type": kind, "attributes": attributes})
    assert response.status_code == 200, response.text
    known = {k: v for k, v in attributes.items() if k != "unknown"}
    assert known.items() <= response.json()["attributes"].items()


def test_validate_rejects_out_of_range_values_directly() -> None:
    with pytest.raises(ToxicValidationError, match="latency must be between 0 and 3600000, got a 401-digit number"):
        Latency(latency=10**400).validate()
    with pytest.raises(ToxicValidationError, match="bytes"):
        Uppercase(bytes=-1).validate()  # a plug-in's plain int field gets the default 0..int64 range
    Latency(latency=MAX_MS).validate()


# -- Toxic.check_attributes (strict, for the scenario loader) ------------------------------------------------

def test_check_attributes_accepts_known_names_in_range() -> None:
    registry()["latency"].check_attributes({"latency": 100, "jitter": 10})
    registry()["slicer"].check_attributes({"average_size": 64})
    registry()["noop"].check_attributes({})


@pytest.mark.parametrize(("kind", "values", "message"), [
    ("latency", {"latncy": 100}, "'latncy' is not an attribute of latency; it has: latency, jitter"),
    ("noop", {"x": 1}, "'x' is not an attribute of noop; it has: none"),
    ("latency", {"latency": 1.5}, "latency must be an integer, got 1.5"),
    ("latency", {"latency": "100"}, "latency must be an integer, got '100'"),
    ("latency", {"latency": True}, "latency must be an integer, got True"),
    ("latency", {"latency": None}, "latency must be an integer, got None"),
    ("latency", {"latency": MAX_MS + 1}, "latency must be between 0 and 3600000, got 3600001"),
    ("bandwidth", {"rate": -1}, "rate must be between 0 and"),
    ("slicer", {}, "average_size + size_variation must be >= 1"),
])
def test_check_attributes_names_the_attribute_and_the_reason(kind: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ToxicValidationError) as error:
        registry()[kind].check_attributes(values)
    assert str(error.value).startswith(message)


def test_check_attributes_is_a_classmethod_on_toxic() -> None:
    with pytest.raises(ToxicValidationError):
        Toxic.check_attributes({"anything": 1})  # the base has no attributes at all


# -- addresses ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:80", ("127.0.0.1", 80)), ("localhost:0", ("localhost", 0)), (":8080", ("", 8080)),
    ("[::1]:9", ("::1", 9)), ("my-host.example_1:65535", ("my-host.example_1", 65535)),
])
def test_parse_address_accepts_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["local373", "h:", "h:65536", "h:-1", "h:+1", "h:\u0663", "h:000000080", "a b:1",
                                  "::1:80", "[::1:80", "[nothost]:80", "-h:1", "h\x00:1", "é:1", "h:1 "])
def test_parse_address_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"^address "):
        parse_address(text)


# -- concurrency: a request checked before it waited for the lock is checked again ----------------------------

@pytest.fixture
async def api() -> AsyncIterator[tuple[TestClient[Any, Any], ProxyCollection]]:
    collection = ProxyCollection(seed=1)
    async with TestClient(TestServer(create_app(collection), host="127.0.0.1")) as client:
        yield client, collection
        for proxy in list(collection.proxies.values()):
            await proxy.stop()


async def test_two_deletes_of_one_toxic_give_204_and_404(
        api: tuple[TestClient[Any, Any], ProxyCollection], echo_server: EchoServer) -> None:
    client, collection = api
    await client.post("/proxies", json={"name": "p", "upstream": f"127.0.0.1:{echo_server.port}"})
    await client.post("/proxies/p/toxics", json={"type": "latency"})
    async with collection.lock:  # both requests pass their existence check, then queue for the lock
        first = asyncio.ensure_future(client.delete("/proxies/p/toxics/latency_downstream"))
        second = asyncio.ensure_future(client.delete("/proxies/p/toxics/latency_downstream"))
        await asyncio.sleep(0.2)
    statuses = sorted([(await first).status, (await second).status])
    assert statuses == [204, 404]  # was [204, 500]: KeyError


async def test_an_update_queued_behind_a_delete_does_not_revive_the_proxy(
        api: tuple[TestClient[Any, Any], ProxyCollection], echo_server: EchoServer) -> None:
    client, collection = api
    await client.post("/proxies", json={"name": "p", "upstream": f"127.0.0.1:{echo_server.port}"})
    async with collection.lock:
        delete = asyncio.ensure_future(client.delete("/proxies/p"))
        await asyncio.sleep(0.1)
        update = asyncio.ensure_future(client.patch("/proxies/p", json={"listen": "127.0.0.1:0"}))
        await asyncio.sleep(0.2)
    assert (await delete).status == 204
    answer = await update
    assert answer.status == 404  # was 200: a deleted proxy listening again, unreachable through the API
    assert await answer.json() == {"error": "proxy not found", "status": 404}
