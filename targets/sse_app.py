"""SSE for server→client, HTTP POST for client→server, resume with ``Last-Event-ID`` out of a Redis stream.

- ``GET /events`` (``Authorization: Bearer <token>``): an SSE stream of ``msg`` events whose ``id:`` is the
  message's Redis stream id, with ``retry:`` set; it starts after the ``Last-Event-ID`` header (the
  browser's EventSource sends it on every reconnect) and then follows the user's stream with XREAD BLOCK.
  Live delivery and replay are one loop over the same stream, so each user's messages arrive in order.
- ``POST /send`` ``{id, to, seq, body?, sent_ns?}``: ``XADD inbox:<to>`` first, then ``{"ok": true}``;
  ``{"ok": false}`` if the store refused, ``{"ok": null}`` if the outcome is unknown.
- ``POST /ack`` ``{offsets: [...]}`` (or ``{offset}``): ``XDEL`` from the caller's own stream.
- POST bodies: a ``Content-Length`` over ``MAX_BODY_BYTES`` is answered 413 before reading any of it; a body
  without one is read only up to the limit (then 413): an oversized body never sits in memory.
- bound: a recipient's stream holding ``--max-pending`` entries (unacked messages) takes no more; the send
  gets 507 ``{"ok": false}``. Checked and added in one Lua script; never ``XADD MAXLEN ~``, which would
  trim messages already acknowledged to their senders.
- rooms: ``POST /join`` / ``POST /leave`` ``{room}`` (answered like ``/send``) keep a member set per room
  in Redis, per user; ``POST /send {id, room, seq, …}`` fans the message out into every other member's
  own inbox stream in one script (all or nothing against the bound), so the SSE path and its
  ``Last-Event-ID`` resume stay exactly as for direct messages, and each member's stream is one ordered
  stream (per-room streams merged at read time would need a cursor per room in one event id). A join
  that runs between that script and the reply (its join number is past the one the send saw) gets the
  message too, before the sender hears ``ok`` (never lost to the join/send race; not bound-checked: it is
  already stored for the others). A second join keeps the membership; a leave ends it (what is already
  in the member's stream stays there).
At-least-once, ordered (per member too, room messages among the direct ones); acknowledged messages survive
a restart of this process.
Command line and environment as in ``targets.common`` (secret in ``HARNESS_TARGET_SECRET``; SIGTERM ends
the streams and exits 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
from collections.abc import AsyncIterator
from types import FrameType
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
from targets.common import (
    MAX_BODY_BYTES,
    SHUTDOWN_TIMEOUT_S,
    XADD_UNLESS_FULL,
    PendingBound,
    make_parser,
    message_for,
    parse_args,
    room_of,
    store_failure,
    validate_send,
    watch_parent,
)

log = logging.getLogger("sse")
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

ROOM_JOIN = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], redis.call('INCR', KEYS[3]))
redis.call('SADD', KEYS[1], ARGV[1])
return 1
"""
"""KEYS members, join numbers, join counter; ARGV user. 1 joined, 0 already a member."""

ROOM_LEAVE = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

ROOM_FAN_OUT = """
local sender, limit = ARGV[1], tonumber(ARGV[2])
local members = redis.call('SMEMBERS', KEYS[1])
for _, member in ipairs(members) do
  if member ~= sender and redis.call('XLEN', 'inbox:' .. member) >= limit then return {-1, member} end
end
for _, member in ipairs(members) do
  if member ~= sender then redis.call('XADD', 'inbox:' .. member, '*', unpack(ARGV, 3)) end
end
return {tonumber(redis.call('GET', KEYS[2]) or '0'), ''}
"""
"""KEYS members, join counter; ARGV sender, limit, fields…: ``{join number seen, ''}`` stored in every other
member's inbox, or ``{-1, member}`` refused (that member's stream is full; stored for no one)."""

ROOM_LATECOMERS = """
local joined = redis.call('HGETALL', KEYS[1])
local count = 0
for i = 1, #joined, 2 do
  if joined[i] ~= ARGV[2] and tonumber(joined[i + 1]) > tonumber(ARGV[1]) then
    redis.call('XADD', 'inbox:' .. joined[i], '*', unpack(ARGV, 3))
    count = count + 1
  end
end
return count
"""
"""KEYS join numbers; ARGV join number the fan-out saw, sender, fields…: stored for members who joined since."""


def _args() -> argparse.Namespace:
    parser = make_parser(__doc__ or "", ping_interval=15.0)  # --ping-interval: SSE comment ping; --ping-timeout unused
    parser.add_argument("--redis-url", required=True)
    return parse_args(__doc__ or "", parser)


class BodyTooLarge(Exception):
    """A request body over ``MAX_BODY_BYTES`` (announced or found while reading)."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, reading at most ``limit`` bytes plus one chunk; BodyTooLarge past that or if announced larger."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise BodyTooLarge(f"body of {length} bytes over {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
    return bytes(body)


def build_app(args: argparse.Namespace) -> Starlette:
    # Blocking pools: a burst of requests waits for a free connection instead of failing
    store = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        args.redis_url, max_connections=64, timeout=5, socket_connect_timeout=2, decode_responses=True))
    reader = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        args.redis_url, max_connections=256, timeout=5, socket_connect_timeout=2, decode_responses=True))
    xadd_unless_full = store.register_script(XADD_UNLESS_FULL)
    join_room, leave_room = store.register_script(ROOM_JOIN), store.register_script(ROOM_LEAVE)
    fan_out, latecomers = store.register_script(ROOM_FAN_OUT), store.register_script(ROOM_LATECOMERS)
    bound = PendingBound(args.max_pending, log)

    def user_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        return verify({"token": token}, args.secret)

    async def caller_and_body(request: Request) -> tuple[str, Any] | JSONResponse:
        """The authenticated caller and the JSON body, or the error response to send instead."""
        user = user_of(request)
        if user is None:
            return JSONResponse({"ok": False, "error": "invalid token"}, status_code=401)
        try:
            raw = await read_body(request)
        except BodyTooLarge as exc:
            return JSONResponse({"ok": False, "error": f"bad body: {exc}"}, status_code=413)
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
        problem = validate_send(data, rooms=True)
        if problem is None and "to" not in data and room_of(data) is None:
            problem = "room must be a name of 1-64 letters, digits, _ . : -"
        if problem is not None:
            log.warning("rejected send from %s: %s", user, problem)
            return JSONResponse({"ok": False, "error": problem}, status_code=400)
        flat = [part for pair in message_for(user, data).items() for part in map(str, pair)]
        try:
            if "to" in data:
                offset = await xadd_unless_full(keys=[f"inbox:{data['to']}"], args=[bound.limit, *flat])
                full = None if offset is not None else data["to"]
            else:
                full = await send_to_room(user, data["room"], flat)
        except redis.exceptions.ConnectionError as exc:
            ok, error = store_failure(exc)
            return JSONResponse({"ok": ok, "error": error}, status_code=503)
        except redis.exceptions.RedisError as exc:
            return JSONResponse({"ok": None, "error": f"store error: {exc}"}, status_code=503)
        if full is not None:  # 507 Insufficient Storage: definitely not stored
            return JSONResponse(bound.refusal(user, full), status_code=507)
        return JSONResponse({"ok": True})

    async def send_to_room(user: str, room: str, flat: list[str]) -> str | None:
        """Into every other member's inbox, then into any member who joined meanwhile: None, or the full one.
        A store error after the fan-out leaves the latecomers unknown: raised, so the send is ``ok: null``."""
        seen, full = await fan_out(keys=[f"members:{{{room}}}", f"joins:{{{room}}}"],
                                   args=[user, bound.limit, *flat])
        if int(seen) < 0:
            return f"{full} (room {room})"
        await latecomers(keys=[f"joined:{{{room}}}"], args=[int(seen), user, *flat])
        return None

    async def membership(request: Request, joining: bool) -> JSONResponse:
        checked = await caller_and_body(request)
        if isinstance(checked, JSONResponse):
            return checked
        user, data = checked
        room = room_of(data)
        if room is None:
            return JSONResponse({"ok": False, "error": "room must be a name of 1-64 letters, digits, _ . : -"},
                                status_code=400)
        keys = [f"members:{{{room}}}", f"joined:{{{room}}}", f"joins:{{{room}}}"]
        try:
            await (join_room(keys=keys, args=[user]) if joining else leave_room(keys=keys[:2], args=[user]))
        except redis.exceptions.ConnectionError as exc:
            ok, error = store_failure(exc)
            return JSONResponse({"ok": ok, "error": error}, status_code=503)
        except redis.exceptions.RedisError as exc:
            return JSONResponse({"ok": None, "error": f"store error: {exc}"}, status_code=503)
        return JSONResponse({"ok": True})

    async def join(request: Request) -> JSONResponse:
        return await membership(request, joining=True)

    async def leave(request: Request) -> JSONResponse:
        return await membership(request, joining=False)

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
                             Route("/join", join, methods=["POST"]), Route("/leave", leave, methods=["POST"]),
                             Route("/ack", ack, methods=["POST"]), Route("/healthz", healthz)])


def main() -> None:
    args = _args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(args)
    # SIGTERM: uvicorn stops accepting, sse-starlette ends every open stream, and requests still open
    # after timeout_graceful_shutdown are cancelled
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S)  # type: ignore[arg-type]  # used as a float
    server = uvicorn.Server(config)
    # uvicorn re-raises a caught SIGTERM once it has shut down, so the default handler would end the
    # process by the signal (status -15); this one makes that, or a SIGTERM before uvicorn listens, exit 0
    signal.signal(signal.SIGTERM, _exit_cleanly)

    async def run() -> None:
        watch = asyncio.create_task(watch_parent())
        try:
            await server.serve()
        finally:
            watch.cancel()

    asyncio.run(run())


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main()
