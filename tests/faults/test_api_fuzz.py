"""A seeded fuzz of the proxy's HTTP API: random methods, paths and bodies against a real embedded API.

Asserted for every answer: no 5xx; the body is strict JSON (no NaN/Infinity) in Toxiproxy's error shape
when it is an error, or one of upstream's two bare router answers (unknown path, wrong method); and a
rejected request leaves the state exactly as it was (GET /proxies, each proxy's toxics, every enabled
listener still accepting). Same seed, same requests: a failure message names the seed and the request
number, so it replays. Set HARNESS_FUZZ_SEED to explore other seeds locally.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import EchoServer

SEED = int(os.environ.get("HARNESS_FUZZ_SEED", "20261201"))
REQUESTS = 3000

NAMES = ["a", "b", "c"]  # the only proxy names a body may create: keeps the state small
PATH_NAMES = [*NAMES, "ghost", "a%2Fb", "%C3%BC", "%00"]
TOXIC_NAMES = ["t1", "t2", "latency_downstream", "timeout_upstream", "slicer_downstream", "ghost"]
TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "limit_time",
         "slow_open", "noop"]
ATTRIBUTES = {"latency": ["latency", "jitter"], "bandwidth": ["rate"], "slow_close": ["delay"],
              "timeout": ["timeout"], "reset_peer": ["timeout"], "slicer": ["average_size", "size_variation", "delay"],
              "limit_data": ["bytes"], "limit_time": ["time"], "slow_open": ["delay"], "noop": []}


@dataclass(frozen=True)
class Raw:
    """JSON text put into a body verbatim: NaN, Infinity, 1e400, numbers Python would print otherwise."""

    text: str


def encode(value: Any) -> str:
    """json.dumps that lets Raw values through (the stdlib would refuse or normalise them)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(encode(v) for v in value) + "]"
    return json.dumps(value)


HOSTILE_NUMBERS = [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), Raw("-1e400"), Raw("1" * 400),
                   Raw("-0"), Raw("1E2"), 10**400, 2**63, 2**63 - 1, -(2**63), -1, 1.5, 100.0, 0.1]
WRONG_TYPES: list[Any] = [None, True, False, "", "10", "🙂", [], [1], {}, {"x": 1}, "\ud800"]


class Fuzzer:
    """Draws requests from one seeded random source; knows nothing of the answers, so a seed replays."""

    def __init__(self, rng: random.Random, upstream_port: int) -> None:
        self.rng = rng
        self.upstreams = [f"127.0.0.1:{upstream_port}", f"localhost:{upstream_port}"]

    def pick(self, *options: Any) -> Any:
        return self.rng.choice(options)

    def maybe_bad(self, good: list[Any], bad: list[Any], p_bad: float = 0.2) -> Any:
        return self.rng.choice(bad if self.rng.random() < p_bad else good)

    def deep(self) -> str:
        depth = self.rng.choice([65, 300, 999, 1001, 5000, 100_000])
        if self.rng.random() < 0.5:
            return "[" * depth + "]" * depth
        return '{"a": ' * depth + "1" + "}" * depth

    def upstream(self) -> Any:
        bad = ["", "nohost", "x:0", ":80", "a b:1", "[::1:80", "h:99999", "h:-1", "h:\u0663", "1:2:3", "h:1\n",
               5, 5.5, *WRONG_TYPES]
        return self.maybe_bad(self.upstreams, bad)

    def listen(self) -> Any:
        bad = ["127.0.0.1:99999", "local373", "192.0.2.1:0", "a b:0", "[::1", "::1:80", "127.0.0.1:\u0663",
               "127.0.0.1:-0", 0, 8080, *WRONG_TYPES]
        return self.maybe_bad(["127.0.0.1:0", "localhost:0", ""], bad)

    def proxy_spec(self, partial: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        fields = {"name": lambda: self.maybe_bad(NAMES, [v for v in WRONG_TYPES if v != "10" and v != "🙂"] + [7]),
                  "upstream": self.upstream, "listen": self.listen,
                  "enabled": lambda: self.maybe_bad([True, False], ["yes", 1, 0, None, []], 0.2)}
        for key, make in fields.items():
            if (partial and self.rng.random() < 0.5) or (key == "listen" and self.rng.random() < 0.3):
                continue
            spec[key] = make()
        if self.rng.random() < 0.1:
            spec["unknown_field"] = self.pick(1, "x", [])
        return spec

    def number(self, good: list[Any]) -> Any:
        return self.maybe_bad(good, [*HOSTILE_NUMBERS, *WRONG_TYPES], 0.35)

    def attributes(self, kind: str) -> Any:
        if self.rng.random() < 0.08:
            return self.pick(None, [], "x", 3, [{"latency": 1}])
        names = ATTRIBUTES.get(kind, ["latency"]) + ["unknown"]
        return {name: self.number([0, 1, 5, 20, 64, 3_600_000, 3_600_001]) for name in names
                if self.rng.random() < 0.6}

    def toxic_spec(self, partial: bool) -> dict[str, Any]:
        kind = self.maybe_bad(TYPES, ["meteor", "", 1, None, "LATENCY"], 0.15)
        spec: dict[str, Any] = {}
        if not partial or self.rng.random() < 0.2:
            spec["type"] = kind
        if self.rng.random() < 0.6:
            spec["stream"] = self.maybe_bad(["upstream", "downstream", "UPSTREAM"], ["", "sideways", 3, None], 0.2)
        if self.rng.random() < 0.7:
            spec["name"] = self.maybe_bad(TOXIC_NAMES, [3, [], "\ud800", {}], 0.15)
        if self.rng.random() < 0.5:
            spec["toxicity"] = self.number([0, 1, 0.5, 0.25, 1.0])
        if self.rng.random() < 0.8:
            spec["attributes"] = self.attributes(kind if isinstance(kind, str) else "latency")
        return spec

    def hostile_body(self) -> bytes:
        choice = self.rng.randrange(7)
        if choice == 0:
            return self.deep().encode()
        if choice == 1:
            return encode({"name": "a", "upstream": self.upstreams[0], "listen": Raw(self.deep())}).encode()
        if choice == 2:
            return encode(self.pick(*HOSTILE_NUMBERS, *WRONG_TYPES)).encode("utf-8", "surrogatepass")
        if choice == 3:
            text = encode(self.toxic_spec(False))
            return text[: self.rng.randrange(len(text) + 1)].encode("utf-8", "surrogatepass")  # truncated
        if choice == 4:
            return self.pick(b"", b" ", b"\xff\xfe{", b"{\"name\": \"a\xc3\"}", b"null", b"\x00")
        if choice == 5:
            return bytes(self.rng.randrange(32, 127) for _ in range(self.rng.randrange(1, 40)))
        return encode({"type": "latency", "toxicity": Raw(self.pick("NaN", "Infinity", "-Infinity", "1e400")),
                       "attributes": {"latency": Raw(self.pick("NaN", "1e400", "1" * 400, "-1"))}}).encode()

    def body_for(self, path: str) -> bytes | None:
        if self.rng.random() < 0.25:
            return self.hostile_body()
        if path == "/proxies":
            value: Any = self.proxy_spec(partial=False)
        elif path == "/populate":
            value = [self.proxy_spec(partial=False) for _ in range(self.rng.randrange(4))]
            if self.rng.random() < 0.1:
                value = self.proxy_spec(partial=False)  # an object where a list goes
        elif path.endswith("/toxics"):
            value = self.toxic_spec(partial=False)
        elif "/toxics/" in path:
            value = self.toxic_spec(partial=True)
        elif path.startswith("/proxies/"):
            value = self.proxy_spec(partial=True)
        else:
            return self.pick(None, b"{}", b"[]")
        return encode(value).encode("utf-8", "surrogatepass")

    def request(self) -> tuple[str, str, bytes | None]:
        template = self.rng.choices(list(ROUTES), weights=[w for w, _ in ROUTES.values()])[0]
        proxy = self.maybe_bad(NAMES, PATH_NAMES[len(NAMES):], 0.1)
        path = template.format(p=proxy, t=self.rng.choice(TOXIC_NAMES))
        methods = ROUTES[template][1]
        method = self.rng.choice(methods) if self.rng.random() < 0.93 else self.pick(*OTHER_METHODS)
        body = self.body_for(path) if method in ("POST", "PATCH", "PUT") else None
        return method, path, body


ROUTES: dict[str, tuple[int, list[str]]] = {
    "/proxies": (25, ["POST", "POST", "POST", "GET"]),
    "/proxies/{p}": (20, ["POST", "POST", "PATCH", "PATCH", "PATCH", "PATCH", "GET", "GET", "GET", "DELETE"]),
    "/proxies/{p}/toxics": (25, ["POST", "POST", "POST", "GET"]),
    "/proxies/{p}/toxics/{t}": (20, ["POST", "PATCH", "PATCH", "GET", "DELETE"]),
    "/populate": (8, ["POST"]),
    "/reset": (2, ["POST"]),
    "/version": (1, ["GET"]),
    "/metrics": (1, ["GET"]),
    "/nothing": (1, ["GET", "POST"]),
    "/proxies/{p}/toxics/{t}/x": (1, ["GET", "POST"]),
}
OTHER_METHODS = ["PUT", "HEAD", "OPTIONS", "GET", "DELETE", "PATCH"]
LISTENER_PATHS = ("/populate", "/reset")


class Api:
    """A keep-alive HTTP/1.1 connection (http.client: a third of httpx's cost per call, which matters here)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"User-Agent": "fuzz", "Content-Type": "application/json"}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def json(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body[:200])
        return _strict(body.decode())


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _check_answer(method: str, status: int, body: bytes) -> Any:
    """The answer's JSON (None when it has no body); raises AssertionError when the answer is malformed."""
    assert status < 500, f"{status} {body[:300]!r}"
    if status == 204 or method == "HEAD":
        assert body == b""
        return None
    if (status, body) in ((404, b"404 page not found\n"), (405, b"")):
        return None  # upstream's router answers, pinned by test_api_conformance
    data = _strict(body.decode("utf-8"))
    if status >= 400:
        assert isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"], data
        assert data["status"] == status, data
        assert set(data) <= {"error", "status", "proxies"}, data
    return data


def _state(api: Api) -> dict[str, Any]:
    proxies = api.json("/proxies")
    toxics = {name: api.json(f"/proxies/{name}/toxics") for name in proxies}
    return {"proxies": proxies, "toxics": toxics}


def _listening(state: dict[str, Any]) -> list[str]:
    """Enabled proxies whose listener does not accept (an empty list is the expected answer)."""
    dead = []
    for name, proxy in state["proxies"].items():
        if proxy["enabled"]:
            try:
                socket.create_connection(("127.0.0.1", int(proxy["listen"].rpartition(":")[2])), timeout=2).close()
            except OSError:
                dead.append(name)
    return dead


def test_fuzzed_api_never_fails_and_rejections_change_nothing(proxy_api: str, echo_server: EchoServer) -> None:
    fuzzer = Fuzzer(random.Random(SEED), echo_server.port)
    outcomes: dict[int, int] = {}
    started = time.monotonic()
    api = Api(proxy_api)
    state = _state(api)
    for number in range(REQUESTS):
        method, path, body = fuzzer.request()
        where = f"seed {SEED} request {number}: {method} {path} {body[:300] if body else body!r}"
        status, answer = api.call(method, path, body)
        outcomes[status] = outcomes.get(status, 0) + 1
        try:
            data = _check_answer(method, status, answer)
        except (AssertionError, ValueError) as exc:
            raise AssertionError(f"{where} -> {status}: {exc}") from None
        partial_populate = path == "/populate" and isinstance(data, dict) and data.get("proxies")
        if status >= 400 and not partial_populate:
            after = _state(api)
            assert after == state, f"{where} -> {status} {answer[:200]!r} changed the state"
            if path in LISTENER_PATHS or (path.count("/") == 2 and method != "GET"):  # could touch listeners
                assert not _listening(after), f"{where}: listeners gone: {_listening(after)}"
        elif method not in ("GET", "HEAD"):
            state = _state(api)
    assert api.call("POST", "/reset")[0] == 204
    final = _state(api)
    assert all(p["enabled"] and not p["toxics"] for p in final["proxies"].values())
    assert not _listening(final)
    elapsed = time.monotonic() - started
    print(f"fuzz seed {SEED}: {REQUESTS} requests in {elapsed:.1f} s, answers {dict(sorted(outcomes.items()))}")
    # The fuzz must reach the interesting paths, not only fail early: both outcomes in numbers.
    accepted = sum(count for status, count in outcomes.items() if status < 300)
    rejected = sum(count for status, count in outcomes.items() if status >= 400)
    assert accepted >= REQUESTS // 5 and rejected >= REQUESTS // 3, (outcomes, elapsed)
