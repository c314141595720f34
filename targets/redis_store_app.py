"""The data-store answer: every message goes into a Redis stream per recipient before the sender's ack.

- send: ``XADD inbox:<recipient> * …`` → the stream id is the message's ``offset``; only then the sender
  gets ``{"ok": true}``. Store never reached (connection refused, no free connection) → ``{"ok": false}``
  (definitely not stored); a connection lost after the command was written, a timeout, any other store
  error → ``{"ok": null}`` (outcome unknown: it may have been stored; ``targets.common.store_failure``).
- live delivery is a bonus: emitted to the room ``user:<id>`` through python-socketio's AsyncRedisManager,
  so whichever instance holds the user's socket delivers it (several instances can serve at once).
- resume: on connect the client sends ``auth.last_seen`` (the last stream id it saw); the server joins
  the user's room first, then replays ``XRANGE inbox:<id> (last_seen +``. Joining first means a message
  added meanwhile arrives live *and* in the replay (a duplicate), never in neither (a loss). A replay that
  hits a store error is tried again from the start (``REPLAY_ATTEMPTS``), then the websocket is dropped
  (not a Socket.IO disconnect, after which a python-socketio client would never come back).
- ack: the client acks each offset (``ack`` event); the server ``XDEL``s it from the user's own stream.
- bound: a stream holding ``--max-pending`` entries (unacked messages) takes no more: the send is refused
  with ``{"ok": false}``. Length check and XADD are one Lua script (atomic). Not ``XADD MAXLEN ~``: that
  would trim the oldest messages, already acknowledged to their senders, i.e. drop them silently.

Why Streams: ids are monotonic and stable (a client cursor stays valid while entries are deleted),
``XRANGE (id`` resumes exactly after a cursor, and XADD is one atomic command. At-least-once, unordered
(a live message can overtake the replay); acknowledged messages survive a restart of this process.

Rooms (``RoomStore`` below: keys and scripts, all in Redis, so membership is per user and survives a
restart of this process, and of Redis with AOF, like the direct messages):

- ``join {room}``: the socket enters the Socket.IO room ``room:<name>`` *first*, then one script makes the
  user a member with a cursor at the room's last stream id (a late joiner gets nothing sent before its
  join); joining again (the driver re-sends joins after each reconnect) keeps the cursor, so what was
  sent while the member was away is replayed, never skipped.
- ``send {id, room, seq}``: one script checks every other member's backlog (all or nothing against
  ``--max-pending``) and ``XADD``s once to ``room:{name}``; the message goes live to the Socket.IO room,
  then a second script finds the members whose join ran *after* that XADD (their cursor is already past
  it) and owes it to each of them (a set per member, pushed live at once); only then ``{"ok": true}``.
  So a member whose join was answered before the send's ack was *sent* gets it: the join/send race
  leaves only copies that may or may not arrive (a join racing the send), never a loss.
- delivery offset ``<room>/<stream id>``; the client's ``ack`` advances the member's cursor over
  contiguously acked ids (acks out of order wait in a per-member set), so a cursor never passes a
  message the member has not confirmed.
- connect: the socket enters the Socket.IO room of each of the user's rooms, then replays what is owed
  and ``XRANGE (cursor +`` of each room (its own messages left out), as for the inbox: a message added
  meanwhile comes live *and* replayed (a duplicate), never in neither.
- ``leave {room}``: the socket leaves the Socket.IO room first, then the membership and its cursor go.
- trimming: a room entry is deleted (``XTRIM MINID``, at each send) only once every member's cursor and
  owed set are past it *and* it is older than ``ROOM_TRIM_GRACE_MS`` (a send still between its XADD and
  its owed check keeps its entry).
At-least-once for every member, unordered (live can overtake a replay, as for direct messages).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
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
    drop_transport,
    make_parser,
    make_server,
    parse_args,
    read_send,
    room_of,
    serve,
    store_failure,
)

log = logging.getLogger("redis-store")
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
REPLAY_BATCH = 500
REPLAY_ATTEMPTS = 10
REPLAY_RETRY_S = 0.5
ROOM_TRIM_GRACE_MS = 60_000
"""A room entry younger than this is never trimmed: a send between its XADD and its owed check (a few
round trips, each bounded by the 2 s socket timeout) still needs it for the members who joined meanwhile."""

_LUA_IDS = """
local function parse(id) local ms, sq = string.match(id, '^(%d+)-(%d+)$'); return tonumber(ms), tonumber(sq) end
local function before(a, b)
  local am, as = parse(a); local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local function field(fields, name)
  for i = 1, #fields, 2 do if fields[i] == name then return fields[i + 1] end end
end
"""

ROOM_JOIN = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local last = redis.call('GET', KEYS[4]) or '0-0'
redis.call('HSET', KEYS[1], ARGV[1], last)
redis.call('HSET', KEYS[2], ARGV[1], last)
redis.call('HSET', KEYS[3], ARGV[1], 0)
redis.call('SADD', KEYS[5], ARGV[2])
return 1
"""
"""KEYS cursor, joined, backlog, last, rooms-of-user; ARGV user, room. 1 joined, 0 already a member (cursor kept)."""

ROOM_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('SREM', KEYS[6], ARGV[2])
return 1
"""
"""KEYS cursor, joined, backlog, owed, ahead, rooms-of-user; ARGV user, room."""

ROOM_SEND = _LUA_IDS + """
local sender, limit = ARGV[1], tonumber(ARGV[3])
local counts = redis.call('HGETALL', KEYS[4])
for i = 1, #counts, 2 do
  if counts[i] ~= sender and tonumber(counts[i + 1]) >= limit then return {'', counts[i]} end
end
local now = redis.call('TIME')
local low = string.format('%d-0', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[4]))
local cursors = redis.call('HGETALL', KEYS[3])
for i = 1, #cursors, 2 do
  local ms, sq = parse(cursors[i + 1])
  local past = string.format('%d-%d', ms, sq + 1)  -- MINID keeps ids >= it: the cursor's own entry goes
  if before(past, low) then low = past end
  for _, owed in ipairs(redis.call('SMEMBERS', 'owed:{' .. ARGV[2] .. '}:' .. cursors[i])) do
    if before(owed, low) then low = owed end
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', low)
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
redis.call('SET', KEYS[2], id)
for i = 1, #counts, 2 do
  if counts[i] ~= sender then redis.call('HINCRBY', KEYS[4], counts[i], 1) end
end
return {id}
"""
"""KEYS room stream, last, cursor, backlog; ARGV sender, room, limit, grace ms, fields…
``{id}`` stored, or ``{'', member}`` refused (that member's backlog is full; nothing stored)."""

ROOM_OWE = _LUA_IDS + """
local joined = redis.call('HGETALL', KEYS[1])
local owed = {}
for i = 1, #joined, 2 do
  if joined[i] ~= ARGV[2] and not before(joined[i + 1], ARGV[1]) then
    if redis.call('SADD', 'owed:{' .. ARGV[3] .. '}:' .. joined[i], ARGV[1]) == 1 then
      redis.call('HINCRBY', KEYS[2], joined[i], 1)
    end
    owed[#owed + 1] = joined[i]
  end
end
return owed
"""
"""KEYS joined, backlog; ARGV id, sender, room. The members whose join ran after the XADD of ``id``."""

ROOM_ACK = _LUA_IDS + """
local user, id = ARGV[1], ARGV[2]
local cur = redis.call('HGET', KEYS[1], user)
if not cur then return 0 end
if redis.call('SREM', KEYS[2], id) == 1 then
  redis.call('HINCRBY', KEYS[4], user, -1)
  return 1
end
if not before(cur, id) then return 1 end
if #redis.call('XRANGE', KEYS[5], id, id) == 0 then return -1 end
redis.call('SADD', KEYS[3], id)
local passed = 0
while true do
  local nxt = redis.call('XRANGE', KEYS[5], '(' .. cur, '+', 'COUNT', 1)
  if #nxt == 0 then break end
  local mine = field(nxt[1][2], 'from') == user
  if redis.call('SREM', KEYS[3], nxt[1][1]) == 1 then
    if not mine then passed = passed + 1 end
  elseif not mine then
    break
  end
  cur = nxt[1][1]
end
redis.call('HSET', KEYS[1], user, cur)
if passed > 0 then redis.call('HINCRBY', KEYS[4], user, -passed) end
return 1
"""
"""KEYS cursor, owed, ahead, backlog, room stream; ARGV user, id. 1 done, 0 not a member, -1 no such entry.
The cursor moves only over ids acked without a gap (or the member's own messages): acks arrive out of
order (live overtakes replay), and a cursor past an unconfirmed message would lose it."""

ROOM_REPLAY = _LUA_IDS + """
local user = ARGV[1]
local cur = redis.call('HGET', KEYS[1], user)
if not cur then return false end
local out = {}
local start = ARGV[2]
if start == '' then
  for _, owed in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    local entry = redis.call('XRANGE', KEYS[2], owed, owed)
    if #entry > 0 then out[#out + 1] = entry[1] end
  end
  start = cur
end
local entries = redis.call('XRANGE', KEYS[2], '(' .. start, '+', 'COUNT', tonumber(ARGV[3]))
local last = start
for _, entry in ipairs(entries) do
  last = entry[1]
  if field(entry[2], 'from') ~= user and redis.call('SISMEMBER', KEYS[3], entry[1]) == 0 then
    out[#out + 1] = entry
  end
end
return {#entries, last, out}
"""
"""KEYS cursor, room stream, ahead, owed; ARGV user, start ('' = the cursor, owed entries first), count.
nil if not a member (left meanwhile: checked in the same step as the read); else {read, last id, entries}."""

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


class RoomStore:
    """Room membership, cursors and streams in Redis (see the module docstring); every step one script."""

    def __init__(self, store: aioredis.Redis, limit: int, trim_grace_ms: int = ROOM_TRIM_GRACE_MS) -> None:
        self.limit = limit
        self.trim_grace_ms = trim_grace_ms
        self._join = store.register_script(ROOM_JOIN)
        self._leave = store.register_script(ROOM_LEAVE)
        self._send = store.register_script(ROOM_SEND)
        self._owe = store.register_script(ROOM_OWE)
        self._ack = store.register_script(ROOM_ACK)
        self._replay = store.register_script(ROOM_REPLAY)
        self._store = store

    @staticmethod
    def keys(room: str, user: str = "") -> dict[str, str]:
        # braces: not allowed in a room name (ROOM_NAME), so room "a" with user "b:c" never meets room "a:b"
        return {name: f"{name}:{{{room}}}" for name in ("room", "last", "cursor", "joined", "backlog")} | {
            "owed": f"owed:{{{room}}}:{user}", "ahead": f"ahead:{{{room}}}:{user}", "rooms": f"rooms:{user}"}

    async def join(self, user: str, room: str) -> bool:
        """Make ``user`` a member (cursor at the room's last id); False if it already was (cursor kept)."""
        k = self.keys(room, user)
        return bool(await self._join(keys=[k["cursor"], k["joined"], k["backlog"], k["last"], k["rooms"]],
                                     args=[user, room]))

    async def leave(self, user: str, room: str) -> None:
        k = self.keys(room, user)
        await self._leave(keys=[k["cursor"], k["joined"], k["backlog"], k["owed"], k["ahead"], k["rooms"]],
                          args=[user, room])

    async def rooms_of(self, user: str) -> list[str]:
        return sorted(str(r) for r in await self._store.smembers(f"rooms:{user}"))

    async def add(self, sender: str, room: str, message: dict[str, Any]) -> tuple[str | None, str | None]:
        """XADD to the room unless a member's backlog is full: ``(stream id, None)`` or ``(None, that member)``."""
        k = self.keys(room)
        flat = [part for pair in _encode(message).items() for part in pair]
        reply = await self._send(keys=[k["room"], k["last"], k["cursor"], k["backlog"]],
                                 args=[sender, room, self.limit, self.trim_grace_ms, *flat])
        return (str(reply[0]), None) if reply[0] else (None, str(reply[1]))

    async def owe(self, stream_id: str, sender: str, room: str) -> list[str]:
        """The members whose join ran after this message's XADD: it is now owed to each of them."""
        k = self.keys(room)
        return [str(u) for u in await self._owe(keys=[k["joined"], k["backlog"]], args=[stream_id, sender, room])]

    async def ack(self, user: str, room: str, stream_id: str) -> int:
        k = self.keys(room, user)
        return int(await self._ack(keys=[k["cursor"], k["owed"], k["ahead"], k["backlog"], k["room"]],
                                   args=[user, stream_id]))

    async def replay(self, user: str, room: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """What ``user`` is still owed in ``room`` and everything after its cursor but its own messages."""
        k = self.keys(room, user)
        start = ""
        while True:
            reply = await self._replay(keys=[k["cursor"], k["room"], k["ahead"], k["owed"]],
                                       args=[user, start, REPLAY_BATCH])
            if reply is None:
                return  # no longer a member
            read, last, entries = reply
            for stream_id, fields in entries:
                flat = [str(x) for x in fields]
                yield f"{room}/{stream_id}", _decode(dict(zip(flat[::2], flat[1::2], strict=True)))
            if int(read) < REPLAY_BATCH:
                return
            start = str(last)


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

    rooms = RoomStore(store, bound.limit)

    async def replay(sid: str, user: str, cursor: str) -> None:
        """The inbox after ``cursor``, then each room's owed messages and everything after the member's cursor;
        the socket enters each room first, so a message stored meanwhile comes live too (a duplicate at worst).
        Safe to run again from the start after a store error (more duplicates, never a gap)."""
        member_of = await rooms.rooms_of(user)
        for room in member_of:
            await sio.enter_room(sid, f"room:{room}")
        start = cursor
        while True:
            raw = await store.xrange(inbox(user), min=start, max="+", count=REPLAY_BATCH)
            entries = [(str(i), {str(k): str(v) for k, v in (f or {}).items()}) for i, f in (raw or [])]
            for offset, fields in entries:
                await sio.emit("msg", {**_decode(fields), "offset": offset, "resent": True}, to=sid)
            if len(entries) < REPLAY_BATCH:
                break
            start = f"({entries[-1][0]}"
        for room in member_of:
            async for offset, message in rooms.replay(user, room):
                await sio.emit("msg", {**message, "offset": offset, "resent": True}, to=sid)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = await authenticate(sio, sid, auth, args.secret)
        last_seen = auth.get("last_seen") if isinstance(auth, dict) else None
        cursor = f"({last_seen}" if isinstance(last_seen, str) and STREAM_ID.match(last_seen) else "-"
        if last_seen is not None and cursor == "-" and not (isinstance(last_seen, str) and "/" in last_seen):
            log.warning("ignoring malformed last_seen %r from %s", last_seen, user)  # a room offset: from the start

        async def join_then_replay() -> None:
            await sio.enter_room(sid, f"user:{user}")  # first: a message added from now on arrives live
            for attempt in range(1, REPLAY_ATTEMPTS + 1):
                try:
                    await replay(sid, user, cursor)
                    return
                except redis.exceptions.RedisError as exc:  # e.g. a pooled connection from before a Redis restart
                    log.warning("replay for %s failed (attempt %d of %d): %s", user, attempt, REPLAY_ATTEMPTS, exc)
                if not sio.manager.is_connected(sid, "/"):
                    return
                await asyncio.sleep(REPLAY_RETRY_S)
            log.error("replay for %s failed %d times; dropping the connection so the client reconnects", user,
                      REPLAY_ATTEMPTS)
            await drop_transport(sio, sid)

        after_connect(sio, sid, join_then_replay)

    @sio.on("ack")
    async def ack(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        user = (await sio.get_session(sid))["user"]
        offset = data.get("offset") if isinstance(data, dict) else None
        room, _, stream_id = offset.rpartition("/") if isinstance(offset, str) else ("", "", "")
        if not STREAM_ID.match(stream_id) or (room and room_of({"room": room}) is None):
            log.warning("malformed ack from %s: %r", user, data)
            return {"ok": False, "error": "offset must be a stream id (or room/stream id)"}
        try:
            if room:
                if await rooms.ack(user, room, stream_id) < 0:
                    return {"ok": False, "error": "no such message in that room"}
            else:
                await store.xdel(inbox(user), stream_id)  # only ever this user's own stream
        except redis.exceptions.RedisError as exc:
            return {"ok": False, "error": f"store unavailable: {exc}"}
        return {"ok": True}

    async def membership(sid: str, data: Any, joining: bool) -> dict[str, Any]:
        room = room_of(data)
        if room is None:
            return {"ok": False, "error": "room must be a name of 1-64 letters, digits, _ . : -"}
        user = (await sio.get_session(sid))["user"]
        # join: into the Socket.IO room before the membership exists (a message stored after it is due and
        # must find the socket); leave: out of it before the membership goes (nothing live after the answer)
        await (sio.enter_room if joining else sio.leave_room)(sid, f"room:{room}")
        try:
            await (rooms.join if joining else rooms.leave)(user, room)
        except redis.exceptions.RedisError as exc:
            ok, error = store_failure(exc) if isinstance(exc, redis.exceptions.ConnectionError) \
                else (None, f"store error: {exc}")
            if ok is False:  # definitely not changed: put the socket back where the membership says
                await (sio.leave_room if joining else sio.enter_room)(sid, f"room:{room}")
            return {"ok": ok, "error": error}
        return {"ok": True}

    @sio.on("join")
    async def join(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        return await membership(sid, data, joining=True)

    @sio.on("leave")
    async def leave(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        return await membership(sid, data, joining=False)

    async def send_to_room(sid: str, message: dict[str, Any]) -> dict[str, Any]:
        """Stored once in the room's stream, live to the room, owed to whoever joined meanwhile, then ok."""
        room = message["room"]
        if room_of({"room": room}) is None:
            return {"ok": False, "error": "room must be a name of 1-64 letters, digits, _ . : -"}
        try:
            stream_id, full = await rooms.add(message["from"], room, message)
        except redis.exceptions.ConnectionError as exc:
            ok, error = store_failure(exc)
            return {"ok": ok, "error": error}
        except redis.exceptions.RedisError as exc:
            return {"ok": None, "error": f"store error: {exc}"}
        if stream_id is None:
            return bound.refusal(message["from"], f"{full} (room {room})")
        live = {**message, "offset": f"{room}/{stream_id}"}
        await sio.emit("msg", live, room=f"room:{room}", skip_sid=sid)
        try:
            latecomers = await rooms.owe(stream_id, message["from"], room)
        except redis.exceptions.RedisError as exc:  # stored, but who joined meanwhile is not recorded
            return {"ok": None, "error": f"stored; members who joined meanwhile unknown: {exc}"}
        for user in latecomers:
            await sio.emit("msg", live, room=f"user:{user}")
        return {"ok": True}

    @sio.on("send")
    async def send(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        checked = await read_send(sio, sid, data, log, rooms=True)
        if isinstance(checked, dict):
            return checked
        if "room" in checked[1]:
            return await send_to_room(sid, checked[1])
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
