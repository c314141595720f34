"""The bound on what a target keeps for one recipient (``--max-pending``, default ``MAX_PENDING``).

A recipient who never connects must not grow a target without limit. Past the bound a send is refused
with an error ack (the ledger records ``fail``), counted and logged; nothing already accepted is dropped,
and the recipient, once connected, gets exactly what was accepted.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import socketio

from targets.auth import sign
from targets.common import MAX_PENDING
from tests.targets.helpers import SECRET, started

pytestmark = pytest.mark.integration

BOUND = 20
EXTRA = 5


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


class Client:
    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox: list[dict[str, Any]] = []
        self.sio.on("msg", self._on_msg)

    async def _on_msg(self, data: dict[str, Any]) -> bool:
        self.inbox.append(data)
        if "offset" in data:  # memory-resume, redis-store: the client acks offsets
            await self.sio.emit("ack", {"offset": data["offset"]})
        return True  # ackmap: the emit's callback confirms it

    async def connect(self) -> None:
        await self.sio.connect(self.url, auth={"token": sign(self.name, SECRET)}, transports=["websocket"],
                               wait_timeout=5)

    async def send(self, to: str, seq: int, body: str = "") -> Any:
        return await self.sio.call("send", {"id": f"{self.name}>{to}#{seq}", "to": to, "seq": seq, "body": body},
                                   timeout=10)


def test_the_default_bound_is_documented() -> None:
    assert MAX_PENDING == 10_000


@pytest.mark.parametrize("name", ["ackmap", "memory-resume", "redis-store"])
async def test_sends_past_the_bound_are_refused_and_nothing_accepted_is_dropped(name: str, tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    absent = f"absent-{tag}"
    with started(name, tmp_path, "--max-pending", str(BOUND)) as target:
        sender = Client(target.url, f"sender-{tag}")
        await sender.connect()
        replies = [await sender.send(absent, seq) for seq in range(1, BOUND + EXTRA + 1)]
        assert replies[:BOUND] == [{"ok": True}] * BOUND
        for reply in replies[BOUND:]:
            assert reply["ok"] is False and f"backlog is full ({BOUND} messages pending)" in reply["error"]
        assert await sender.send(f"other-{tag}", 1) == {"ok": True}  # the bound is per recipient
        if target.store_url:
            with redis.Redis.from_url(target.store_url) as store:
                assert store.xlen(f"inbox:{absent}") == BOUND
        log = target.log()
        assert f"refused send from sender-{tag} to {absent}" in log and f"{EXTRA} sends refused so far" in log

        recipient = Client(target.url, absent)  # finally connects: exactly the accepted ones, acked as they come
        await recipient.connect()
        for _ in range(250):
            if len(recipient.inbox) >= BOUND:
                break
            await asyncio.sleep(0.02)
        assert sorted(m["seq"] for m in recipient.inbox) == list(range(1, BOUND + 1))
        await asyncio.sleep(0.3)  # the acks land: the backlog is empty again, so sends are taken again
        assert await sender.send(absent, 100) == {"ok": True}
        await recipient.sio.disconnect()
        await sender.sio.disconnect()


@pytest.mark.parametrize("name", ["ackmap", "memory-resume"])
async def test_memory_stays_bounded_for_a_recipient_who_never_connects(name: str, tmp_path: Path) -> None:
    # 800 sends of 60 KB to a user who never connects grew these targets by 46 MB before the bound
    bound, sends, body = 50, 800, "x" * 60_000
    with started(name, tmp_path, "--max-pending", str(bound)) as target:
        sender = Client(target.url, "sender")
        await sender.connect()
        for seq in range(1, 41):  # warm up allocator and buffers below the bound
            assert (await sender.send(f"warm-{seq}", seq, body))["ok"] is True
        before = rss_kib(target.proc.pid or 0)
        refused = 0
        for seq in range(1, sends + 1):
            refused += (await sender.send("never", seq, body))["ok"] is False
        grown_mib = (rss_kib(target.proc.pid or 0) - before) / 1024
        await sender.sio.disconnect()
    print(f"\n{name}: {sends} x 60 KB to a never-connecting user, bound {bound}: RSS +{grown_mib:.1f} MiB, "
          f"{refused} refused")
    assert refused == sends - bound
    assert grown_mib < 20


def test_the_sse_target_refuses_past_the_bound(tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    sender, absent = f"sender-{tag}", f"absent-{tag}"
    with started("sse", tmp_path, "--max-pending", str(BOUND)) as target:
        headers = {"Authorization": f"Bearer {sign(sender, SECRET)}"}
        with httpx.Client(base_url=target.url, headers=headers, timeout=5) as http:
            replies = [http.post("/send", json={"id": f"m{seq}", "to": absent, "seq": seq})
                       for seq in range(1, BOUND + EXTRA + 1)]
        assert [r.json() for r in replies[:BOUND]] == [{"ok": True}] * BOUND
        for reply in replies[BOUND:]:
            assert reply.status_code == 507 and reply.json()["ok"] is False
            assert f"backlog is full ({BOUND} messages pending)" in reply.json()["error"]
        assert target.store_url is not None
        with redis.Redis.from_url(target.store_url) as store:
            assert store.xlen(f"inbox:{absent}") == BOUND
        assert f"{EXTRA} sends refused so far" in target.log()


