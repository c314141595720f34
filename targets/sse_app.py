"""SSE for server→client, HTTP POST for client→server, resume with ``Last-Event-ID`` out of a Redis stream.

- ``GET /events`` (``Authorization: Bearer <token>``): an SSE stream of ``msg`` events whose ``id:`` is the
  message's Redis stream id, with ``retry:`` set; it starts after the ``Last-Event-ID`` header (the
  browser's EventSource sends it on every reconnect) and then follows the user's stream with XREAD BLOCK.
  Live delivery and replay are one loop over the same stream, so each user's messages arrive in order.
- ``POST /send`` ``{id, to, seq, body?, sent_ns?}``: ``XADD inbox:<to>`` first, then ``{"ok": true}``;
  ``{"ok": false}`` if the store refused, ``{"ok": null}`` if the outcome is unknown.
- ``POST /ack`` ``{offsets: [...]}`` (or ``{offset}``): ``XDEL`` from the caller's own stream.
At-least-once, ordered; acknowledged messages survive a restart of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from targets.auth import verify
from targets.common import MAX_BODY_BYTES, message_for, validate_send, watch_parent

log = logging.getLogger("sse")
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ping-interval", type=float, default=15.0, help="SSE comment ping, seconds")
    parser.add_argument("--ping-timeout", type=float, default=20.0, help="unused; accepted for symmetry")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--redis-url", required=True)
    return parser.parse_args()


def build_app(args: argparse.Namespace) -> Starlette:
    # Blocking pools: a burst of requests waits for a free connection instead of failing
    store = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        args.redis_url, max_connections=64, timeout=5, socket_connect_timeout=2, decode_responses=True))
    reader = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        args.redis_url, max_connections=256, timeout=5, socket_connect_timeout=2, decode_responses=True))

    def user_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        return verify({"token": token}, args.secret)

    async def caller_and_body(request: Request) -> tuple[str, Any] | JSONResponse:
        """The authenticated caller and the JSON body, or the error response to send instead."""
        user = user_of(request)
        if user is None:
            return JSONResponse({"ok": False, "error": "invalid token"}, status_code=401)
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return JSONResponse({"ok": False, "error": f"bad body: body over {MAX_BODY_BYTES} bytes"},
                                status_code=400)
        try:
            return user, json.loads(raw)
        except ValueError as exc:
            return JSONResponse({"ok": False, "error": f"bad body: {exc}"}, status_code=400)

    async def events(request: Request) -> Any:
        user = user_of(request)
        if user is None:
            return JSONResponse({"ok": False, "error": "invalid token"}, status_code=401)
        last = request.headers.get("last-event-id", "")
        cursor = last if STREAM_ID.match(last) else "0-0"

        async def stream() -> AsyncIterator[ServerSentEvent]:
            nonlocal cursor
            first = True
            while True:
                try:
                    found: Any = await reader.xread({f"inbox:{user}": cursor}, count=500, block=1000)
                except redis.exceptions.RedisError as exc:
                    log.error("stream for %s failed: %s; ending it so the client reconnects", user, exc)
                    return
                for _key, entries in found or []:
                    for offset, fields in entries:
                        message: dict[str, Any] = {str(k): v for k, v in fields.items()}
                        for key in ("seq", "sent_ns"):
                            if key in message:
                                message[key] = int(message[key])
                        message["offset"] = offset
                        cursor = offset
                        yield ServerSentEvent(data=json.dumps(message), id=offset, event="msg",
                                              retry=1000 if first else None)
                        first = False
                await asyncio.sleep(0)

        return EventSourceResponse(stream(), ping=max(1, int(args.ping_interval)), send_timeout=10)

    async def send(request: Request) -> JSONResponse:
        checked = await caller_and_body(request)
        if isinstance(checked, JSONResponse):
            return checked
        user, data = checked
        problem = validate_send(data)
        if problem is not None:
            log.warning("rejected send from %s: %s", user, problem)
            return JSONResponse({"ok": False, "error": problem}, status_code=400)
        fields: dict[Any, Any] = {k: str(v) for k, v in message_for(user, data).items()}
        try:
            await store.xadd(f"inbox:{data['to']}", fields)
        except redis.exceptions.ConnectionError as exc:
            return JSONResponse({"ok": False, "error": f"store unavailable: {exc}"}, status_code=503)
        except redis.exceptions.RedisError as exc:
            return JSONResponse({"ok": None, "error": f"store error: {exc}"}, status_code=503)
        return JSONResponse({"ok": True})

    async def ack(request: Request) -> JSONResponse:
        checked = await caller_and_body(request)
        if isinstance(checked, JSONResponse):
            return checked
        user, data = checked
        offsets = data.get("offsets", [data.get("offset")]) if isinstance(data, dict) else None
        if not isinstance(offsets, list) or not offsets or len(offsets) > 1000 or not all(
                isinstance(o, str) and STREAM_ID.match(o) for o in offsets):
            return JSONResponse({"ok": False, "error": "offsets must be 1-1000 stream ids"}, status_code=400)
        try:
            await store.xdel(f"inbox:{user}", *offsets)  # only ever the caller's own stream
        except redis.exceptions.RedisError as exc:
            return JSONResponse({"ok": False, "error": f"store unavailable: {exc}"}, status_code=503)
        return JSONResponse({"ok": True})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/events", events), Route("/send", send, methods=["POST"]),
                             Route("/ack", ack, methods=["POST"]), Route("/healthz", healthz)])


def main() -> None:
    args = _args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(args)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)

    async def run() -> None:
        watch = asyncio.create_task(watch_parent())
        try:
            await server.serve()
        finally:
            watch.cancel()

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
