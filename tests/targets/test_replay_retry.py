"""redis-store: a replay that meets a dead Redis is tried again, and never ends with a Socket.IO disconnect.

Seen in a room run with Redis SIGKILLed (AOF): a member reconnecting just after the restart hit a pooled
connection from before it ("Connection closed by server"), the server answered with ``sio.disconnect``,
and the python-socketio client, told the server meant it, never came back (78 receipts unseen). Here
Redis is down when the member reconnects and comes back a few seconds later, with its data (AOF).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import socketio

from harness.run.process import ManagedProcess, free_port, http_ok
from harness.run.store import RedisServer
from targets.auth import sign
from tests.targets.helpers import COMMANDS, SECRET, SECRET_ENV

pytestmark = pytest.mark.integration


async def test_a_member_whose_replay_fails_comes_back_and_gets_its_room_message(tmp_path: Path) -> None:
    store = RedisServer(tmp_path, persistence="always")
    port = free_port()
    target = ManagedProcess("redis-store", [*COMMANDS["redis-store"], "--port", str(port), "--redis-url", store.url],
                            tmp_path / "target.log", env={SECRET_ENV: SECRET})
    url = f"http://127.0.0.1:{port}"
    bob = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5)
    try:
        store.start()
        target.start()
        target.wait_ready(http_ok(f"{url}/healthz"), 20)
        alice = socketio.AsyncClient(reconnection=False)
        await alice.connect(url, auth={"token": sign("alice", SECRET)}, transports=["websocket"], wait_timeout=5)
        got: list[dict[str, Any]] = []
        reasons: list[str] = []
        bob.on("msg", lambda data: got.append(data))
        bob.on("disconnect", lambda *reason: reasons.append(str(reason[0]) if reason else "?"))
        await bob.connect(url, auth={"token": sign("bob", SECRET)}, transports=["websocket"], wait_timeout=5)
        assert await bob.call("join", {"room": "lobby"}, timeout=5) == {"ok": True}
        await bob.disconnect()
        assert await alice.call("send", {"id": "m1", "room": "lobby", "seq": 1}, timeout=5) == {"ok": True}
        await alice.disconnect()

        store.kill()
        reasons.clear()
        await bob.connect(url, auth={"token": sign("bob", SECRET)}, transports=["websocket"], wait_timeout=5)
        await asyncio.sleep(1.5)  # a replay attempt or two fail while Redis is down
        store.start()  # same port, same AOF
        for _ in range(300):
            if got:
                break
            await asyncio.sleep(0.05)
        log = (tmp_path / "target.log").read_text()
        assert [m["id"] for m in got] == ["m1"], log[-2000:]
        assert "replay for bob failed (attempt 1 of" in log
        assert bob.reason.SERVER_DISCONNECT not in reasons  # never told to stay away
    finally:
        if bob.connected:
            await bob.disconnect()
        target.stop()
        store.stop()
