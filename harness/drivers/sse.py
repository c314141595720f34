"""SSE driver: receive over an SSE stream (httpx + httpx-sse), send with HTTP POST.

Receive: ``GET /events`` with ``Authorization: Bearer <token>`` and, after the first message,
``Last-Event-ID: <last id>``; each ``msg`` event is stamped on arrival, recorded, and acked in batches
(``POST /ack {offsets}`` every 50 ms). A stream that ends or stalls (no byte, not even a ping, for ping interval + ping
timeout) is a disconnect; the driver reconnects after the server's ``retry:`` delay.
Send: ``POST /send``, one at a time per user (like a websocket, so a user's messages reach the server
in the order sent); JSON ``{"ok": …}`` completes it; a refused connection is ``fail`` (not sent), a
timeout or 5xx without a JSON verdict is ``info`` (unknown).
Rooms: ``POST /join`` / ``POST /leave`` ``{room}``, in the same one-at-a-time queue as the sends (so a join
asked before a send reaches the server before it), answered like a send; a room send is ``POST /send`` with
``room`` instead of ``to``, and the room messages arrive on the same SSE stream, carrying their ``room``.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from typing import Any

import gevent
import gevent.queue
import httpx
import httpx_sse

from harness.drivers.base import DeliveryUser

__all__ = ["SSEUser"]

log = logging.getLogger(__name__)


_TLS: ssl.SSLContext | None = None


def _shared_tls() -> ssl.SSLContext:
    """One TLS context for every user's clients: httpx builds a new one per client by default (loading the CA
    bundle), 70 ms of the load process's CPU each on this machine, two per user: 1,000 SSE users spent over two
    minutes connecting. The same verification settings, built once."""
    global _TLS
    if _TLS is None:
        _TLS = httpx.create_ssl_context()
    return _TLS


class SSEUser(DeliveryUser):
    """One scenario user over SSE + POST."""

    abstract = True

    def open(self) -> None:
        assert self.ctx is not None and self.slot is not None
        heartbeat = self.ctx.scenario.heartbeat
        read_timeout = heartbeat.ping_interval_s + heartbeat.ping_timeout_s
        self.headers = {"Authorization": f"Bearer {self.slot.token}"}
        tls = _shared_tls()
        self.stream_http = httpx.Client(base_url=self.slot.url, timeout=httpx.Timeout(5.0, read=read_timeout),
                                        verify=tls)
        self.post_http = httpx.Client(base_url=self.slot.url, verify=tls,
                                      timeout=httpx.Timeout(self.ctx.scenario.load.ack_timeout_s))
        self._open = False
        self._retry_s = 0.5
        self._outbox: gevent.queue.Queue[tuple[str, str, dict[str, Any]]] = gevent.queue.Queue()
        """(path, message id or room, body): /send, /join and /leave requests, one at a time."""
        self._acks: list[str] = []
        self._greenlets = [gevent.spawn(self._read_loop), gevent.spawn(self._send_loop),
                           gevent.spawn(self._ack_loop)]
        deadline = time.monotonic() + self.ctx.scenario.load.connect_timeout_s
        while not self._open and time.monotonic() < deadline and not self.ctx.stopped:
            gevent.sleep(0.05)

    def is_open(self) -> bool:
        return self._open

    def _read_loop(self) -> None:
        assert self.ctx is not None
        while not self.ctx.stopped:
            headers = dict(self.headers)
            if self.last_offset is not None:
                headers["Last-Event-ID"] = str(self.last_offset)
            reason = "stream ended"
            try:
                with httpx_sse.connect_sse(self.stream_http, "GET", "/events", headers=headers) as source:
                    if source.response.status_code != 200:
                        raise httpx.HTTPStatusError(f"HTTP {source.response.status_code}",
                                                    request=source.response.request, response=source.response)
                    self._open = True
                    self.connected()
                    for event in source.iter_sse():
                        t_ns = time.time_ns()  # first: stamped before anything can yield
                        if event.retry:
                            self._retry_s = event.retry / 1000
                        if event.event != "msg":
                            continue
                        data = json.loads(event.data)
                        if isinstance(data, dict):
                            data.setdefault("offset", event.id)
                        self.received(data, t_ns)
                        self._acks.append(event.id)
            except (httpx.HTTPError, httpx_sse.SSEError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if self._open:
                self._open = False
                self.disconnected(reason)
            gevent.sleep(self._retry_s)

    def _ack_loop(self) -> None:
        while True:
            gevent.sleep(0.05)
            batch, self._acks = self._acks[:1000], self._acks[1000:]
            if batch:
                try:
                    self.post_http.post("/ack", json={"offsets": batch}, headers=self.headers)
                except httpx.HTTPError:
                    pass  # unacked messages are replayed after a reconnect: duplicates, counted, never lost

    def transmit(self, msg_id: str, payload: dict[str, Any]) -> None:
        self._outbox.put(("/send", msg_id, payload))

    def transmit_membership(self, action: str, room: str) -> None:
        self._outbox.put((f"/{action}", room, {"room": room}))

    def _send_loop(self) -> None:
        while True:
            path, key, body = self._outbox.get()
            if path != "/send":
                self._membership(path[1:], key)
            elif key in self.pending:  # still waiting (not timed out or dropped meanwhile)
                self._post(key, body)

    def _membership(self, action: str, room: str) -> None:
        try:
            response = self.post_http.post(f"/{action}", json={"room": room}, headers=self.headers)
        except httpx.ConnectError as exc:
            self.membership_replied(action, room, {"ok": False, "error": f"not sent: {exc}"})
            return
        except httpx.HTTPError as exc:
            self.membership_replied(action, room, {"ok": None, "error": f"{type(exc).__name__}: {exc}"})
            return
        reply = self._verdict(response)
        if reply is None and response.status_code < 500:
            reply = {"ok": False, "error": f"HTTP {response.status_code}"}
        self.membership_replied(action, room, reply)

    @staticmethod
    def _verdict(response: httpx.Response) -> dict[str, Any] | None:
        """The JSON ``{"ok": …}`` the server answered with, or None."""
        try:
            reply = response.json()
        except ValueError:
            return None
        return reply if isinstance(reply, dict) and "ok" in reply else None

    def _post(self, msg_id: str, payload: dict[str, Any]) -> None:
        try:
            response = self.post_http.post("/send", json=payload, headers=self.headers)
        except httpx.ConnectError as exc:
            self.completed(msg_id, "fail", f"not sent: {exc}")
            return
        except httpx.HTTPError as exc:
            self.completed(msg_id, "info", f"{type(exc).__name__}: {exc}")
            return
        reply = self._verdict(response)
        if reply is not None:
            self.replied(msg_id, reply)
        elif response.status_code >= 500:
            self.completed(msg_id, "info", f"HTTP {response.status_code} without a verdict")
        else:
            self.completed(msg_id, "fail", f"HTTP {response.status_code}")

    def close(self) -> None:
        gevent.killall(self._greenlets, block=False)
        self.stream_http.close()
        self.post_http.close()
