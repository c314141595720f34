"""Socket.IO driver (python-socketio client, websocket transport, automatic reconnects).

Send: ``emit("send", {id, to, seq, sent_ns}, callback)``; the callback's reply completes the send.
Receive: the ``msg`` handler stamps the time on its first line, before anything can yield, returns an
ack (for servers that emit with a callback) and, when the message carries an ``offset``, emits
``ack {offset}`` (for servers that trim on explicit acks). Resume: every (re)connect sends
``auth = {"token", "last_seen"}`` with the last offset received; servers that replay "everything after
X" use it, others ignore it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import engineio
import gevent
import socketio
from engineio import packet as eio_packet

from harness.drivers.base import DeliveryUser

__all__ = ["SocketIOUser", "InlineClient"]

log = logging.getLogger(__name__)

_INLINE_SIO_TYPES = frozenset("0234")
"""Socket.IO CONNECT, EVENT, ACK, CONNECT_ERROR: dispatched in the read loop."""


class _InlineEngineIOClient(engineio.Client):  # type: ignore[misc]
    """python-engineio's client starts one greenlet per inbound message; this one handles Socket.IO
    CONNECT / EVENT / ACK / CONNECT_ERROR packets in the read loop, in arrival order, which cut the load
    generator's CPU per verified message (bench/README.md). DISCONNECT (and binary packets) keep the
    asynchronous path: their handler joins the read loop. Overrides a private method: the version is
    pinned in pyproject.toml."""

    def _receive_packet(self, pkt: Any) -> None:
        if (pkt.packet_type == eio_packet.MESSAGE and isinstance(pkt.data, str)
                and pkt.data[:1] in _INLINE_SIO_TYPES):
            self._trigger_event("message", pkt.data, run_async=False)
        else:
            super()._receive_packet(pkt)


class InlineClient(socketio.Client):  # type: ignore[misc]
    """python-socketio's client over ``_InlineEngineIOClient``, without websocket-client's pure-Python UTF-8
    check (text frames are still decoded strictly, in C)."""

    def __init__(self, **options: Any) -> None:
        extra = {"skip_utf8_validation": True, **options.pop("websocket_extra_options", {})}
        super().__init__(websocket_extra_options=extra, **options)

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InlineEngineIOClient


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
