"""A pub/sub server with its publish and subscribe sides on separate ports, written for this example.

Subscribe port: ``GET /subscribe?after=N`` (``Authorization: Bearer <token>``) answers a stream of JSON lines,
``{"offset": n, "body": {...}}`` per message for the caller, and ``{}`` every 0.5 s as a keepalive.
Publish port: ``POST /publish`` ``{"to": "<user>", "body": {...}}`` answers ``{"ok": true}`` once taken.
``GET /healthz`` on both. Bodies are opaque: the server relays them as given.

Modes (``--mode``):

- ``log`` (default): every message kept per recipient and numbered; a subscribe replays what came after
  its ``after`` offset and drops what that offset acknowledges. At-least-once.
- ``live``: handed to the recipient's current subscription only, nothing kept, acked all the same: whatever
  goes out while the subscriber's link is dead is gone.

Identity: ``<user>.<hex HMAC-SHA256(secret, user)>``, secret from HARNESS_TARGET_SECRET. Never imports the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
from collections import defaultdict
from typing import Any

from aiohttp import web

SECRET = os.environ.get("HARNESS_TARGET_SECRET", "")
KEEPALIVE_S = 0.5


class Hub:
    """Per-recipient logs and each user's current subscription (a queue its stream handler drains)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.kept: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        self.last: dict[str, int] = defaultdict(int)
        self.subscribers: dict[str, asyncio.Queue[tuple[int, dict[str, Any]] | None]] = {}

    def publish(self, to: str, body: dict[str, Any]) -> None:
        self.last[to] += 1
        if self.mode == "log":
            self.kept[to].append((self.last[to], body))
        queue = self.subscribers.get(to)
        if queue is not None:
            queue.put_nowait((self.last[to], body))

    def subscribe(self, user: str, after: int) -> tuple[list[tuple[int, dict[str, Any]]], asyncio.Queue[Any]]:
        """The backlog after ``after`` and a queue for what comes next, taken together (no await between:
        nothing published meanwhile can be missed or appear twice)."""
        old = self.subscribers.get(user)
        if old is not None:
            old.put_nowait(None)  # one subscription per user: the newest wins
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.subscribers[user] = queue
        self.kept[user] = [(o, b) for o, b in self.kept[user] if o > after]  # the cursor acknowledges
        return list(self.kept[user]), queue


def user_of(request: web.Request) -> str | None:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    user, _, digest = token.rpartition(".")
    good = hmac.new(SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()
    return user if user and hmac.compare_digest(digest, good) else None


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def subscribe_app(hub: Hub) -> web.Application:
    async def subscribe(request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        if user is None:
            return web.json_response({"error": "invalid token"}, status=401)
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return web.json_response({"error": "after must be an integer"}, status=400)
        backlog, queue = hub.subscribe(user, after)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for offset, body in backlog:
            await response.write(line({"offset": offset, "body": body}))
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b"{}\n")
                continue
            if item is None:
                break
            await response.write(line({"offset": item[0], "body": item[1]}))
        if hub.subscribers.get(user) is queue:
            del hub.subscribers[user]
        return response

    app = web.Application()
    app.router.add_get("/subscribe", subscribe)
    app.router.add_get("/healthz", healthz)
    return app


def publish_app(hub: Hub) -> web.Application:
    async def publish(request: web.Request) -> web.Response:
        if user_of(request) is None:
            return web.json_response({"ok": False, "error": "invalid token"}, status=401)
        try:
            data = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "not JSON"}, status=400)
        if not isinstance(data, dict) or not isinstance(data.get("to"), str) or not isinstance(data.get("body"), dict):
            return web.json_response({"ok": False, "error": "need to and body"}, status=400)
        hub.publish(data["to"], data["body"])
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/publish", publish)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sub-port", type=int, required=True)
    parser.add_argument("--pub-port", type=int, required=True)
    parser.add_argument("--mode", choices=["log", "live"], default="log")
    args = parser.parse_args()
    if not SECRET:
        sys.exit("error: the environment variable HARNESS_TARGET_SECRET (the token secret) is not set or empty")
    hub = Hub(args.mode)
    runners = []
    for app, port in ((subscribe_app(hub), args.sub_port), (publish_app(hub), args.pub_port)):
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    print(f"pubsub ({args.mode}): subscribe on {args.sub_port}, publish on {args.pub_port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
