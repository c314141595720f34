"""A harness driver for the two-port pub/sub server (examples/pubsub/server.py).

Each side goes through its own proxy listener: the subscription through ``self.slot.urls["sub"]``, publishes
through ``self.slot.urls["pub"]``, so a scenario can fault one side of one cohort and leave the other alone.
The subscription is what ``connected()`` / ``disconnected()`` report (the harness's fair chance is about
receiving); a publish completes with the publish port's answer.
"""

from __future__ import annotations

import json
import time
from typing import Any

import gevent
import gevent.queue
import httpx
from pydantic import BaseModel, Field

from harness.drivers.base import DeliveryUser


class Options(BaseModel):
    """``[target.NAME.options]`` for this driver."""

    silence_s: float = Field(2.0, gt=0)
    """No line (the server sends a keepalive every 0.5 s) for this long: the subscription is dead."""


class PubSubUser(DeliveryUser):
    abstract = True  # the harness makes the concrete class
    Options = Options

    def open(self) -> None:
        assert self.slot is not None and self.ctx is not None
        auth = {"Authorization": f"Bearer {self.slot.token}"}
        self.sub = httpx.Client(base_url=self.slot.urls["sub"], headers=auth,
                                timeout=httpx.Timeout(5.0, read=self.options.silence_s))
        self.pub = httpx.Client(base_url=self.slot.urls["pub"], headers=auth,
                                timeout=self.ctx.scenario.load.ack_timeout_s)
        self.subscribed = False
        self.outbox: gevent.queue.Queue[tuple[str, dict[str, Any]]] = gevent.queue.Queue()
        self.loops = [gevent.spawn(self._subscribe_forever), gevent.spawn(self._publish_forever)]
        deadline = time.monotonic() + self.ctx.scenario.load.connect_timeout_s
        while not self.subscribed and time.monotonic() < deadline:
            gevent.sleep(0.05)

    def is_open(self) -> bool:
        return self.subscribed

    def _subscribe_forever(self) -> None:
        while True:
            reason = "stream ended"
            try:
                with self.sub.stream("GET", "/subscribe", params={"after": self.last_offset or 0}) as response:
                    if response.status_code != 200:
                        raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request,
                                                    response=response)
                    self.subscribed = True
                    self.connected()
                    for text in response.iter_lines():
                        t_ns = time.time_ns()  # stamp on arrival, before handling anything
                        message = json.loads(text) if text else {}
                        if "offset" in message:
                            self.received({**message["body"], "offset": message["offset"]}, t_ns)
            except httpx.ReadTimeout:
                reason = f"silent link: no line for {self.options.silence_s} s"
            except (httpx.HTTPError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if self.subscribed:
                self.subscribed = False
                self.disconnected(reason)  # the harness: records it, pending sends become "info"
            gevent.sleep(0.3)

    def transmit(self, msg_id: str, payload: dict[str, Any]) -> None:
        self.outbox.put((msg_id, payload))  # one publish at a time: the server sees them in the order sent

    def _publish_forever(self) -> None:
        while True:
            msg_id, payload = self.outbox.get()
            if msg_id not in self.pending:
                continue  # already ended (ack timeout, or the subscription dropped)
            body = {**payload, "from": self.user_id}  # the server relays bodies untouched
            try:
                reply = self.pub.post("/publish", json={"to": payload["to"], "body": body}).json()
            except httpx.ConnectError as exc:
                self.completed(msg_id, "fail", f"not sent: {exc}")
            except (httpx.HTTPError, ValueError) as exc:
                self.completed(msg_id, "info", f"{type(exc).__name__}: {exc}")
            else:
                self.replied(msg_id, reply)

    def close(self) -> None:
        gevent.killall(self.loops, block=False)
        self.sub.close()
        self.pub.close()
