"""Socket.IO driver (python-socketio client, websocket transport, automatic reconnects).

Send: ``emit("send", {id, to, seq, sent_ns}, callback)``; the callback's reply completes the send.
Receive: the ``msg`` handler stamps the time on its first line, before anything can yield, returns an
ack (for servers that emit with a callback) and, when the message carries an ``offset``, emits
``ack {offset}`` (for servers that trim on explicit acks). Resume: every (re)connect sends
``auth = {"token", "last_seen"}`` with the last offset received; servers that replay "everything after
X" use it, others ignore it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import engineio
import gevent
import orjson
import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from harness.drivers.base import DeliveryUser
from harness.drivers.sio_frames import FrameReader, FrameWriter, parse_packet, read_ahead

__all__ = ["SocketIOUser", "InlineClient"]

log = logging.getLogger(__name__)

_INLINE_SIO_TYPES = frozenset("0234")
"""Socket.IO CONNECT, EVENT, ACK, CONNECT_ERROR: dispatched in the read loop."""


class _InlineEngineIOClient(engineio.Client):  # type: ignore[misc]
    """python-engineio's client starts one greenlet per inbound message; this one handles Socket.IO
    CONNECT / EVENT / ACK / CONNECT_ERROR packets in the read loop, in arrival order, which cut the load
    generator's CPU per verified message (bench/README.md). DISCONNECT (and binary packets) keep the
    asynchronous path: their handler joins the read loop.

    EVENT and ACK text messages (``42…``, ``43…``: nearly every frame of a run) do not even become Engine.IO
    packet objects: the websocket's ``recv`` as the read loop sees it hands them to the Socket.IO client's
    message handler itself and reads on, returning every other frame (pings, CONNECT, CLOSE, binary) to
    python-engineio's read loop, which handles it as before. The socket's timeout (``pingInterval +
    pingTimeout``) applies to each read as before, so a silent server is still detected by python-engineio.
    Frames are read and written by ``sio_frames.FrameReader`` / ``FrameWriter``. Overrides private methods:
    the version is pinned in pyproject.toml."""

    def _receive_packet(self, pkt: Any) -> None:
        if (pkt.packet_type == eio_packet.MESSAGE and isinstance(pkt.data, str)
                and pkt.data[:1] in _INLINE_SIO_TYPES):
            self._trigger_event("message", pkt.data, run_async=False)
        else:
            super()._receive_packet(pkt)

    def _connect_websocket(self, url: str, headers: Any, engineio_path: str) -> bool:
        connected = bool(super()._connect_websocket(url, headers, engineio_path))
        if connected and self.ws is not None:  # the read loop has not run yet: it starts at our next yield
            read_ahead(self.ws)
            self.ws.recv = functools.partial(self._recv_dispatching, FrameReader(self.ws).recv)
            self.ws.send = FrameWriter(self.ws).send
        return connected

    def _recv_dispatching(self, recv: Callable[[], Any]) -> Any:
        """The read loop's ``ws.recv``: dispatches EVENT / ACK messages in place, returns any other frame."""
        while True:
            frame = recv()
            if (type(frame) is str and frame[:2] in _DISPATCHED and self.state == "connected"
                    and self.write_loop_task):
                handler = self.handlers.get("message")
                if handler is not None:
                    try:
                        handler(frame[1:])
                    except Exception:  # as python-engineio's _trigger_event: logged, the connection goes on
                        self.logger.exception("message handler error")
                    continue
            return frame


_DISPATCHED = frozenset({"42", "43"})
"""Engine.IO MESSAGE frames carrying a Socket.IO EVENT or ACK: dispatched inside ``ws.recv``."""


class InlineClient(socketio.Client):  # type: ignore[misc]
    """python-socketio's client over ``_InlineEngineIOClient``, without websocket-client's pure-Python UTF-8
    check (text frames are still decoded strictly, in C).

    python-socketio keeps the connection: connect, reconnects, namespaces, the ack-id map and its callbacks,
    disconnects. Only the text of default-namespace EVENT and ACK packets is made and read here, with orjson
    instead of the stdlib's json and without a Packet object per message: the same packets (JSON values are
    equal; non-ASCII text goes as UTF-8 instead of ``\\u`` escapes). Anything else (another namespace,
    binary data, JSON orjson refuses) takes python-socketio's own path."""

    def __init__(self, **options: Any) -> None:
        extra = {"skip_utf8_validation": True, **options.pop("websocket_extra_options", {})}
        super().__init__(websocket_extra_options=extra, **options)

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InlineEngineIOClient

    def emit(self, event: str, data: Any = None, namespace: str | None = None,
             callback: Callable[..., Any] | None = None) -> None:
        if namespace is None and "/" in self.namespaces and isinstance(data, dict):
            try:
                body = orjson.dumps([event, data])
            except TypeError:  # bytes (a binary event) or a type orjson does not encode: python-socketio's way
                pass
            else:
                ack = "" if callback is None else str(self._generate_ack_id("/", callback))
                self.eio.send("2" + ack + body.decode())
                return
        super().emit(event, data, namespace, callback)

    def _handle_eio_message(self, data: Any) -> None:
        if type(data) is str and data[:1] in "23" and data[1:2] != "/" and self._binary_packet is None:
            try:
                kind, packet_id, body = parse_packet(data)
            except orjson.JSONDecodeError:  # python-socketio decides what to make of it
                pass
            else:
                if isinstance(body, list) and body:
                    if kind == "2" and isinstance(body[0], str):
                        self._handle_event(None, packet_id, body)
                        return
                    if kind == "3":
                        self._handle_ack(None, packet_id, body)
                        return
        super()._handle_eio_message(data)

    def _handle_event(self, namespace: str | None, id: int | None, data: Any) -> None:
        """python-socketio's ``_handle_event`` (handler lookup included), with the ACK for the default
        namespace written by ``_send_ack``."""
        if namespace not in (None, "/"):
            super()._handle_event(namespace, id, data)
            return
        r = self._trigger_event(data[0], "/", *data[1:])
        if id is not None:
            self._send_ack(id, [] if r is None else list(r) if isinstance(r, tuple) else [r])

    def _send_ack(self, id: int, args: list[Any]) -> None:
        try:
            body = orjson.dumps(args)
        except TypeError:
            self._send_packet(self.packet_class(sio_packet.ACK, namespace="/", id=id, data=args))
        else:
            self.eio.send("3" + str(id) + body.decode())


class SocketIOUser(DeliveryUser):
    """One scenario user over Socket.IO."""

    abstract = True

    def open(self) -> None:
        assert self.ctx is not None and self.slot is not None
        self.sio = self.make_client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1.0,
                                    randomization_factor=0.2, handle_sigint=False, request_timeout=5)
        self.sio.on("connect", lambda: self.connected())
        self.sio.on("disconnect", lambda *reason: self.disconnected(str(reason[0]) if reason else "disconnected"))
        self.sio.on("msg", self._on_msg)
        deadline = time.monotonic() + self.ctx.scenario.load.connect_timeout_s
        while time.monotonic() < deadline and not self.ctx.stopped:
            try:
                self.sio.connect(self.slot.url, auth=self._auth, transports=["websocket"], wait_timeout=5,
                                 retry=False)
                return
            except socketio.exceptions.ConnectionError as exc:
                log.info("%s: connect failed (%s); retrying", self.user_id, exc)
                gevent.sleep(0.5)

    def make_client(self, **options: Any) -> socketio.Client:
        """The python-socketio client (a subclass may return one that speaks more of the protocol)."""
        return InlineClient(**options)

    def _auth(self) -> dict[str, Any]:
        """Evaluated by python-socketio on every (re)connect, so the resume point is always current."""
        assert self.slot is not None
        return {"token": self.slot.token, "last_seen": self.last_offset}

    def is_open(self) -> bool:
        return bool(self.sio.connected)

    def _on_msg(self, data: Any) -> bool:
        t_ns = time.time_ns()  # first: the receipt time is stamped before anything can yield
        self.received(data, t_ns)
        if isinstance(data, dict) and "offset" in data:
            try:
                self.sio.emit("ack", {"offset": data["offset"]})
            except Exception:  # disconnected meanwhile: the server will resend, which is its job
                pass
        return True  # the ack a server emitting with a callback waits for

    def transmit(self, msg_id: str, payload: dict[str, Any]) -> None:
        self.sio.emit("send", payload, callback=lambda *ack: self.replied(msg_id, ack[0] if ack else None))

    def transmit_membership(self, action: str, room: str) -> None:
        self.sio.emit(action, {"room": room},
                      callback=lambda *ack: self.membership_replied(action, room, ack[0] if ack else None))

    def close(self) -> None:
        self.sio.disconnect()
