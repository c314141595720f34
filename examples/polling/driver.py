"""A harness driver for the long-polling server: the whole protocol in four methods."""

from __future__ import annotations

import time
from typing import Any

import gevent
import gevent.lock
import httpx

from harness.drivers.base import DeliveryUser


class PollingUser(DeliveryUser):
    abstract = True  # the harness makes the concrete class

    def open(self) -> None:
        assert self.slot is not None
        self.http = httpx.Client(base_url=self.slot.url, timeout=5,
                                 headers={"Authorization": f"Bearer {self.slot.token}"})
        self.online = False
        # One POST at a time, in send order: concurrent requests on pooled connections can reach the server
        # in any order (seen after a blackhole healed), and this target claims per-sender order.
        self.sending = gevent.lock.Semaphore()
        self.poller = gevent.spawn(self._poll_forever)
        while not self.online:
            gevent.sleep(0.05)

    def is_open(self) -> bool:
        return self.online

    def _poll_forever(self) -> None:
        while True:
            try:
                reply = self.http.get("/poll", params={"after": self.last_offset or 0}).json()
            except httpx.HTTPError as exc:
                if self.online:
                    self.online = False
                    self.disconnected(str(exc))  # harness: records it, fails pending sends as "info"
                gevent.sleep(0.5)
                continue
            t_ns = time.time_ns()  # stamp on arrival, before handling anything
            if not self.online:
                self.online = True
                self.connected()
            for message in reply["messages"]:
                self.received(message, t_ns)  # harness: ledger row; also moves self.last_offset

    def transmit(self, msg_id: str, payload: dict[str, Any]) -> None:
        def post() -> None:
            with self.sending:
                send()

        def send() -> None:
            try:
                self.replied(msg_id, self.http.post("/send", json=payload).json())
            except httpx.ConnectError as exc:
                self.completed(msg_id, "fail", str(exc))  # never reached the server
            except httpx.HTTPError as exc:
                self.completed(msg_id, "info", str(exc))  # may or may not have been taken

        gevent.spawn(post)

    def close(self) -> None:
        self.poller.kill(block=False)
        self.http.close()
