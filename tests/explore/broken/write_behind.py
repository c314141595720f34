"""redis-store with a write-behind buffer: the sender hears ``ok`` *before* the message is in Redis.

Writes are queued in process memory and flushed every ``FLUSH_S``; a graceful stop (SIGTERM) flushes the
queue first, so a deploy (``restart_target``) or a store outage loses nothing. Only a process death at
the wrong moment (``kill_target`` while writes are queued) loses acknowledged messages: no shipped
scenario kills the target mid-traffic.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.exceptions

from targets import redis_store_app
from targets.redis_store_app import Inbox

FLUSH_S = 1.0
log = logging.getLogger("write-behind")
queued: list[tuple[str, dict[str, Any]]] = []
state: dict[str, Any] = {"inbox": None, "task": None}


async def flush() -> None:
    inbox: Inbox | None = state["inbox"]
    while queued and inbox is not None:
        to, message = queued[0]
        try:
            offset = await inbox.add(to, message)
        except redis.exceptions.RedisError as exc:
            log.warning("flush failed (%s); retrying", exc)
            return
        queued.pop(0)
        if offset is not None:
            await inbox.deliver(to, message, offset)


async def flusher() -> None:
    while True:
        await asyncio.sleep(FLUSH_S)
        await flush()


async def ack_then_store(inbox: Inbox, to: str, message: dict[str, Any]) -> dict[str, Any]:
    state["inbox"] = inbox
    if state["task"] is None:
        state["task"] = asyncio.get_running_loop().create_task(flusher())
    queued.append((to, message))
    return {"ok": True}


async def flush_until_empty() -> None:
    for _ in range(50):
        if not queued:
            return
        await flush()
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    redis_store_app.main(send_path=ack_then_store, before_exit=flush_until_empty)
