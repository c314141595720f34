"""Toxiproxy's HTTP API over our proxies, so toxiproxy-python, the Go CLI or any client drives us unchanged.

Status codes, error strings and JSON shapes follow ../shared/reference/toxiproxy-api.md. Two rules of our
own: **no input gives a 500** (a bad value is a 4xx with ``{"error": …, "status": …}``; only a real OS
failure such as "address already in use" is a 500, as upstream's tests demand), and **a rejected request
changes nothing** (every value is checked before anything is applied; a listener is bound before the old
one closes). Every answer is strict JSON, except upstream's bare router answers (unknown path: text 404;
wrong method: empty 405).

Deliberate deviations: the default listen address is 127.0.0.1:0 (loopback only); invalid values that
crash or stall upstream get a 400: a malformed listen or upstream address (upstream stores any upstream
string and fails at dial), a ``toxicity`` outside [0, 1] (upstream stores 2.5 or -1), toxic attributes out
of their range (see harness.faults.toxics), NaN/Infinity or 1e400 anywhere in a body, JSON nested deeper
than 64 levels; the API never waits on a stalled socket; POST /reset is all or nothing.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from harness.faults import toxics as _builtin_toxics  # noqa: F401  (registers the built-in toxics)
from harness.faults.base import STREAMS, Toxic, ToxicValidationError, registry
from harness.faults.proxy import Proxy, parse_address

__all__ = ["VERSION", "PROXIES", "ApiError", "ProxyCollection", "create_app"]

log = logging.getLogger(__name__)

VERSION = "2.12.0"
_MAX_BODY = 1 << 20
_MAX_DEPTH = 64
"""Deepest JSON nesting accepted (upstream's decoder allows 10,000; real clients send 2 or 3 levels)."""
_DEFAULT_LISTEN = "127.0.0.1:0"

T = TypeVar("T")


class ApiError(Exception):
    """An error with the status Toxiproxy would answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _dumps(data: Any) -> str:
    """Strict JSON: never NaN or Infinity (input is checked; this turns a slip into an error, not bad JSON)."""
    return json.dumps(data, allow_nan=False)


def _error(message: str, status: int) -> web.Response:
    body = _dumps({"error": message, "status": status}) + "\n"
    return web.Response(status=status, text=body, content_type="application/json")


def _unmarshal(field: str) -> ApiError:
    return ApiError(f"bad request body: json: cannot unmarshal into Go struct field {field}", 400)


def _check_text(spec: dict[str, Any], key: str, kind: str) -> str | None:
    """``spec[key]`` as a string, None when absent or null; 400 for another type or a lone surrogate
    (it would break UTF-8 output, seeding and logs later)."""
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _unmarshal(f"{kind}.{key}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(f"bad request body: {kind}.{key} is not valid UTF-8", 400) from None
    return value


def _check_enabled(spec: dict[str, Any]) -> bool | None:
    value = spec.get("enabled")
    if value is not None and not isinstance(value, bool):
        raise _unmarshal("proxy.enabled")
    return value


def _check_address(text: str, field: str, where: str = "") -> str:
    """400 unless ``text`` is host:port (checked before anything changes; upstream fails later, with a 500)."""
    try:
        host, port = parse_address(text)
    except ValueError as exc:
        raise ApiError(f"{exc}{where}" if field == "listen" else f"bad upstream {exc}{where}", 400) from None
    if field == "upstream" and (not host or port == 0):
        raise ApiError(f"bad upstream address {text}: needs a host and a port from 1 to 65535{where}", 400)
    return text


class ProxyCollection:
    """All proxies by name, with the operations the API exposes. One lock serialises control changes;
    each operation validates everything before it changes anything."""

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
        """Types, required fields and the upstream address of a new proxy (the listen address is checked
        when the proxy is created, so /populate processes earlier entries first, as upstream)."""
        if not isinstance(spec, dict):
            raise ApiError("bad request body: json: cannot unmarshal into Go value of type proxy", 400)
        name, upstream = _check_text(spec, "name", "proxy"), _check_text(spec, "upstream", "proxy")
        _check_text(spec, "listen", "proxy")
        _check_enabled(spec)
        if not name:
            raise ApiError(f"missing required field: name{where}", 400)
        if not upstream:
            raise ApiError(f"missing required field: upstream{where}", 400)
        _check_address(upstream, "upstream", where)
        return spec

    async def create(self, spec: Any) -> Proxy:
        spec = self.validate_spec(spec)
        if spec["name"] in self.proxies:
            raise ApiError("proxy already exists", 409)
        listen = _check_address(spec.get("listen") or _DEFAULT_LISTEN, "listen")
        proxy = Proxy(spec["name"], listen, spec["upstream"], enabled=spec.get("enabled") is not False)
        if self.seed is not None:
            proxy.rng.seed(f"{self.seed}:{proxy.name}")
        if proxy.enabled:
            await _binding(proxy.start(), listen)
        self.proxies[proxy.name] = proxy
        return proxy

    async def update(self, proxy: Proxy, spec: Any) -> Proxy:
        """Partial update (missing fields keep their values; ``name`` is ignored, as upstream)."""
        if not isinstance(spec, dict):
            raise ApiError("bad request body: json: cannot unmarshal into Go value of type proxy", 400)
        _check_text(spec, "name", "proxy")
        listen = _check_text(spec, "listen", "proxy") or proxy.listen
        upstream = _check_text(spec, "upstream", "proxy") or proxy.upstream
        enabled = _check_enabled(spec)
        _check_address(listen, "listen")
        _check_address(upstream, "upstream")
        enabled = proxy.enabled if enabled is None else enabled
        # Validated: from here on only a bind can fail, and each step below leaves the proxy as it was then.
        moved = not _same_listen(listen, proxy.listen)
        if not enabled:
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        elif proxy.running and moved:
            await _binding(proxy.move(listen, upstream), listen)
        elif proxy.running:
            if upstream != proxy.upstream:
                proxy.retarget(upstream)
        else:
            await _binding(_start_at(proxy, listen, upstream), listen)
        proxy.enabled = enabled
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    async def replace(self, spec: dict[str, Any]) -> Proxy:
        """/populate's add-or-replace for a validated spec: if the new proxy cannot start, the old one is
        put back as it was."""
        existing = self.proxies.get(spec["name"])
        if existing is None:
            return await self.create(spec)
        _check_address(spec.get("listen") or _DEFAULT_LISTEN, "listen")
        await existing.stop()
        del self.proxies[existing.name]
        try:
            return await self.create(spec)
        except ApiError:
            self.proxies[existing.name] = existing
            if existing.enabled:
                try:
                    await existing.start()
                except (OSError, ValueError):
                    log.exception("proxy %s could not take back its listener %s", existing.name, existing.listen)
                    existing.enabled = False
            raise

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic; all or nothing: every stopped proxy's listener is bound
        before any proxy changes (upstream stops at the first failure, half reset)."""
        bound: dict[str, asyncio.Server] = {}
        try:
            for proxy in self.proxies.values():
                if not proxy.running:
                    bound[proxy.name] = await _binding(proxy.bind(proxy.listen), proxy.listen)
        except ApiError:
            for server in bound.values():
                server.close()
            raise
        for proxy in list(self.proxies.values()):
            if proxy.name in bound:
                await proxy.adopt(bound[proxy.name])
            proxy.enabled = True
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
        name = _check_text(spec, "name", "toxic") or f"{kind}_{stream}"
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


async def _start_at(proxy: Proxy, listen: str, upstream: str) -> None:
    """Start a stopped proxy on a new address; on failure it keeps its old address and upstream."""
    old = proxy.listen, proxy.upstream
    proxy.listen, proxy.upstream = listen, upstream
    try:
        await proxy.start()
    except BaseException:
        proxy.listen, proxy.upstream = old
        raise


async def _binding(step: Awaitable[T], listen: str) -> T:
    """Run a step that binds ``listen``, mapping its failure to the API's error. Address in use (and other
    OS failures of the server itself) is upstream's 500; an address this host cannot have is a 400."""
    try:
        return await step
    except ValueError as exc:  # a malformed address: caught by validation first, kept as a safety net
        raise ApiError(str(exc), 400) from None
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno and exc.errno > 0 else str(exc)
        message = f"listen tcp {listen}: bind: {reason}"
        client_side = exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL) or (
            exc.errno is not None and exc.errno < 0)  # getaddrinfo: no such host
        raise ApiError(message, 400 if client_side else 500) from None


def _toxicity(value: Any) -> float:
    """A finite number in [0, 1] (deviation: upstream stores any float, and NaN makes /proxies invalid JSON)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _unmarshal("toxic.toxicity")
    if not (isinstance(value, int) or math.isfinite(value)) or not 0 <= value <= 1:
        raise ApiError("toxicity must be a number from 0 to 1", 400)
    return float(value)


def _apply_attributes(toxic: Toxic, spec: dict[str, Any]) -> None:
    """Merge ``spec["attributes"]`` into the toxic (partial update), or raise the API's 400."""
    attributes = spec.get("attributes")
    if attributes is None:
        return
    if not isinstance(attributes, dict):
        raise _unmarshal("toxic.attributes")
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
            elif exc.status >= 400:
                response = _error(exc.reason.lower(), exc.status)
            else:
                raise
        except Exception as exc:  # never a traceback to the client; logged here, 500 as upstream
            log.exception("unexpected error serving %s %s", request.method, request.path)
            response = _error(str(exc) or type(exc).__name__, 500)
    response.headers["X-Toxiproxy-Request-Id"] = request_id
    return response


async def _body(request: web.Request) -> Any:
    """The request's JSON, or the API's 400: strict JSON (no NaN, Infinity or 1e400), nested at most
    ``_MAX_DEPTH`` levels, so nothing later meets a value it cannot store or print."""
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(f"bad request body: invalid UTF-8 at byte {exc.start}", 400) from None
    if not text.strip():
        raise ApiError("bad request body: EOF", 400)
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ApiError("bad request body: exceeded max depth", 400) from None
    except ValueError as exc:  # JSONDecodeError, ours above, and ints longer than 4,300 digits
        raise ApiError(f"bad request body: {exc}", 400) from None
    if _depth(data) > _MAX_DEPTH:
        raise ApiError("bad request body: exceeded max depth", 400)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _depth(data: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (a deep body must not crash the check itself)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= _MAX_DEPTH:
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def create_app(collection: ProxyCollection | None = None) -> web.Application:
    """The Toxiproxy-compatible aiohttp application; ``app[PROXIES]`` is the collection."""
    proxies = collection or ProxyCollection()
    app = web.Application(middlewares=[_middleware], client_max_size=_MAX_BODY)
    app[PROXIES] = proxies

    def _json(data: Any, status: int = 200) -> web.Response:
        return web.json_response(data, status=status, dumps=_dumps)

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
                    if existing is not None and spec["upstream"] == existing.upstream and _same_listen(
                            spec.get("listen") or _DEFAULT_LISTEN, existing.listen):
                        done.append(existing.to_json())
                        continue
                    done.append((await proxies.replace(spec)).to_json())
                except ApiError as exc:  # entries before this one stay, as upstream
                    return _json({"proxies": done or None, "error": exc.message, "status": exc.status}, exc.status)
            return _json({"proxies": done or None}, 201)

    async def get_proxy(request: web.Request) -> web.Response:
        return _json(proxies.get(request.match_info["proxy"]).to_json())

    async def update_proxy(request: web.Request) -> web.Response:
        proxies.get(request.match_info["proxy"])  # 404 before a body error, as upstream
        spec = await _body(request)
        async with proxies.lock:  # looked up again: it may have gone while the body was read
            proxy = await proxies.update(proxies.get(request.match_info["proxy"]), spec)
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
        proxies.get(request.match_info["proxy"])
        spec = await _body(request)
        async with proxies.lock:
            return _json(proxies.add_toxic(proxies.get(request.match_info["proxy"]), spec))

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
        _toxic(request)
        spec = await _body(request)
        async with proxies.lock:
            proxy, name = _toxic(request)
            return _json(proxies.update_toxic(proxy, name, spec))

    async def delete_toxic(request: web.Request) -> web.Response:
        _toxic(request)
        async with proxies.lock:  # checked again: a concurrent DELETE may have removed it meanwhile
            proxy, name = _toxic(request)
            await proxy.remove_toxic(name)
        return web.Response(status=204)

    async def version(request: web.Request) -> web.Response:
        return web.Response(text=_dumps({"version": VERSION}) + "\n", content_type="application/json")

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
