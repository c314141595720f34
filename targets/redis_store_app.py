"""The data-store answer: every message goes into a Redis stream per recipient before the sender's ack.

- send: ``XADD inbox:<recipient> * …`` → the stream id is the message's ``offset``; only then the sender
  gets ``{"ok": true}``. Store never reached (connection refused, no free connection) → ``{"ok": false}``
  (definitely not stored); a connection lost after the command was written, a timeout, any other store
  error → ``{"ok": null}`` (outcome unknown: it may have been stored; ``targets.common.store_failure``).
- live delivery is a bonus: emitted to the room ``user:<id>`` through python-socketio's AsyncRedisManager,
  so whichever instance holds the user's socket delivers it (several instances can serve at once).
- resume: on connect the client sends ``auth.last_seen`` (the last stream id it saw); the server joins
  the user's room first, then replays ``XRANGE inbox:<id> (last_seen +``. Joining first means a message
  added meanwhile arrives live *and* in the replay (a duplicate), never in neither (a loss).
- ack: the client acks each offset (``ack`` event); the server ``XDEL``s it from the user's own stream.
- bound: a stream holding ``--max-pending`` entries (unacked messages) takes no more: the send is refused
  with ``{"ok": false}``. Length check and XADD are one Lua script (atomic). Not ``XADD MAXLEN ~``: that
  would trim the oldest messages, already acknowledged to their senders, i.e. drop them silently.

Why Streams: ids are monotonic and stable (a client cursor stays valid while entries are deleted),
``XRANGE (id`` resumes exactly after a cursor, and XADD is one atomic command. At-least-once, unordered
(a live message can overtake the replay); acknowledged messages survive a restart of this process.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
import socketio

from targets.common import (
    XADD_UNLESS_FULL,
    PendingBound,
    after_connect,
    authenticate,
    make_parser,
    make_server,
    parse_args,
    read_send,
    serve,
    store_failure,
)

log = logging.getLogger("redis-store")
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
REPLAY_BATCH = 500

def _args() -> argparse.Namespace:
    parser = make_parser(__doc__ or "")
    parser.add_argument("--redis-url", required=True)
    return parse_args(__doc__ or "", parser)


@dataclass
class Inbox:
    """The store side of a send, so a variant can change *when* a message is stored and acknowledged
    (the shipped design stores first; the suite's deliberately broken variants do not)."""

    add: Callable[[str, dict[str, Any]], Awaitable[str | None]]
    """XADD the message to the recipient's stream unless it is full: its stream id, or None (refused)."""
    deliver: Callable[[str, dict[str, Any], str], Awaitable[None]]
    """Emit a stored message live to its recipient's room."""
    bound: PendingBound


SendPath = Callable[[Inbox, str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""(inbox, recipient, message) -> the sender's ack."""


async def store_then_ack(inbox: Inbox, to: str, message: dict[str, Any]) -> dict[str, Any]:
    """Stored in Redis before the sender hears ``ok``: an acknowledged message survives any crash."""
    try:
        offset = await inbox.add(to, message)
    except redis.exceptions.ConnectionError as exc:  # timeouts included: only "never sent" is a refusal
        ok, error = store_failure(exc)
        return {"ok": ok, "error": error}
    except redis.exceptions.RedisError as exc:
        return {"ok": None, "error": f"store error: {exc}"}
    if offset is None:
        return inbox.bound.refusal(message["from"], to)
    await inbox.deliver(to, message, offset)
    return {"ok": True}


def main(send_path: SendPath = store_then_ack,
         before_exit: Callable[[], Awaitable[None]] | None = None) -> None:
    args = _args()
    url = args.redis_url
    # A blocking pool: a burst of reconnects (a crowd coming back at once) waits for a connection instead of
    # failing with "Too many connections", which disconnected clients that then never came back.
    store = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=10, socket_timeout=2, socket_connect_timeout=2, decode_responses=True))
    xadd_unless_full = store.register_script(XADD_UNLESS_FULL)
    bound = PendingBound(args.max_pending, log)
    sio = make_server(args, client_manager=socketio.AsyncRedisManager(url))

    def inbox(user: str) -> str:
        return f"inbox:{user}"

    async def add(to: str, message: dict[str, Any]) -> str | None:
        flat = [part for pair in _encode(message).items() for part in pair]
        offset = await xadd_unless_full(keys=[inbox(to)], args=[bound.limit, *flat])
        return None if offset is None else str(offset)

    async def deliver(to: str, message: dict[str, Any], offset: str) -> None:
        await sio.emit("msg", {**message, "offset": offset}, room=f"user:{to}")

    store_side = Inbox(add, deliver, bound)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = await authenticate(sio, sid, auth, args.secret)
        last_seen = auth.get("last_seen") if isinstance(auth, dict) else None
        cursor = f"({last_seen}" if isinstance(last_seen, str) and STREAM_ID.match(last_seen) else "-"
        if last_seen is not None and cursor == "-":
            log.warning("ignoring malformed last_seen %r from %s", last_seen, user)

        async def join_then_replay() -> None:
            await sio.enter_room(sid, f"user:{user}")  # first: a message added from now on arrives live
            start = cursor
            while True:
                try:
                    raw = await store.xrange(inbox(user), min=start, max="+", count=REPLAY_BATCH)
                except redis.exceptions.RedisError as exc:
                    log.error("replay for %s failed (%s); disconnecting so the client retries", user, exc)
                    await sio.disconnect(sid)
                    return
                entries = [(str(i), {str(k): str(v) for k, v in (f or {}).items()}) for i, f in (raw or [])]
                for offset, fields in entries:
                    await sio.emit("msg", {**_decode(fields), "offset": offset, "resent": True}, to=sid)
                if len(entries) < REPLAY_BATCH:
                    return
                start = f"({entries[-1][0]}"

        after_connect(sio, sid, join_then_replay)

    @sio.on("ack")
    async def ack(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        user = (await sio.get_session(sid))["user"]
        offset = data.get("offset") if isinstance(data, dict) else None
        if not isinstance(offset, str) or not STREAM_ID.match(offset):
            log.warning("malformed ack from %s: %r", user, data)
            return {"ok": False, "error": "offset must be a stream id"}
        try:
            await store.xdel(inbox(user), offset)  # only ever this user's own stream
        except redis.exceptions.RedisError as exc:
            return {"ok": False, "error": f"store unavailable: {exc}"}
        return {"ok": True}

    @sio.on("send")
    async def send(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        checked = await read_send(sio, sid, data, log)
        if isinstance(checked, dict):
            return checked
        return await send_path(store_side, data["to"], checked[1])

    serve(sio, args, before_exit)


def _encode(message: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in message.items()}


def _decode(fields: dict[str, str]) -> dict[str, Any]:
    message: dict[str, Any] = dict(fields)
    for key in ("seq", "sent_ns"):
        if key in message:
            message[key] = int(message[key])
    return message


if __name__ == "__main__":
    main()
