"""What every reference Socket.IO target shares: command line, payload checks, serving, parent watch.

Contract with the harness (every target, the SSE and Node ones too):

- the token secret comes from the environment variable ``HARNESS_TARGET_SECRET`` (never the command line);
  unset or empty, the target exits at once with status 1 and a one-line message;
- ``--port`` (required), ``--host`` (default 127.0.0.1), ``--ping-interval`` / ``--ping-timeout`` seconds,
  ``--max-pending N`` (messages kept per recipient, default ``MAX_PENDING``; targets without a buffer
  accept and ignore it);
- SIGTERM (or SIGINT): every client connection is closed (a plain websocket close, so clients reconnect
  as after any drop) and the process exits with status 0 within 1 s (measured: ~0.2 s here, ~0.6 s for
  the SSE target; requests still open after ``SHUTDOWN_TIMEOUT_S`` are cancelled). A stop stuck for
  ``SHUTDOWN_DEADLINE_S`` prints where and exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from aiohttp import web

from targets.auth import secret_from_env, verify

__all__ = ["make_parser", "parse_args", "make_server", "validate_send", "message_for", "authenticate", "read_send",
           "room_of", "store_failure", "forget_on_disconnect", "after_connect", "drop_transport", "watch_parent",
           "serve", "PendingBound", "MAX_BODY_BYTES", "MAX_PENDING", "SHUTDOWN_TIMEOUT_S", "XADD_UNLESS_FULL"]

MAX_BODY_BYTES = 64 * 1024

MAX_PENDING = 10_000
"""Default bound on the messages a target keeps for one recipient (``--max-pending``).

A send past it is refused (``{"ok": false, "error": ...}``, so the sender's ledger row is ``fail``) and
never stored: a message once acknowledged is never dropped to make room (no ``MAXLEN`` trimming). With
bodies of at most ``MAX_BODY_BYTES``, one recipient who never connects costs at most ~640 MiB, not
unbounded memory."""

XADD_UNLESS_FULL = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
"""
"""``XADD`` to KEYS[1] unless it already holds ARGV[1] entries: the new stream id, or nil (not stored).

The Redis form of ``PendingBound``: check and add in one atomic step."""

SHUTDOWN_DEADLINE_S = 5.0
"""A graceful stop still running this long after SIGTERM is stuck: the target prints where (every pending task's
stack and every thread's) and exits with status 1 instead of hanging until someone sends SIGKILL."""

SHUTDOWN_TIMEOUT_S = 0.25
"""After SIGTERM closed the websockets, how long requests still open may take before they are cancelled."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def make_parser(description: str, ping_interval: float = 25.0) -> argparse.ArgumentParser:
    """The options every target takes; a target adds its own before calling ``parse_args``."""
    parser = argparse.ArgumentParser(description=description,
                                     epilog="The token secret is read from the environment variable "
                                            "HARNESS_TARGET_SECRET.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ping-interval", type=float, default=ping_interval)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    parser.add_argument("--max-pending", type=_positive_int, default=MAX_PENDING,
                        help=f"messages kept per recipient before sends to them are refused (default {MAX_PENDING})")
    return parser


def parse_args(description: str, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The command line, plus ``secret`` from ``HARNESS_TARGET_SECRET`` (exits with a message if it is missing)."""
    args = (parser or make_parser(description)).parse_args()
    args.secret = secret_from_env()
    return args


class PendingBound:
    """The per-recipient bound on kept messages, and the count of sends it refused (each refusal is logged)."""

    def __init__(self, limit: int, log: logging.Logger) -> None:
        self.limit = limit
        self.log = log
        self.refused = 0
        """Sends refused since start because their recipient's backlog was full."""

    def full(self, kept: int) -> bool:
        return kept >= self.limit

    def refusal(self, sender: str, recipient: str) -> dict[str, Any]:
        """Count and log one refused send; the reply to ack it with."""
        self.refused += 1
        self.log.warning("refused send from %s to %s: %d messages already pending (limit); %d sends refused so far",
                         sender, recipient, self.limit, self.refused)
        return {"ok": False, "error": f"recipient's backlog is full ({self.limit} messages pending); not stored"}


def make_server(args: argparse.Namespace, **options: Any) -> socketio.AsyncServer:
    return socketio.AsyncServer(
        **options,
        async_mode="aiohttp",
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        max_http_buffer_size=MAX_BODY_BYTES,
        cors_allowed_origins=[],
    )


def validate_send(data: Any, rooms: bool = False) -> str | None:
    """Why a ``send`` event payload is malformed, or None.

    Shape: ``{id: str, to: str, seq: int, body?: str, sent_ns?: int}``; ``body`` and ``sent_ns`` are opaque
    to the server and forwarded unchanged to the recipient. A target with rooms also takes ``room: str``
    instead of ``to`` (a broadcast to the room's members).
    """
    if not isinstance(data, dict):
        return "payload must be an object"
    if not isinstance(data.get("id"), str) or not data["id"]:
        return "id must be a non-empty string"
    if rooms and "to" not in data:
        if not isinstance(data.get("room"), str) or not data["room"]:
            return "room must be a non-empty string (or give to)"
    elif not isinstance(data.get("to"), str) or not data["to"]:
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
    if "room" in data and "to" not in data:
        message["room"] = data["room"]
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


async def read_send(sio: socketio.AsyncServer, sid: str, data: Any, log: logging.Logger,
                    rooms: bool = False) -> tuple[str, dict[str, Any]] | dict[str, Any]:
    """``(sender, message)`` for a well-formed send event, else the error reply to ack it with."""
    problem = validate_send(data, rooms)
    if problem is not None:
        log.warning("rejected send from %s: %s", sid, problem)
        return {"ok": False, "error": problem}
    sender: str = (await sio.get_session(sid))["user"]
    return sender, message_for(sender, data)


_NEVER_SENT = ("connecting to", "connection refused", "no connection available", "too many connections")


def store_failure(exc: Exception) -> tuple[bool | None, str]:
    """The sender's ``ok`` for a store command that raised, and the error text.

    ``False`` (definitely not stored) only when the command never reached the store: the connection could not
    be made or none was free. A connection lost *after* the command was written ("Connection closed by
    server", a reset, a timeout) leaves the outcome unknown (``None``): the store may have executed it and
    died before replying (seen: an XADD persisted under ``appendfsync always``, the reply lost in a SIGKILL,
    the sender told "not stored", the message delivered later — found by `harness explore`)."""
    text = str(exc)
    if any(marker in text.lower() for marker in _NEVER_SENT):
        return False, f"store unavailable: {text}"
    return None, f"store connection lost, outcome unknown: {text}"


ROOM_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def room_of(data: Any) -> str | None:
    """The room of a ``join`` / ``leave`` event payload ``{room: str}``, or None when malformed."""
    room = data.get("room") if isinstance(data, dict) else None
    return room if isinstance(room, str) and ROOM_NAME.match(room) else None


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


async def drop_transport(sio: socketio.AsyncServer, sid: str) -> None:
    """Close the client's websocket as a network drop would, so it reconnects and the server tries again.

    Not ``sio.disconnect(sid)``: its Socket.IO DISCONNECT packet tells a python-socketio client the server
    meant it, and that client never reconnects (seen: a member whose replay failed in a Redis restart stayed
    away until the end of the run). Ending the socket's send queue closes the websocket (as ``serve`` does
    at shutdown; engineio is pinned)."""
    eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
    sock = sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
    if sock is not None:
        await sock.queue.put(None)


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


def serve(sio: socketio.AsyncServer, args: argparse.Namespace,
          before_exit: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve ``sio`` on aiohttp with a /healthz route until SIGTERM (or SIGINT), then exit with status 0.

    ``before_exit`` runs on a graceful stop after the connections are closed (e.g. flush what the server
    still holds): a SIGTERM restart is graceful, a SIGKILL is not, and a design may differ between them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    app = web.Application()
    sio.attach(app)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def start_watch(app: web.Application) -> None:
        app[_WATCH] = asyncio.get_running_loop().create_task(watch_parent())

    async def close_connections(app: web.Application) -> None:
        _watch_shutdown(asyncio.get_running_loop())
        # aiohttp's shutdown waits for open requests, and a websocket stays open: close each one first, with
        # a plain websocket close frame, as socket.io's io.close() does. Not sio.disconnect() or
        # eio.disconnect(): their Socket.IO DISCONNECT / Engine.IO CLOSE packet says "the server meant it",
        # and a python-socketio client then never reconnects. Ending the socket's send queue with None makes
        # python-engineio's writer close the websocket (engineio is pinned in pyproject.toml).
        sockets = list(sio.eio.sockets.values())
        logging.info("shutting down: closing %d connections", len(sockets))
        for sock in sockets:
            await sock.queue.put(None)

    app.router.add_get("/healthz", healthz)
    app.on_startup.append(start_watch)
    app.on_shutdown.append(close_connections)
    if before_exit is not None:
        async def run_before_exit(app: web.Application) -> None:
            await before_exit()

        app.on_shutdown.append(run_before_exit)
    # run_app turns SIGTERM into a graceful exit (status 0); shutdown_timeout bounds the wait for requests
    # still open after close_connections (its default of 60 s made a restart a 5 s hang, then SIGKILL)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None,
                shutdown_timeout=SHUTDOWN_TIMEOUT_S)


_WATCH = web.AppKey("parent_watch", asyncio.Task)


def _awaiting(coro: Any) -> list[str]:
    """Where a suspended coroutine waits, outermost first: ``function (file:line)`` down the chain of awaits (a
    task's own stack shows only its outermost frame)."""
    chain: list[str] = []
    while coro is not None and len(chain) < 50:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            chain.append(type(coro).__name__)
            break
        chain.append(f"{frame.f_code.co_name} ({os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await",
                                                                                                  None)
    return chain


def _watch_shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """Start the ``SHUTDOWN_DEADLINE_S`` watchdog (a daemon thread: the event loop may be the thing that is stuck)."""
    def stuck() -> None:
        print(f"shutdown stuck {SHUTDOWN_DEADLINE_S:g} s after SIGTERM; pending tasks:", file=sys.stderr)
        try:
            for task in list(asyncio.all_tasks(loop)):  # read from another thread: best effort, for the log only
                print(f"- {task.get_name()} awaiting: {' -> '.join(_awaiting(task.get_coro()))}", file=sys.stderr)
        except RuntimeError as exc:
            print(f"(tasks changed while listed: {exc})", file=sys.stderr)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(SHUTDOWN_DEADLINE_S, stuck)
    timer.daemon = True
    timer.start()
