"""What every reference Socket.IO target shares: command line, payload checks, serving, parent watch."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from aiohttp import web

from targets.auth import verify

__all__ = ["parse_args", "make_server", "validate_send", "message_for", "authenticate", "read_send",
           "forget_on_disconnect", "after_connect", "watch_parent", "serve", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 64 * 1024


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ping-interval", type=float, default=25.0)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    parser.add_argument("--secret", required=True)
    return parser.parse_args()


def make_server(args: argparse.Namespace, **options: Any) -> socketio.AsyncServer:
    return socketio.AsyncServer(
        **options,
        async_mode="aiohttp",
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        max_http_buffer_size=MAX_BODY_BYTES,
        cors_allowed_origins=[],
    )


def validate_send(data: Any) -> str | None:
    """Why a ``send`` event payload is malformed, or None.

    Shape: ``{id: str, to: str, seq: int, body?: str, sent_ns?: int}``; ``body`` and ``sent_ns`` are opaque
    to the server and forwarded unchanged to the recipient.
    """
    if not isinstance(data, dict):
        return "payload must be an object"
    if not isinstance(data.get("id"), str) or not data["id"]:
        return "id must be a non-empty string"
    if not isinstance(data.get("to"), str) or not data["to"]:
        return "to must be a non-empty string"
    if isinstance(data.get("seq"), bool) or not isinstance(data.get("seq"), int):
        return "seq must be an integer"
    if "body" in data and not isinstance(data["body"], str):
        return "body must be a string"
    if "sent_ns" in data and (isinstance(data["sent_ns"], bool) or not isinstance(data["sent_ns"], int)):
        return "sent_ns must be an integer"
    return None


def message_for(sender: str, data: dict[str, Any]) -> dict[str, Any]:
    """The delivery payload: the sender comes from the authenticated session, never from the event."""
    message = {"id": data["id"], "from": sender, "seq": data["seq"], "body": data.get("body", "")}
    if "sent_ns" in data:
        message["sent_ns"] = data["sent_ns"]
    return message


async def authenticate(sio: socketio.AsyncServer, sid: str, auth: Any, secret: str) -> str:
    """The user id from the connect-time token (never from an event); refuses the connection otherwise."""
    user = verify(auth, secret)
    if user is None:
        raise ConnectionRefusedError("invalid token")
    await sio.save_session(sid, {"user": user})
    return user


async def read_send(sio: socketio.AsyncServer, sid: str, data: Any,
                    log: logging.Logger) -> tuple[str, dict[str, Any]] | dict[str, Any]:
    """``(sender, message)`` for a well-formed send event, else the error reply to ack it with."""
    problem = validate_send(data)
    if problem is not None:
        log.warning("rejected send from %s: %s", sid, problem)
        return {"ok": False, "error": problem}
    sender: str = (await sio.get_session(sid))["user"]
    return sender, message_for(sender, data)


def forget_on_disconnect(sio: socketio.AsyncServer, sid_of_user: dict[str, str]) -> None:
    """Register a disconnect handler that unroutes the user, unless they already reconnected elsewhere."""

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        user = (await sio.get_session(sid)).get("user")
        if user is not None and sid_of_user.get(user) == sid:
            del sid_of_user[user]


def after_connect(sio: socketio.AsyncServer, sid: str, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` once the client is fully connected (its CONNECT reply sent).

    The connect handler runs before python-socketio answers the CONNECT; anything emitted to the socket
    from inside it could reach the client before that answer and be dropped. Replays and routing
    therefore start here, in a background task.
    """

    async def run() -> None:
        for _ in range(2000):
            if sio.manager.is_connected(sid, "/"):
                await work()
                return
            if sid not in sio.manager.rooms.get("/", {}).get(None, {}):
                return  # refused or gone before it connected
            await asyncio.sleep(0.005)

    sio.start_background_task(run)


async def watch_parent() -> None:
    """Exit when the harness that started us is gone, so a crashed run leaves no orphan server."""
    parent = os.environ.get("HARNESS_PARENT_PID")
    if not parent:
        return
    while True:
        await asyncio.sleep(1.0)
        try:
            os.kill(int(parent), 0)
        except OSError:
            logging.warning("parent %s gone; exiting", parent)
            os._exit(0)


def serve(sio: socketio.AsyncServer, args: argparse.Namespace) -> None:
    """Serve ``sio`` on aiohttp with a /healthz route until SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    app = web.Application()
    sio.attach(app)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def start_watch(app: web.Application) -> None:
        app[_WATCH] = asyncio.get_running_loop().create_task(watch_parent())

    app.router.add_get("/healthz", healthz)
    app.on_startup.append(start_watch)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


_WATCH = web.AppKey("parent_watch", asyncio.Task)
