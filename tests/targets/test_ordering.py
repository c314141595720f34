"""memory-resume keeps per sender→recipient order of first receipts, across a replay too.

The recipient goes away, messages pile up, and it comes back with its last offset while the sender keeps
sending during the replay: what it sees first of each message must follow the send order (a replayed
message it had already seen would be a duplicate, never a reorder).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import socketio

from targets.auth import sign
from tests.targets.helpers import SECRET, started

pytestmark = pytest.mark.integration


async def test_memory_resume_is_ordered_across_replays(tmp_path: Path) -> None:
    with started("memory-resume", tmp_path) as target:
        sender = socketio.AsyncClient(reconnection=False)
        await sender.connect(target.url, auth={"token": sign("alice", SECRET)}, transports=["websocket"],
                             wait_timeout=5)
        first_seen: list[int] = []
        last_offset: Any = None
        seq = 0

        async def send_many(count: int) -> None:
            nonlocal seq
            for _ in range(count):
                seq += 1
                reply = await sender.call("send", {"id": f"a>b#{seq}", "to": "bob", "seq": seq}, timeout=5)
                assert reply == {"ok": True}

        for _round in range(4):
            bob = socketio.AsyncClient(reconnection=False)

            async def on_msg(data: dict[str, Any], client: socketio.AsyncClient = bob) -> None:
                nonlocal last_offset
                if data["seq"] not in first_seen:
                    first_seen.append(data["seq"])
                last_offset = data["offset"]
                if data["seq"] % 3:  # ack only some: the rest stays pending and is replayed as duplicates
                    await client.emit("ack", {"offset": data["offset"]})

            bob.on("msg", on_msg)
            await sender_and_resume(bob, target.url, last_offset, send_many)
            await asyncio.sleep(0.3)
            await bob.disconnect()
            await send_many(40)  # while bob is away
        await sender.disconnect()
    assert first_seen == list(range(1, seq - 40 + 1)), first_seen  # in order, none lost (the last 40 went unread)


async def sender_and_resume(bob: socketio.AsyncClient, url: str, last_offset: Any, send_many: Any) -> None:
    """Bob reconnects with his cursor while the sender keeps sending (live messages race the replay)."""
    sending = asyncio.get_running_loop().create_task(send_many(40))
    await bob.connect(url, auth={"token": sign("bob", SECRET), "last_seen": last_offset}, transports=["websocket"],
                      wait_timeout=5)
    await sending
