"""redis-store's room scripts against a real redis-server, one step at a time, so the races the live
server can only hit by chance are played in a chosen order: a join between a send's XADD and its owed
check, acks out of order, trimming, the per-member bound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from harness.run.store import RedisServer
from targets.redis_store_app import RoomStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    server = RedisServer(tmp_path)
    server.start()
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
        server.stop()


def message(sender: str, room: str, seq: int) -> dict[str, Any]:
    return {"id": f"{sender}>#{room}#{seq}", "from": sender, "seq": seq, "body": "", "room": room}


async def entry_ids(store: aioredis.Redis, room: str = "lobby") -> list[str]:
    return [str(entry[0]) for entry in await store.xrange(f"room:{{{room}}}") or []]


async def replayed(rooms: RoomStore, user: str, room: str) -> list[int]:
    return [m["seq"] async for _, m in rooms.replay(user, room)]


async def send(rooms: RoomStore, sender: str, room: str, seq: int) -> str:
    """A whole send as the server runs it (XADD, then the owed check); the message's stream id."""
    stream_id, full = await rooms.add(sender, room, message(sender, room, seq))
    assert stream_id is not None, f"refused: {full}"
    await rooms.owe(stream_id, sender, room)
    return stream_id


async def test_a_join_between_the_xadd_and_the_owed_check_is_owed_the_message(store: aioredis.Redis) -> None:
    rooms = RoomStore(store, limit=100)
    await rooms.join("bob", "lobby")
    stream_id, _ = await rooms.add("alice", "lobby", message("alice", "lobby", 1))
    assert stream_id is not None
    assert await rooms.join("carol", "lobby") is True  # the join runs while the send is in flight
    assert await rooms.owe(stream_id, "alice", "lobby") == ["carol"]  # bob's cursor already covers it
    assert await replayed(rooms, "carol", "lobby") == [1]
    assert await replayed(rooms, "bob", "lobby") == [1]
    assert await rooms.ack("carol", "lobby", stream_id) == 1
    assert await replayed(rooms, "carol", "lobby") == []  # owed, confirmed, gone
    assert await replayed(rooms, "bob", "lobby") == [1]  # bob has not confirmed it


async def test_a_late_joiner_gets_nothing_sent_before_and_everything_after(store: aioredis.Redis) -> None:
    rooms = RoomStore(store, limit=100)
    await rooms.join("bob", "lobby")
    await send(rooms, "alice", "lobby", 1)
    await rooms.join("dave", "lobby")
    await send(rooms, "alice", "lobby", 2)
    assert await replayed(rooms, "dave", "lobby") == [2]
    assert await replayed(rooms, "bob", "lobby") == [1, 2]
    assert await replayed(rooms, "alice", "lobby") == []  # not a member
    assert await rooms.ack("alice", "lobby", "1-0") == 0  # a non-member's ack changes nothing


async def test_joining_again_keeps_the_cursor_and_leaving_ends_everything(store: aioredis.Redis) -> None:
    rooms = RoomStore(store, limit=100)
    await rooms.join("bob", "lobby")
    await send(rooms, "alice", "lobby", 1)
    assert await rooms.join("bob", "lobby") is False  # the driver's rejoin after a reconnect
    assert await replayed(rooms, "bob", "lobby") == [1]  # what was sent while away is still there
    assert await rooms.rooms_of("bob") == ["lobby"]
    await rooms.leave("bob", "lobby")
    await send(rooms, "alice", "lobby", 2)
    assert await replayed(rooms, "bob", "lobby") == [] and await rooms.rooms_of("bob") == []
    await rooms.join("bob", "lobby")  # back as a new member: only what comes next
    await send(rooms, "alice", "lobby", 3)
    assert await replayed(rooms, "bob", "lobby") == [3]


async def test_the_cursor_moves_only_over_acks_without_a_gap(store: aioredis.Redis) -> None:
    rooms = RoomStore(store, limit=100)
    await rooms.join("bob", "lobby")
    ids = [await send(rooms, "alice", "lobby", seq) for seq in (1, 2, 3, 4)]
    await send(rooms, "bob", "lobby", 1)  # bob's own message: never his to confirm, never replayed to him
    ids.append(await send(rooms, "alice", "lobby", 5))
    for stream_id in (ids[1], ids[2], ids[4]):  # live overtook the replay: 2, 3, 5 confirmed, 1 and 4 not
        assert await rooms.ack("bob", "lobby", stream_id) == 1
    assert await replayed(rooms, "bob", "lobby") == [1, 4]
    assert await rooms.ack("bob", "lobby", ids[0]) == 1
    assert await replayed(rooms, "bob", "lobby") == [4]
    assert await rooms.ack("bob", "lobby", ids[3]) == 1
    assert await replayed(rooms, "bob", "lobby") == []
    assert await store.hget("cursor:{lobby}", "bob") == ids[4]  # past his own message too
    assert await store.hget("backlog:{lobby}", "bob") == "0"
    assert await rooms.ack("bob", "lobby", "99999999999999-0") == -1  # no such entry: not remembered
    assert await store.scard("ahead:{lobby}:bob") == 0


async def test_the_bound_counts_each_members_unconfirmed_messages_all_or_nothing(store: aioredis.Redis) -> None:
    rooms = RoomStore(store, limit=2)
    await rooms.join("bob", "lobby")
    await rooms.join("carol", "lobby")
    first = await send(rooms, "alice", "lobby", 1)
    await send(rooms, "alice", "lobby", 2)
    await rooms.ack("bob", "lobby", first)
    assert await rooms.add("alice", "lobby", message("alice", "lobby", 3)) == (None, "carol")  # carol is full
    assert await store.xlen("room:{lobby}") == 2  # refused: stored for no one
    await rooms.ack("carol", "lobby", first)
    assert (await rooms.add("alice", "lobby", message("alice", "lobby", 3)))[0] is not None
    assert await rooms.add("carol", "lobby", message("carol", "lobby", 1)) == (None, "bob")  # bob: 2 unconfirmed


async def test_an_entry_is_trimmed_only_once_every_member_is_past_it(store: aioredis.Redis) -> None:
    rooms = RoomStore(store, limit=100, trim_grace_ms=0)
    await rooms.join("bob", "lobby")
    await rooms.join("carol", "lobby")
    first = await send(rooms, "alice", "lobby", 1)
    await rooms.ack("bob", "lobby", first)
    second = await send(rooms, "alice", "lobby", 2)
    assert await entry_ids(store) == [first, second]  # carol has not confirmed 1
    await rooms.ack("carol", "lobby", first)
    third = await send(rooms, "alice", "lobby", 3)
    assert await entry_ids(store) == [second, third]  # 1 was past everyone
    assert await replayed(rooms, "carol", "lobby") == [2, 3] and await replayed(rooms, "bob", "lobby") == [2, 3]
    stream_id, _ = await rooms.add("alice", "lobby", message("alice", "lobby", 4))
    assert stream_id is not None
    await rooms.join("dave", "lobby")
    assert await rooms.owe(stream_id, "alice", "lobby") == ["dave"]
    for member in ("bob", "carol"):
        for entry_id in await entry_ids(store):
            await rooms.ack(member, "lobby", entry_id)
    fifth = await send(rooms, "alice", "lobby", 5)  # dave's cursor is past 4, but 4 is owed to him: kept
    assert await entry_ids(store) == [stream_id, fifth]
    assert await replayed(rooms, "dave", "lobby") == [4, 5]
