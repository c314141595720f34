"""The ackmap target's rooms: every member (not the sender) gets each room message at least once, also a
member who was offline when it was sent; a member who left gets nothing more; bad room names are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import socketio

from targets.auth import sign
from tests.targets.helpers import SECRET, started

pytestmark = pytest.mark.integration


async def _client(url: str, user: str, inbox: list[dict[str, Any]]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)

    async def on_msg(data: dict[str, Any]) -> bool:
        inbox.append(data)
        return True  # the ack the pending map waits for

    client.on("msg", on_msg)
    await client.connect(url, auth={"token": sign(user, SECRET)}, transports=["websocket"], wait_timeout=5)
    return client


async def _until(check: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)


async def test_a_room_message_reaches_every_member_once_even_one_offline(tmp_path: Path) -> None:
    with started("ackmap", tmp_path) as target:
        boxes: dict[str, list[dict[str, Any]]] = {u: [] for u in ("alice", "bob", "carol", "dave")}
        clients = {u: await _client(target.url, u, boxes[u]) for u in boxes}
        for user in ("alice", "bob", "carol"):
            assert await clients[user].call("join", {"room": "lobby"}, timeout=5) == {"ok": True}
        await clients["carol"].disconnect()  # still a member while away
        reply = await clients["alice"].call("send", {"id": "m1", "room": "lobby", "seq": 1}, timeout=5)
        assert reply == {"ok": True}
        clients["carol"] = await _client(target.url, "carol", boxes["carol"])  # comes back: the replay
        await _until(lambda: boxes["bob"] and boxes["carol"])
        assert [(m["id"], m["from"], m["room"]) for m in boxes["bob"]] == [("m1", "alice", "lobby")]
        assert [m["id"] for m in boxes["carol"]] == ["m1"] and boxes["carol"][0]["resent"] is True
        assert boxes["alice"] == [] and boxes["dave"] == []  # not the sender, not a non-member

        assert await clients["bob"].call("leave", {"room": "lobby"}, timeout=5) == {"ok": True}
        await clients["alice"].call("send", {"id": "m2", "room": "lobby", "seq": 2}, timeout=5)
        await _until(lambda: len(boxes["carol"]) == 2)
        assert [m["id"] for m in boxes["carol"]] == ["m1", "m2"] and [m["id"] for m in boxes["bob"]] == ["m1"]

        assert (await clients["dave"].call("join", {"room": "no spaces"}, timeout=5))["ok"] is False
        assert (await clients["dave"].call("send", {"id": "x", "seq": 1}, timeout=5))["ok"] is False
        for client in clients.values():
            await client.disconnect()
