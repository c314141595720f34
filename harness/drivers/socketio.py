"""Socket.IO driver: a Locust user that sends tagged messages and records every send and receipt.

Sends: ``emit("send", {id, to, seq, body}, callback)``. The ledger gets an ``invoke`` row, then exactly
one completion: ``ok`` (server acked ``{"ok": true}``), ``fail`` (server answered ``{"ok": false}``, or the
emit could not leave this process), ``info`` (no ack within ack_timeout_s, or the connection dropped first).
Receipts: the ``msg`` handler stamps the time on its first line, before anything can yield, then
confirms the delivery to the server by returning an ack. Resume: every (re)connect sends
``auth = {"token", "last_seen"}``, where ``last_seen`` is the server ``offset`` of the last message received
(None before the first); servers that replay "everything after X" use it, others ignore it.
Drivers record; they never judge.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import defaultdict
from typing import Any

import gevent
import socketio
from locust import User, task

from harness.run_context import RunContext, Slot

__all__ = ["SocketIODeliveryUser"]

log = logging.getLogger(__name__)


class SocketIODeliveryUser(User):
    """One scenario user over python-socketio's client (websocket transport, automatic reconnects)."""

    abstract = True
    run_context: RunContext | None = None  # set by harness.locust_plugin at init

    def on_start(self) -> None:
        self.ctx = type(self).run_context
        assert self.ctx is not None, "harness.locust_plugin did not set up a run context"
        slot = self.ctx.claim_slot()
        if slot is None:
            log.warning("more Locust users than scenario users; this one stays idle")
            self.slot: Slot | None = None
            return
        self.slot = slot
        self.recipients = itertools.cycle(self.ctx.recipients_for(slot.user_id))
        self.seq: dict[str, int] = defaultdict(int)
        self.sent = 0
        self.epoch = 0
        self.connected = False
        self.last_offset: str | int | None = None
        self.pending: dict[str, tuple[str, int, float, int]] = {}  # msg_id -> (recipient, seq, deadline, t_ns)
        load = self.ctx.scenario.load
        self.interval = 1.0 / load.rate_per_user
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1.0,
                                   randomization_factor=0.2, handle_sigint=False, request_timeout=5)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("msg", self._on_msg)
        self._sweeper = gevent.spawn(self._sweep_ack_timeouts)
        self._connect_first_time()

    def _connect_first_time(self) -> None:
        assert self.slot is not None and self.ctx is not None
        deadline = time.monotonic() + self.ctx.scenario.load.connect_timeout_s
        while time.monotonic() < deadline and not self.ctx.stopped:
            try:
                self.sio.connect(self.slot.url, auth=self._auth, transports=["websocket"], wait_timeout=5,
                                 retry=False)
                return
            except socketio.exceptions.ConnectionError as exc:
                log.info("%s: connect failed (%s); retrying", self.slot.user_id, exc)
                gevent.sleep(0.5)

    def _auth(self) -> dict[str, Any]:
        """Evaluated by python-socketio on every (re)connect, so the resume point is always current."""
        assert self.slot is not None
        return {"token": self.slot.token, "last_seen": self.last_offset}

    # -- connection events -------------------------------------------------------------------------------
    def _on_connect(self) -> None:
        assert self.ctx is not None and self.slot is not None
        self.epoch += 1
        self.connected = True
        self.ctx.tracker.connected.add(self.slot.user_id)
        if self.epoch > 1:
            self.ctx.tracker.counts["reconnects"] += 1
        self.ctx.writer.append(process=self.slot.user_id, type="event", f="connect", conn=self.epoch,
                               data={"cohort": self.slot.cohort})

    def _on_disconnect(self, *reason: Any) -> None:
        assert self.ctx is not None and self.slot is not None
        self.connected = False
        self.ctx.tracker.connected.discard(self.slot.user_id)
        why = str(reason[0]) if reason else "disconnected"
        self.ctx.writer.append(process=self.slot.user_id, type="event", f="disconnect", conn=self.epoch, error=why)
        for msg_id in list(self.pending):
            self._complete(msg_id, "info", "connection dropped before the ack")

    # -- receiving -----------------------------------------------------------------------------------------
    def _on_msg(self, data: Any) -> bool:
        t_ns = time.time_ns()  # first: the receipt time is stamped before anything can yield
        assert self.ctx is not None and self.slot is not None
        if not isinstance(data, dict):
            data = {"id": f"malformed:{data!r:.80}"}
        msg_id = str(data.get("id"))
        seq = data.get("seq")
        extra = {k: data[k] for k in ("emit_id", "resent") if k in data}
        offset = data.get("offset", data.get("emit_id"))
        if "offset" in data and isinstance(data["offset"], str | int):
            self.last_offset = data["offset"]
        self.ctx.writer.append(
            t_ns=t_ns, process=self.slot.user_id, type="ok", f="recv", msg_id=msg_id,
            sender=data.get("from") if isinstance(data.get("from"), str) else None,
            recipient=self.slot.user_id, seq=seq if isinstance(seq, int) else None, conn=self.epoch,
            offset=None if offset is None else str(offset), data=extra or None,
        )
        self.ctx.tracker.receipt(msg_id)
        if "offset" in data:  # offset-based servers trim on an explicit ack of that offset
            try:
                self.sio.emit("ack", {"offset": data["offset"]})
            except Exception:  # disconnected meanwhile: the server will resend, which is its job
                pass
        sent_ns = data.get("sent_ns")
        if isinstance(sent_ns, int):
            self._stat("deliver", (t_ns - sent_ns) / 1e6, None)
        return True  # the ack a buffering server waits for

    def _stat(self, name: str, ms: float, error: str | None) -> None:
        """A row in Locust's own statistics (low-cardinality names), so its CSV and HTML carry our latencies."""
        self.environment.events.request.fire(
            request_type="SIO", name=name, response_time=ms, response_length=0,
            exception=RuntimeError(error) if error else None, context={},
        )

    # -- sending -------------------------------------------------------------------------------------------
    @task
    def send_next(self) -> None:
        ctx = self.ctx
        if ctx is None or self.slot is None or not ctx.sending or not self.connected:
            gevent.sleep(0.05)
            return
        if self.sent >= ctx.scenario.load.max_messages_per_user:
            gevent.sleep(0.2)
            return
        started = time.monotonic()
        recipient = next(self.recipients)
        self.seq[recipient] += 1
        seq = self.seq[recipient]
        msg_id = ctx.message_id(self.slot.user_id, recipient, seq)
        self.sent += 1
        invoked_ns = ctx.writer.append(process=self.slot.user_id, type="invoke", f="send", msg_id=msg_id,
                          sender=self.slot.user_id, recipient=recipient, seq=seq, conn=self.epoch)
        ctx.tracker.invoked(msg_id)
        self.pending[msg_id] = (recipient, seq, time.monotonic() + ctx.scenario.load.ack_timeout_s, invoked_ns)
        payload = {"id": msg_id, "to": recipient, "seq": seq, "sent_ns": invoked_ns}
        try:
            self.sio.emit("send", payload, callback=lambda *ack: self._on_ack(msg_id, ack))
        except Exception as exc:  # never left this process: definitely not delivered
            self._complete(msg_id, "fail", f"emit failed: {exc}")
        gevent.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def _on_ack(self, msg_id: str, ack: tuple[Any, ...]) -> None:
        reply = ack[0] if ack else None
        if isinstance(reply, dict) and reply.get("ok") is True:
            self._complete(msg_id, "ok", None)
        elif isinstance(reply, dict) and "ok" in reply and reply["ok"] is None:  # the server does not know
            self._complete(msg_id, "info", str(reply.get("error") or "server: outcome unknown"))
        else:
            error = reply.get("error") if isinstance(reply, dict) else None
            self._complete(msg_id, "fail", str(error or f"server refused: {reply!r:.80}"))

    def _complete(self, msg_id: str, kind: str, error: str | None) -> None:
        assert self.ctx is not None and self.slot is not None
        entry = self.pending.pop(msg_id, None)
        if entry is None:
            return  # already completed (e.g. an ack arriving after its timeout): one completion per send
        recipient, seq, _, invoked_ns = entry
        done_ns = self.ctx.writer.append(process=self.slot.user_id, type=kind, f="send", msg_id=msg_id,
                                         sender=self.slot.user_id, recipient=recipient, seq=seq, conn=self.epoch,
                                         error=error)
        self.ctx.tracker.completed(msg_id, kind, recipient)
        self._stat("send→ack", (done_ns - invoked_ns) / 1e6, None if kind == "ok" else f"{kind}: {error}")

    def _sweep_ack_timeouts(self) -> None:
        while True:
            gevent.sleep(0.1)
            now = time.monotonic()
            for msg_id, (_, _, deadline, _) in list(self.pending.items()):
                if deadline <= now:
                    self._complete(msg_id, "info", "no ack within ack_timeout_s")

    def on_stop(self) -> None:
        if getattr(self, "slot", None) is None:
            return
        self._sweeper.kill(block=False)
        try:
            self.sio.disconnect()
        except Exception:  # already gone
            pass
