"""Experimental lean Socket.IO driver: Engine.IO v4 / Socket.IO v5 framing spoken directly over one
WebSocket per user, one greenlet per connection (``driver = "socketio-lean"`` in a ``[target.X]`` table).

Why: python-socketio's client under gevent costs a read loop, a write loop with a queue, and packet
objects per message; bench/README.md measures the difference. Scope: the default namespace, text
packets, websocket transport only (no long-polling, no binary events: a binary packet closes the
connection as a protocol error). Same wire behaviour as ``SocketIOUser``: ``send`` with an ack id,
``msg`` events answered with an ack, ``ack {offset}`` for offset-bearing messages, and
``auth = {"token", "last_seen"}`` on every (re)connect. Heartbeat: the server pings, we answer; no
ping for ``pingInterval + pingTimeout`` means the connection is dead, as python-engineio decides.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from typing import Any
from urllib.parse import urlsplit

import gevent
import orjson
import websocket
from gevent.event import Event

from harness.drivers.base import DeliveryUser
from harness.drivers.sio_frames import FrameReader, FrameWriter, event, parse_packet, read_ahead

__all__ = ["SocketIOLeanUser"]

log = logging.getLogger(__name__)


class _Closed(Exception):
    """The connection ended (server close, transport error, heartbeat timeout or protocol error)."""


class SocketIOLeanUser(DeliveryUser):
    """One scenario user over a hand-framed Socket.IO WebSocket connection."""

    abstract = True

    def open(self) -> None:
        assert self.ctx is not None and self.slot is not None
        self._ws: websocket.WebSocket | None = None
        self._connected = False
        self._closing = False
        self._ack_ids = itertools.count(1)
        self._awaiting: dict[int, str | tuple[str, str]] = {}  # ack id → msg_id, or (action, room) of a join/leave
        self._first = Event()
        self._loop = gevent.spawn(self._run)
        self._first.wait(self.ctx.scenario.load.connect_timeout_s)

    def is_open(self) -> bool:
        return self._connected

    def close(self) -> None:
        self._closing = True
        if self._connected:  # as python-socketio's client does on disconnect(): recorded like any other
            self._connected = False
            self.disconnected("client disconnect")
        ws = self._ws
        if ws is not None:
            try:
                ws.send("41")
                ws.close(timeout=1)
            except Exception:
                pass
        self._loop.kill(block=False)

    def transmit(self, msg_id: str, payload: dict[str, Any]) -> None:
        if not self._connected or self._ws is None:
            raise ConnectionError("not connected")
        ack = next(self._ack_ids)
        self._awaiting[ack] = msg_id
        self._ws.send(event("send", payload, ack))

    def transmit_membership(self, action: str, room: str) -> None:
        if not self._connected or self._ws is None:
            raise ConnectionError("not connected")
        ack = next(self._ack_ids)
        self._awaiting[ack] = (action, room)
        self._ws.send(event(action, {"room": room}, ack))

    # -- connection loop ------------------------------------------------------------------------------------
    def _url(self) -> str:
        assert self.slot is not None
        parts = urlsplit(self.slot.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}/socket.io/?EIO=4&transport=websocket"

    def _run(self) -> None:
        """Connect, serve, and reconnect with backoff (0.2 s doubling to 1 s, ±20 % jitter) until closed."""
        assert self.ctx is not None
        delay = 0.2
        while not self._closing and not self.ctx.stopped:
            try:
                self._serve_once()
                delay = 0.2
            except Exception as exc:  # _Closed, or a send/connect error: either way this connection is over
                reason = str(exc) if isinstance(exc, _Closed) else f"transport error: {exc!r}"
                if self._connected:
                    self._connected = False
                    self._awaiting.clear()
                    self.disconnected(reason)
                else:
                    log.info("%s: connect failed (%s); retrying", self.user_id, reason)
            finally:
                if self._ws is not None:
                    try:
                        self._ws.close(timeout=0)
                    except Exception:
                        pass
                    self._ws = None
            if self._closing or self.ctx.stopped:
                return
            gevent.sleep(delay * (1 + 0.2 * (2 * random.random() - 1)))
            delay = min(delay * 2, 1.0)

    def _serve_once(self) -> None:
        ws = websocket.create_connection(self._url(), timeout=5, skip_utf8_validation=True,
                                         enable_multithread=True)
        self._ws = ws
        read_ahead(ws)
        ws.recv = FrameReader(ws).recv  # type: ignore[method-assign]
        ws.send = FrameWriter(ws).send  # type: ignore[method-assign]
        opening = self._recv(ws)
        if not opening.startswith("0"):
            raise _Closed(f"protocol error: expected an Engine.IO open packet, got {opening[:40]!r}")
        handshake = orjson.loads(opening[1:])
        ws.settimeout((handshake.get("pingInterval", 25000) + handshake.get("pingTimeout", 20000)) / 1000)
        ws.send("40" + orjson.dumps({"token": self.slot.token if self.slot else "",
                                     "last_seen": self.last_offset}).decode())
        while True:
            text = self._recv(ws)
            kind = text[:1]
            if kind == "4":
                self._on_packet(text[1:])
            elif kind == "2":
                ws.send("3" + text[1:])
            elif kind == "1":
                raise _Closed("server closed the Engine.IO session")
            elif kind not in ("3", "6"):
                raise _Closed(f"protocol error: Engine.IO packet {text[:20]!r}")

    def _recv(self, ws: websocket.WebSocket) -> str:
        try:
            data = ws.recv()
        except websocket.WebSocketTimeoutException:
            raise _Closed("ping timeout") from None
        except (websocket.WebSocketException, OSError) as exc:
            raise _Closed(f"transport error: {exc}") from None
        if not isinstance(data, str) or not data:
            raise _Closed("transport close" if not data else "protocol error: binary frame")
        return data

    def _on_packet(self, text: str) -> None:
        t_ns = time.time_ns()  # first: the receipt time is stamped before anything can yield
        kind, ack, body = parse_packet(text)
        if kind == "2" and isinstance(body, list) and body:
            if body[0] == "msg":
                data = body[1] if len(body) > 1 else None
                self.received(data, t_ns)
                if self._ws is not None:
                    if isinstance(data, dict) and "offset" in data:
                        self._ws.send(event("ack", {"offset": data["offset"]}))
                    if ack is not None:
                        self._ws.send(f"43{ack}[true]")
        elif kind == "3" and ack is not None:
            waiting = self._awaiting.pop(ack, None)
            reply = body[0] if isinstance(body, list) and body else None
            if isinstance(waiting, tuple):
                self.membership_replied(*waiting, reply)
            elif waiting is not None:
                self.replied(waiting, reply)
        elif kind == "0":
            self._connected = True
            self.connected()
            self._first.set()
        elif kind == "4":
            raise _Closed(f"connect refused: {body}")
        elif kind == "1":
            raise _Closed("server disconnected the namespace")
        elif kind in ("5", "6"):
            raise _Closed("protocol error: binary packets are not supported by the lean driver")
