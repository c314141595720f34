"""Rooms on the Socket.IO targets that keep membership per user (ackmap, redis-store): every member (not
the sender) gets each room message at least once, also a member who was offline when it was sent; a
member who left gets nothing more; a late joiner nothing sent before its join; a non-member never; bad
room names are refused. redis-store: a room message acknowledged before a restart of the target still
reaches every member after it."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import socketio

from harness.run.process import http_ok
from targets.auth import sign
from tests.targets.helpers import SECRET, started

pytestmark = pytest.mark.integration

PER_USER = ["ackmap", "redis-store"]


async def _client(url: str, user: str, inbox: list[dict[str, Any]],
                  confirm: Callable[[dict[str, Any]], bool] = lambda m: True) -> socketio.AsyncClient:
    """A member that confirms what ``confirm`` says: the emit's ack (ackmap) and ``ack {offset}`` (redis-store)."""
    client = socketio.AsyncClient(reconnection=False)

    async def on_msg(data: dict[str, Any]) -> bool | None:
        inbox.append(data)
        if not confirm(data):
            return None
        if "offset" in data:
            await client.emit("ack", {"offset": data["offset"]})
        return True

    client.on("msg", on_msg)
    await client.connect(url, auth={"token": sign(user, SECRET)}, transports=["websocket"], wait_timeout=5)
    return client


async def _until(check: Callable[[], Any], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)


def ids(box: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in box]


@pytest.mark.parametrize("name", PER_USER)
async def test_a_room_message_reaches_every_member_once_even_one_offline(name: str, tmp_path: Path) -> None:
    with started(name, tmp_path) as target:
        boxes: dict[str, list[dict[str, Any]]] = {u: [] for u in ("alice", "bob", "carol", "dave", "erin")}
        clients = {u: await _client(target.url, u, boxes[u]) for u in boxes}
        for user in ("alice", "bob", "carol"):
            assert await clients[user].call("join", {"room": "lobby"}, timeout=5) == {"ok": True}
        await clients["carol"].disconnect()  # still a member while away
        reply = await clients["alice"].call("send", {"id": "m1", "room": "lobby", "seq": 1}, timeout=5)
        assert reply == {"ok": True}
        clients["carol"] = await _client(target.url, "carol", boxes["carol"])  # comes back: the replay
        await _until(lambda: boxes["bob"] and boxes["carol"])
        assert [(m["id"], m["from"], m["room"]) for m in boxes["bob"]] == [("m1", "alice", "lobby")]
        assert ids(boxes["carol"]) == ["m1"] and boxes["carol"][0]["resent"] is True
        assert boxes["alice"] == [] and boxes["dave"] == []  # not the sender, not a non-member

        assert await clients["erin"].call("join", {"room": "lobby"}, timeout=5) == {"ok": True}  # late joiner
        assert await clients["bob"].call("leave", {"room": "lobby"}, timeout=5) == {"ok": True}
        await clients["alice"].call("send", {"id": "m2", "room": "lobby", "seq": 2}, timeout=5)
        await _until(lambda: len(boxes["carol"]) == 2 and boxes["erin"])
        await asyncio.sleep(0.3)  # room for a stray copy to show up
        assert ids(boxes["carol"]) == ["m1", "m2"] and ids(boxes["bob"]) == ["m1"] and ids(boxes["erin"]) == ["m2"]
        assert boxes["alice"] == [] and boxes["dave"] == []

        assert (await clients["dave"].call("join", {"room": "no spaces"}, timeout=5))["ok"] is False
        assert (await clients["dave"].call("join", {"room": "x" * 65}, timeout=5))["ok"] is False
        assert (await clients["dave"].call("send", {"id": "x", "seq": 1}, timeout=5))["ok"] is False
        for client in clients.values():
            await client.disconnect()


@pytest.mark.parametrize("name", PER_USER)
async def test_a_rejoin_after_a_reconnect_keeps_what_was_sent_while_away(name: str, tmp_path: Path) -> None:
    """The harness drivers re-send ``join`` on every reconnect: that must not reset the member's place."""
    with started(name, tmp_path) as target:
        alice_box: list[dict[str, Any]] = []
        bob_box: list[dict[str, Any]] = []
        alice = await _client(target.url, "alice", alice_box)
        bob = await _client(target.url, "bob", bob_box)
        assert await bob.call("join", {"room": "lobby"}, timeout=5) == {"ok": True}
        await bob.disconnect()
        for seq in (1, 2, 3):
            assert await alice.call("send", {"id": f"m{seq}", "room": "lobby", "seq": seq}, timeout=5) == {"ok": True}
        bob = await _client(target.url, "bob", bob_box)
        assert await bob.call("join", {"room": "lobby"}, timeout=5) == {"ok": True}
        await _until(lambda: len(bob_box) >= 3)
        await asyncio.sleep(0.3)
        assert sorted(ids(bob_box)) == ["m1", "m2", "m3"]
        await alice.disconnect()
        await bob.disconnect()


async def test_redis_store_room_messages_acked_before_a_restart_reach_every_member_after_it(tmp_path: Path) -> None:
    with started("redis-store", tmp_path) as target:
        boxes: dict[str, list[dict[str, Any]]] = {u: [] for u in ("alice", "bob", "carol", "dave")}
        # bob confirms nothing (his acks lost): what he saw before the restart comes again after it
        def confirms(user: str) -> Callable[[dict[str, Any]], bool]:
            return lambda message: user != "bob"

        clients = {u: await _client(target.url, u, boxes[u], confirm=confirms(u)) for u in boxes}
        for user in ("alice", "bob", "carol", "dave"):
            assert await clients[user].call("join", {"room": "lobby"}, timeout=5) == {"ok": True}
        await clients["carol"].disconnect()  # offline through the restart
        for seq in (1, 2, 3):
            assert await clients["alice"].call("send", {"id": f"m{seq}", "room": "lobby", "seq": seq},
                                               timeout=5) == {"ok": True}
        await _until(lambda: len(boxes["bob"]) == 3 and len(boxes["dave"]) == 3)
        assert ids(boxes["dave"]) == ["m1", "m2", "m3"] and ids(boxes["bob"]) == ["m1", "m2", "m3"]
        await asyncio.sleep(0.3)  # dave's acks reach the store

        target.proc.stop(signal.SIGKILL)  # no graceful anything
        for client in clients.values():
            if client.connected:
                await client.disconnect()
        target.proc.start()
        target.proc.wait_ready(http_ok(f"{target.url}/healthz"), 20)

        before = {u: len(boxes[u]) for u in boxes}
        clients = {u: await _client(target.url, u, boxes[u]) for u in ("bob", "carol", "dave")}
        await _until(lambda: len(boxes["bob"]) == before["bob"] + 3 and len(boxes["carol"]) == 3)
        await asyncio.sleep(0.5)
        assert ids(boxes["carol"]) == ["m1", "m2", "m3"]  # offline through it: all of it
        assert ids(boxes["bob"])[3:] == ["m1", "m2", "m3"]  # never confirmed: all of it again
        assert ids(boxes["dave"])[3:] == []  # confirmed before the restart: his cursor held
        assert boxes["alice"] == []
        for client in clients.values():
            await client.disconnect()
