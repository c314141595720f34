"""A harness driver for the line-based TCP broker (examples/broker/server.py): four methods, typed options.

The broker sends no keepalives, so the driver is the one that notices a silent link: it pings every
``ping_interval_s`` and gives the connection up when nothing at all arrived for ``silence_s`` (a blackholed
link sends no FIN and no RST; without this the driver would wait forever). The broker's ack line is what
"acknowledged" means here: the broker took the message (in ``log`` mode: kept it for the recipient).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.lock
from pydantic import BaseModel, Field

from harness.drivers.base import DeliveryUser


class NotConnected(Exception):
    """A send attempted while no connection is up: it never left this process."""


class Options(BaseModel):
    """``[target.NAME.options]`` for this driver."""

    ping_interval_s: float = Field(0.5, gt=0)
    """How often to ping the broker (it never pings by itself)."""
    silence_s: float = Field(2.0, gt=0)
    """No byte for this long (not even a pong): the link is dead, reconnect."""
    resume: bool = True
    """Name the last offset seen in the hello, so the broker replays what came after it."""


class BrokerUser(DeliveryUser):
    abstract = True  # the harness makes the concrete class
    Options = Options

    def open(self) -> None:
        assert self.slot is not None and self.ctx is not None
        where = urlsplit(self.slot.url)  # the cohort's proxy listener: the scheme says nothing, host:port do
        self.address = (where.hostname or "127.0.0.1", where.port or 0)
        self.sock: socket.socket | None = None
        self.online = False
        self.write_lock = gevent.lock.Semaphore()
        self.loops = [gevent.spawn(self._connect_forever), gevent.spawn(self._ping_forever)]
        deadline = time.monotonic() + self.ctx.scenario.load.connect_timeout_s
        while not self.online and time.monotonic() < deadline:
            gevent.sleep(0.05)

    def is_open(self) -> bool:
        return self.online

    def _send_line(self, message: dict[str, Any]) -> None:
        sock = self.sock
        if sock is None:
            raise NotConnected("not connected")
        with self.write_lock:  # one line at a time: greenlets must not interleave their writes
            sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def _connect_forever(self) -> None:
        while True:
            reason = "connection closed by the broker"
            try:
                with socket.create_connection(self.address, timeout=self.options.silence_s) as sock:
                    self.sock = sock
                    after = self.last_offset if self.options.resume and self.last_offset is not None else 0
                    self._send_line({"op": "hello", "token": self.slot.token if self.slot else "", "after": after})
                    for line in sock.makefile("rb"):  # the timeout applies to every read: silence ends the loop
                        t_ns = time.time_ns()  # stamp on arrival, before handling anything
                        self._handle(json.loads(line), t_ns)
            except TimeoutError:  # the socket's read timeout: nothing arrived, not even a pong
                reason = f"silent link: no byte for {self.options.silence_s} s"
            except (OSError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.sock = None
            if self.online:
                self.online = False
                self.disconnected(reason)  # the harness: records it, pending sends become "info"
            gevent.sleep(0.3)

    def _handle(self, message: Any, t_ns: int) -> None:
        op = message.get("op") if isinstance(message, dict) else None
        if op == "welcome":
            self.online = True
            self.connected()
        elif op == "msg":
            body = dict(message.get("body") or {})
            body["offset"] = message.get("offset")  # the broker's cursor: becomes self.last_offset
            self.received(body, t_ns)
        elif op == "ack":
            self.replied(str(message.get("id")), {"ok": message.get("ok"), "error": message.get("error")})

    def _ping_forever(self) -> None:
        while True:
            gevent.sleep(self.options.ping_interval_s)
            if self.online:
                try:
                    self._send_line({"op": "ping"})
                except OSError:
                    pass  # the reader notices the dead link

    def transmit(self, msg_id: str, payload: dict[str, Any]) -> None:
        # the broker relays bodies untouched, so the receipt's "from" must travel in the body
        body = {**payload, "from": self.user_id}
        try:
            self._send_line({"op": "pub", "id": msg_id, "to": payload["to"], "body": body})
        except NotConnected:
            raise  # never left: the harness records "fail"
        except OSError as exc:
            self.completed(msg_id, "info", f"write failed: {exc}")  # part of it may have left

    def close(self) -> None:
        gevent.killall(self.loops, block=False)
        if self.sock is not None:
            self.sock.close()
