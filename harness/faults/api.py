"""Toxiproxy's HTTP API over our proxies, so toxiproxy-python, the Go CLI or any client drives us unchanged.

Status codes, error strings and JSON shapes follow ../shared/reference/toxiproxy-api.md. Deliberate
deviations: the default listen address is 127.0.0.1:0 (loopback only); invalid attribute values that
crash upstream get a 400; the API never waits on a stalled socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.faults import toxics as _builtin_toxics  # noqa: F401  (registers the built-in toxics)
from harness.faults.base import STREAMS, Toxic, ToxicValidationError, registry
from harness.faults.proxy import Proxy

__all__ = ["VERSION", "PROXIES", "ApiError", "ProxyCollection", "create_app"]

log = logging.getLogger(__name__)

VERSION = "2.12.0"
_MAX_BODY = 1 << 20


class ApiError(Exception):
    """An error with the status Toxiproxy would answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _error(message: str, status: int) -> web.Response:
    body = json.dumps({"error": message, "status": status}) + "\n"
    return web.Response(status=status, text=body, content_type="application/json")


class ProxyCollection:
    """All proxies by name, with the operations the API exposes. One lock serialises control changes."""

    def __init__(self, seed: int | None = None, metrics: bool = False) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.metrics = metrics
        """Serve /metrics (Prometheus text); off by default, as upstream without -proxy-metrics."""
        self.lock = asyncio.Lock()
        self.seed = seed
        """Seeds each proxy's random source (toxicity draws, jitter) from (seed, proxy name)."""

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ApiError("proxy not found", 404) from None

    @staticmethod
    def validate_spec(spec: Any, where: str = "") -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise ApiError("bad request body: json: cannot unmarshal into Go value of type proxy", 400)
        for key, kind in (("name", str), ("upstream", str), ("listen", str), ("enabled", bool)):
            if key in spec and spec[key] is not None and not isinstance(spec[key], kind):
                raise ApiError(f"bad request body: json: cannot unmarshal into Go struct field proxy.{key}", 400)
        if not spec.get("name"):
            raise ApiError(f"missing required field: name{where}", 400)
        if not spec.get("upstream"):
            raise ApiError(f"missing required field: upstream{where}", 400)
        return spec

    async def create(self, spec: dict[str, Any]) -> Proxy:
        spec = self.validate_spec(spec)
        if spec["name"] in self.proxies:
            raise ApiError("proxy already exists", 409)
        proxy = Proxy(spec["name"], spec.get("listen") or "127.0.0.1:0", spec["upstream"],
                      enabled=spec.get("enabled", True) is not False)
        if self.seed is not None:
            proxy.rng.seed(f"{self.seed}:{proxy.name}")
        if proxy.enabled:
            await self._start(proxy)
        self.proxies[proxy.name] = proxy
        return proxy

    @staticmethod
    async def _start(proxy: Proxy) -> None:
        try:
            await proxy.start()
        except ValueError as exc:  # deviation: a malformed address is a bad request (upstream answers 500)
            raise ApiError(str(exc), 400) from None
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise ApiError(f"listen tcp {proxy.listen}: bind: {reason}", 500) from None

    async def update(self, proxy: Proxy, spec: dict[str, Any]) -> Proxy:
        if not isinstance(spec, dict):
            raise ApiError("bad request body: json: cannot unmarshal into Go value of type proxy", 400)
        listen = spec.get("listen") or proxy.listen
        upstream = spec.get("upstream") or proxy.upstream
        enabled = spec.get("enabled", proxy.enabled)
        if not isinstance(enabled, bool):
            raise ApiError("bad request body: json: cannot unmarshal into Go struct field proxy.enabled", 400)
        if not _same_listen(listen, proxy.listen) or upstream != proxy.upstream:
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        proxy.enabled = enabled
        if enabled:
            await self._start(proxy)
        else:
            await proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    async def reset(self) -> None:
        for proxy in self.proxies.values():
            proxy.enabled = True
            await self._start(proxy)
            for name in list(proxy.toxics):
                await proxy.remove_toxic(name)

    def add_toxic(self, proxy: Proxy, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise ApiError("bad request body: json: cannot unmarshal into Go value of type toxic", 400)
        stream = spec.get("stream", "downstream")
        if not isinstance(stream, str) or stream.lower() not in STREAMS:
            raise ApiError("stream was invalid, can be either upstream or downstream", 400)
        kind = spec.get("type")
        cls = registry().get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ApiError("invalid toxic type", 400)
        name = spec.get("name") or f"{kind}_{stream}"
        if not isinstance(name, str):
            raise ApiError("bad request body: json: cannot unmarshal into Go struct field toxic.name", 400)
        if name in proxy.toxics:
            raise ApiError("toxic already exists", 409)
        toxic = cls(name=name, stream=stream.lower(), toxicity=_toxicity(spec.get("toxicity", 1.0)))
        _apply_attributes(toxic, spec)
        proxy.add_toxic(toxic)
        result = toxic.to_json()
        result["stream"] = stream  # echoes the string as given, like upstream
        return result

    def update_toxic(self, proxy: Proxy, name: str, spec: Any) -> dict[str, Any]:
        toxic = proxy.toxics.get(name)
        if toxic is None:
            raise ApiError("toxic not found", 404)
        if not isinstance(spec, dict):
            raise ApiError("bad request body: json: cannot unmarshal into Go value of type toxic", 400)
        toxicity = _toxicity(spec["toxicity"]) if "toxicity" in spec else toxic.toxicity
        _apply_attributes(toxic, spec)  # all-or-nothing: nothing changes when this raises
        toxic.toxicity = toxicity
        proxy.update_toxic(toxic)
        return toxic.to_json()


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError("bad request body: json: cannot unmarshal into Go struct field toxic.toxicity", 400)
    return float(value)


def _apply_attributes(toxic: Toxic, spec: dict[str, Any]) -> None:
    """Merge ``spec["attributes"]`` into the toxic (partial update), or raise the API's 400."""
    attributes = spec.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise ApiError("bad request body: json: cannot unmarshal into Go struct field toxic.attributes", 400)
    try:
        toxic.apply_attributes(attributes)
    except ToxicValidationError as exc:
        raise ApiError(str(exc), 400) from None


PROXIES = web.AppKey("proxies", ProxyCollection)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = uuid.uuid4().hex
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        response: web.StreamResponse = _error("User agent not allowed", 403)
    else:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _error(exc.message, exc.status)
        except web.HTTPException as exc:
            if exc.status == 404:
                response = web.Response(status=404, text="404 page not found\n")
            elif exc.status == 405:
                response = web.Response(status=405)
            elif exc.status == 413:
                response = _error("bad request body: http: request body too large", 413)
            else:
                raise
        except Exception as exc:  # never a traceback to the client; logged here, 500 as upstream
            log.exception("unexpected error serving %s %s", request.method, request.path)
            response = _error(str(exc) or type(exc).__name__, 500)
    response.headers["X-Toxiproxy-Request-Id"] = request_id
    return response


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(f"bad request body: invalid UTF-8 at byte {exc.start}", 400) from None
    if not text.strip():
        raise ApiError("bad request body: EOF", 400)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(f"bad request body: {exc}", 400) from None


def create_app(collection: ProxyCollection | None = None) -> web.Application:
    """The Toxiproxy-compatible aiohttp application; ``app[PROXIES]`` is the collection."""
    proxies = collection or ProxyCollection()
    app = web.Application(middlewares=[_middleware], client_max_size=_MAX_BODY)
    app[PROXIES] = proxies

    def _json(data: Any, status: int = 200) -> web.Response:
        return web.json_response(data, status=status)

    async def list_proxies(request: web.Request) -> web.Response:
        return _json({name: proxies.proxies[name].to_json() for name in sorted(proxies.proxies)})

    async def create_proxy(request: web.Request) -> web.Response:
        spec = await _body(request)
        async with proxies.lock:
            proxy = await proxies.create(spec)
        return _json(proxy.to_json(), 201)

    async def populate(request: web.Request) -> web.Response:
        specs = await _body(request)
        if not isinstance(specs, list):
            raise ApiError("bad request body: json: cannot unmarshal object into Go value of type []proxy", 400)
        for number, spec in enumerate(specs, start=1):
            proxies.validate_spec(spec, f" at proxy {number}")
        done: list[dict[str, Any]] = []
        async with proxies.lock:
            for spec in specs:
                try:
                    existing = proxies.proxies.get(spec["name"])
                    if existing is not None:
                        same = spec.get("upstream") == existing.upstream and _same_listen(
                            spec.get("listen") or "127.0.0.1:0", existing.listen)
                        if same:
                            done.append(existing.to_json())
                            continue
                        await proxies.delete(existing.name)
                    done.append((await proxies.create(spec)).to_json())
                except ApiError as exc:
                    return _json({"proxies": done or None, "error": exc.message, "status": exc.status}, exc.status)
        return _json({"proxies": done or None}, 201)

    async def get_proxy(request: web.Request) -> web.Response:
        return _json(proxies.get(request.match_info["proxy"]).to_json())

    async def update_proxy(request: web.Request) -> web.Response:
        proxy = proxies.get(request.match_info["proxy"])
        spec = await _body(request)
        async with proxies.lock:
            await proxies.update(proxy, spec)
        return _json(proxy.to_json())

    async def delete_proxy(request: web.Request) -> web.Response:
        async with proxies.lock:
            await proxies.delete(request.match_info["proxy"])
        return web.Response(status=204)

    async def reset(request: web.Request) -> web.Response:
        async with proxies.lock:
            await proxies.reset()
        return web.Response(status=204)

    async def list_toxics(request: web.Request) -> web.Response:
        return _json(proxies.get(request.match_info["proxy"]).to_json()["toxics"])

    async def create_toxic(request: web.Request) -> web.Response:
        proxy = proxies.get(request.match_info["proxy"])
        spec = await _body(request)
        async with proxies.lock:
            return _json(proxies.add_toxic(proxy, spec))

    def _toxic(request: web.Request) -> tuple[Proxy, str]:
        proxy = proxies.get(request.match_info["proxy"])
        name = request.match_info["toxic"]
        if name not in proxy.toxics:
            raise ApiError("toxic not found", 404)
        return proxy, name

    async def get_toxic(request: web.Request) -> web.Response:
        proxy, name = _toxic(request)
        return _json(proxy.toxics[name].to_json())

    async def update_toxic(request: web.Request) -> web.Response:
        proxy, name = _toxic(request)
        spec = await _body(request)
        async with proxies.lock:
            return _json(proxies.update_toxic(proxy, name, spec))

    async def delete_toxic(request: web.Request) -> web.Response:
        proxy, name = _toxic(request)
        async with proxies.lock:
            await proxy.remove_toxic(name)
        return web.Response(status=204)

    async def version(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"version": VERSION}) + "\n", content_type="application/json")

    app.router.add_get("/proxies", list_proxies)
    app.router.add_post("/proxies", create_proxy)
    app.router.add_post("/populate", populate)
    app.router.add_get("/proxies/{proxy}", get_proxy)
    app.router.add_post("/proxies/{proxy}", update_proxy)
    app.router.add_patch("/proxies/{proxy}", update_proxy)
    app.router.add_delete("/proxies/{proxy}", delete_proxy)
    app.router.add_get("/proxies/{proxy}/toxics", list_toxics)
    app.router.add_post("/proxies/{proxy}/toxics", create_toxic)
    app.router.add_get("/proxies/{proxy}/toxics/{toxic}", get_toxic)
    app.router.add_post("/proxies/{proxy}/toxics/{toxic}", update_toxic)
    app.router.add_patch("/proxies/{proxy}/toxics/{toxic}", update_toxic)
    app.router.add_delete("/proxies/{proxy}/toxics/{toxic}", delete_toxic)
    app.router.add_post("/reset", reset)
    async def metrics(request: web.Request) -> web.Response:
        if not proxies.metrics:
            return web.Response(status=404, text="404 page not found\n")
        lines = []
        for metric, position in (("received", 0), ("sent", 1)):
            name = f"toxiproxy_proxy_{metric}_bytes_total"
            lines += [f"# HELP {name} The total bytes {metric} by the proxy, per direction", f"# TYPE {name} counter"]
            for proxy in sorted(proxies.proxies.values(), key=lambda p: p.name):
                for stream, counts in proxy.byte_counts().items():
                    labels = (f'direction="{stream}",listener="{proxy.listen}",proxy="{proxy.name}",'
                              f'upstream="{proxy.upstream}"')
                    lines.append(f"{name}{{{labels}}} {counts[position]}")
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    app.router.add_get("/version", version)
    app.router.add_get("/metrics", metrics)
    return app


def _same_listen(a: str, b: str) -> bool:
    """Hostname-equal listen addresses (localhost:p == 127.0.0.1:p); port 0 means 'any', so never equal."""
    def norm(text: str) -> str:
        host, _, port = text.rpartition(":")
        return f"{'127.0.0.1' if host in ('localhost', '') else host.strip('[]')}:{port}"

    return not a.endswith(":0") and norm(a) == norm(b)
