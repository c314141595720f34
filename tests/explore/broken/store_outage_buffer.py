"""redis-store that keeps accepting sends while Redis is down: it buffers them in process memory, acks
``ok`` and writes them once Redis is back ("graceful degradation").

A store crash alone loses nothing (the buffer is written after it); a target restart alone loses nothing
(nothing is buffered while Redis is up, and a graceful stop tries to flush). Only the two together (the
target stopped while the store is down) lose acknowledged messages: no shipped scenario combines them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.exceptions

from targets import redis_store_app
from targets.redis_store_app import Inbox, store_then_ack

RETRY_S = 0.2
log = logging.getLogger("outage-buffer")
buffered: list[tuple[str, dict[str, Any]]] = []
state: dict[str, Any] = {"inbox": None, "task": None}


async def drain_buffer() -> None:
    inbox: Inbox | None = state["inbox"]
    while buffered and inbox is not None:
        to, message = buffered[0]
        try:
            offset = await inbox.add(to, message)
        except redis.exceptions.RedisError:
            return
        buffered.pop(0)
        if offset is not None:
            await inbox.deliver(to, message, offset)


async def retry_loop() -> None:
    while True:
        await asyncio.sleep(RETRY_S)
        await drain_buffer()


async def buffer_when_down(inbox: Inbox, to: str, message: dict[str, Any]) -> dict[str, Any]:
    state["inbox"] = inbox
    if state["task"] is None:
        state["task"] = asyncio.get_running_loop().create_task(retry_loop())
    if buffered:  # keep order behind what is already waiting
        buffered.append((to, message))
        return {"ok": True}
    reply = await store_then_ack(inbox, to, message)
    if reply.get("ok") is False and "store unavailable" in str(reply.get("error")):
        log.warning("store down: buffering the send in memory and acknowledging it")
        buffered.append((to, message))
        return {"ok": True}
    return reply


if __name__ == "__main__":
    redis_store_app.main(send_path=buffer_when_down, before_exit=drain_buffer)
