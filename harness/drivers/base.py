"""DeliveryUser: the protocol-independent half of every driver.

It claims a scenario user (slot), mints message ids and sequence numbers, writes every ledger row
(invoke, exactly one completion per send, receipts, connects, disconnects), keeps the pending-send map
with ack timeouts (the live tracker follows the rows). A protocol driver subclasses it and implements four
methods; it calls back ``connected()``, ``disconnected(reason)``, ``received(data, t_ns)`` and
``replied(msg_id, reply)`` / ``completed(msg_id, kind, error)``. Drivers record; they never judge.

    class MyUser(DeliveryUser):
        abstract = True                      # concrete classes are created by the harness
        def open(self) -> None: ...          # connect (and keep reconnecting by yourself)
        def is_open(self) -> bool: ...
        def transmit(self, msg_id: str, payload: dict) -> None: ...   # send; reply later via replied()
        def close(self) -> None: ...

Rooms (a scenario whose cohorts have ``rooms``): the driver also implements
``transmit_membership(action, room)`` (ask the server to ``join`` / ``leave``; answer via
``membership_replied(action, room, reply)``); the base asks to join the cohort's rooms on the first connect and
again after every reconnect (``rejoin_after_connect``: a server that keeps rooms per socket forgets them),
performs the scenario's ``[[membership]]`` changes, and sends ``{id, room, seq, sent_ns}`` (no ``to``) to a
cohort with ``send_to = "rooms"``.

A driver with settings declares them as a pydantic model ``Options`` (class attribute); the scenario's
``[target.NAME.options]`` is checked against it when the load process starts, and each user reads the
result as ``self.options`` (``harness.drivers.options``). ``self.slot.urls`` holds one proxy URL per named
port of the target (``self.slot.url`` is the first).
"""

from __future__ import annotations

import gc
import itertools
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, ClassVar

import gevent
from locust import User, task
from pydantic import BaseModel

from harness.drivers.options import parse_options
from harness.run.context import RunContext, Slot

__all__ = ["DeliveryUser"]

log = logging.getLogger(__name__)

_gc_tuned = False


def _tune_gc_once() -> None:
    """When sending starts: move everything set up so far (connections, users) out of the collector's
    reach and collect the young generation less often. Full collections otherwise stall every user at
    once (tens of ms at p99; see ../shared/reference/performance-anchors.md)."""
    global _gc_tuned
    if not _gc_tuned:
        _gc_tuned = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)


class DeliveryUser(User):
    """Abstract base of every driver; see the module docstring for the contract."""

    abstract = True
    run_context: RunContext | None = None  # set by harness.locust_ext.plugin at init
    Options: ClassVar[type[BaseModel] | None] = None
    """The driver's settings model; None: the driver takes no options."""
    options: Any = None
    """This run's settings (an ``Options`` instance), set before ``open()``."""

    # -- protocol hooks (subclasses implement) ------------------------------------------------------------
    def open(self) -> None:
        raise NotImplementedError

    def is_open(self) -> bool:
        raise NotImplementedError

    def transmit(self, msg_id: str, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def transmit_membership(self, action: str, room: str) -> None:
        """Ask the server to ``join`` or ``leave`` ``room``; answer later via ``membership_replied``. Only drivers
        of targets that serve rooms implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not speak rooms (join/leave)")

    def rejoin_after_connect(self) -> bool:
        """Ask again to join the user's rooms after this (re)connect? Yes by default, as an app's connect handler
        does; a driver whose protocol restores rooms itself (connection state recovery) says no when it did."""
        return True

    # -- lifecycle ------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        self.ctx = type(self).run_context
        assert self.ctx is not None, "harness.locust_ext.plugin did not set up a run context"
        slot = self.ctx.claim_slot()
        self.slot: Slot | None = slot
        if slot is None:
            log.warning("more Locust users than scenario users; this one stays idle")
            return
        self.recipients = self.ctx.recipients_for(slot.user_id)
        self.seq: dict[str, int] = defaultdict(int)
        self.sent = 0
        self.epoch = 0
        self.last_offset: str | int | None = None
        """Server offset of the last message received: the resume point sent on reconnect."""
        self.pending: dict[str, tuple[str, int, float, int]] = {}  # msg_id -> (recipient, seq, deadline, t_ns)
        self.interval = 1.0 / self.ctx.scenario.rate_for(slot.cohort)
        self._sweeper: gevent.Greenlet | None = None
        self.options = self._options(self.ctx)
        cohort = next(c for c in self.ctx.scenario.cohorts if c.name == slot.cohort)
        self.rooms: set[str] = set(cohort.rooms)
        """Rooms this user is a member of (or has asked to join): joined again after a reconnect."""
        self.room_targets: Iterator[str] | None = itertools.cycle(cohort.rooms) if cohort.send_to == "rooms" else None
        self.listens_only = cohort.send_to == "nobody"
        self.membership_pending: dict[str, tuple[str, float]] = {}  # room -> (action in flight, deadline)
        self.membership_queued: dict[str, list[str]] = {}
        """Requests waiting for the one in flight on the same room: one at a time per room, so the server sees
        them in the order they were asked and every answer belongs to exactly one request."""
        self.open()
        self._schedule_membership_changes()

    def on_stop(self) -> None:
        if getattr(self, "slot", None) is None:
            return
        if self._sweeper is not None:
            self._sweeper.kill(block=False)
        try:
            self.close()
        except Exception:  # already gone
            pass

    @classmethod
    def _options(cls, ctx: RunContext) -> BaseModel | None:
        """The target's ``[options]`` under this driver's model (already checked when the scenario was loaded;
        a ``--driver`` override that does not take them fails here, loudly)."""
        definition = ctx.scenario.target.get(ctx.target)
        return parse_options(cls.Options, definition.options if definition is not None else {})

    @property
    def user_id(self) -> str:
        assert self.slot is not None
        return self.slot.user_id

    # -- callbacks for the protocol half -----------------------------------------------------------------
    def connected(self, **data: Any) -> None:
        assert self.ctx is not None and self.slot is not None
        self.epoch += 1
        self.ctx.writer.append(process=self.user_id, type="event", f="connect", conn=self.epoch,
                               data={"cohort": self.slot.cohort, **data})
        if getattr(self, "rooms", None) and (self.epoch == 1 or self.rejoin_after_connect()):
            gevent.spawn(self._join_all, sorted(self.rooms))

    # -- rooms ------------------------------------------------------------------------------------------------
    def _join_all(self, rooms: list[str]) -> None:
        for room in rooms:
            self.ask_membership("join", room)

    def ask_membership(self, action: str, room: str) -> None:
        """Ask to ``join`` / ``leave`` ``room`` now, or right after the request in flight on that room is answered."""
        if room in self.membership_pending:
            self.membership_queued.setdefault(room, []).append(action)
            return
        self._send_membership(action, room)

    def _send_membership(self, action: str, room: str) -> None:
        """Record the request (``invoke`` row), ask the server, and give it ``ack_timeout_s`` to answer."""
        assert self.ctx is not None
        if action == "join":
            self.rooms.add(room)
        else:
            self.rooms.discard(room)
        self.ctx.writer.append(process=self.user_id, type="invoke", f=action, room=room, conn=self.epoch)
        deadline = time.monotonic() + self.ctx.scenario.load.ack_timeout_s
        self.membership_pending[room] = (action, deadline)
        gevent.spawn_later(self.ctx.scenario.load.ack_timeout_s + 0.01, self._membership_timeout, action, room,
                           deadline)
        try:
            self.transmit_membership(action, room)
        except NotImplementedError:
            raise
        except Exception as exc:  # never left this process
            self.membership_replied(action, room, {"ok": False, "error": f"failed before leaving the client: {exc}"})

    def membership_replied(self, action: str, room: str, reply: Any) -> None:
        """The server's answer to a join/leave (``None``: no answer, outcome unknown); later answers ignored."""
        assert self.ctx is not None
        in_flight = self.membership_pending.get(room)
        if in_flight is None or in_flight[0] != action:
            return
        del self.membership_pending[room]
        if isinstance(reply, dict) and reply.get("ok") is True:
            kind, error = "ok", None
        elif isinstance(reply, dict) and reply.get("ok") is False:
            kind, error = "fail", str(reply.get("error") or "server refused")
        else:
            kind, error = "info", str(reply.get("error")) if isinstance(reply, dict) and reply.get("error") \
                else "no answer"
        if kind == "fail":  # refused (or never sent): the membership is what it was before the request
            if action == "join":
                self.rooms.discard(room)
            else:
                self.rooms.add(room)
        self.ctx.writer.append(process=self.user_id, type=kind, f=action, room=room, conn=self.epoch, error=error)
        queued = self.membership_queued.get(room)
        if queued:
            self._send_membership(queued.pop(0), room)

    def _membership_timeout(self, action: str, room: str, deadline: float) -> None:
        if self.membership_pending.get(room) == (action, deadline):
            self.membership_replied(action, room, {"ok": None, "error": "no answer within ack_timeout_s"})

    def _schedule_membership_changes(self) -> None:
        """The scenario's ``[[membership]]`` changes for this user's cohort, from the start of sending."""
        assert self.ctx is not None and self.slot is not None
        changes = [c for c in self.ctx.scenario.membership if c.cohort == self.slot.cohort]
        if not changes:
            return
        seed = self.ctx.scenario.seed
        plan = sorted((at + (random.Random(f"{seed}:{self.user_id}:{c.room}:{k}").uniform(0, c.spread_s)
                             if c.spread_s else 0.0), c.action, c.room)
                      for c in changes for k, at in enumerate(c.starts()))

        def perform() -> None:
            ctx = self.ctx
            assert ctx is not None
            while not ctx.sending and not ctx.stopped:
                gevent.sleep(0.05)
            began = time.monotonic()
            for at, action, room in plan:
                gevent.sleep(max(0.0, began + at - time.monotonic()))
                if ctx.stopped or not ctx.sending:
                    return
                self.ask_membership(action, room)

        gevent.spawn(perform)

    def disconnected(self, reason: str) -> None:
        assert self.ctx is not None
        self.ctx.writer.append(process=self.user_id, type="event", f="disconnect", conn=self.epoch, error=reason)
        for msg_id in list(self.pending):
            self.completed(msg_id, "info", "connection dropped before the ack")

    def received(self, data: Any, t_ns: int) -> None:
        """Record one delivered message; ``t_ns`` must be taken first thing in the protocol's handler."""
        assert self.ctx is not None
        if not isinstance(data, dict):
            data = {"id": f"malformed:{data!r:.80}"}
        msg_id = str(data.get("id"))
        seq = data.get("seq")
        offset = data.get("offset", data.get("emit_id"))
        if isinstance(data.get("offset"), str | int):
            self.last_offset = data["offset"]
        extra = {k: data[k] for k in ("emit_id", "resent") if k in data}
        room = data.get("room")
        self.ctx.writer.append(
            t_ns=t_ns, process=self.user_id, type="ok", f="recv", msg_id=msg_id,
            sender=data.get("from") if isinstance(data.get("from"), str) else None,
            recipient=self.user_id, seq=seq if isinstance(seq, int) else None, conn=self.epoch,
            offset=None if offset is None else str(offset), data=extra or None,
            room=room if isinstance(room, str) else None,
        )
        sent_ns = data.get("sent_ns")
        if isinstance(sent_ns, int):
            self.stat("deliver", (t_ns - sent_ns) / 1e6, None)

    def replied(self, msg_id: str, reply: Any) -> None:
        """The server's answer to a send: ``{"ok": true}`` ok, ``{"ok": false}`` fail, ``{"ok": null}`` info."""
        if isinstance(reply, dict) and reply.get("ok") is True:
            self.completed(msg_id, "ok", None)
        elif isinstance(reply, dict) and "ok" in reply and reply["ok"] is None:
            self.completed(msg_id, "info", str(reply.get("error") or "server: outcome unknown"))
        else:
            error = reply.get("error") if isinstance(reply, dict) else None
            self.completed(msg_id, "fail", str(error or f"server refused: {reply!r:.80}"))

    def completed(self, msg_id: str, kind: str, error: str | None) -> None:
        """Record a send's one completion (later ones, e.g. an ack after its timeout, are ignored)."""
        assert self.ctx is not None
        entry = self.pending.pop(msg_id, None)
        if entry is None:
            return
        recipient, seq, _, invoked_ns = entry
        room = recipient[1:] if recipient.startswith("#") else None  # a room send (see send_next)
        done_ns = self.ctx.writer.append(process=self.user_id, type=kind, f="send", msg_id=msg_id,
                                         sender=self.user_id, recipient=None if room else recipient, room=room,
                                         seq=seq, conn=self.epoch, error=error)
        # Every completion is a Locust success with its latency: an ack timeout or a refusal is not a delivery
        # failure (a message acked late, or refused, is not lost); lost messages are the failures that matter.
        self.stat("send→ack", (done_ns - invoked_ns) / 1e6, None)

    def stat(self, name: str, ms: float, error: str | None) -> None:
        """A row in Locust's own statistics (low-cardinality names), so its CSV and HTML carry our latencies."""
        self.environment.events.request.fire(
            request_type="DLV", name=name, response_time=ms, response_length=0,
            exception=RuntimeError(error) if error else None, context={},
        )

    # -- the send loop ---------------------------------------------------------------------------------------
    _pause_s = 0.05
    """How long the user waits before its next ``send_next``: set by each ``send_next``, returned by ``wait_time``."""

    def wait_time(self) -> float:
        """Locust's wait between tasks is the send loop's pacing: one sleep per message (Locust's default, a zero
        wait after every task, is a second trip through the event loop), and a stopping user is stopped while it
        waits, not after it."""
        return self._pause_s

    @task
    def send_next(self) -> None:
        ctx = self.ctx
        if ctx is None or self.slot is None or not ctx.sending or not self.is_open():
            self._pause_s = 0.05
            return
        if self.sent >= ctx.scenario.load.max_messages_per_user or self.listens_only:
            self._pause_s = 0.2
            return
        if not _gc_tuned:
            _tune_gc_once()
        started = time.monotonic()
        room = next(self.room_targets) if self.room_targets is not None else None
        recipient = f"#{room}" if room is not None else next(self.recipients)  # "#room": the stream key of a room
        self.seq[recipient] += 1
        seq = self.seq[recipient]
        msg_id = ctx.message_id(self.user_id, recipient, seq)
        self.sent += 1
        invoked_ns = ctx.writer.append(process=self.user_id, type="invoke", f="send", msg_id=msg_id,
                                       sender=self.user_id, recipient=None if room else recipient, room=room,
                                       seq=seq, conn=self.epoch)
        self.pending[msg_id] = (recipient, seq, time.monotonic() + ctx.scenario.load.ack_timeout_s, invoked_ns)
        if self._sweeper is None or self._sweeper.dead:
            self._sweeper = gevent.spawn(self._sweep_ack_timeouts)
        address = {"room": room} if room is not None else {"to": recipient}
        try:
            self.transmit(msg_id, {"id": msg_id, **address, "seq": seq, "sent_ns": invoked_ns})
        except Exception as exc:  # never left this process: definitely not delivered
            self.completed(msg_id, "fail", f"send failed before leaving the client: {exc}")
        self._pause_s = max(0.0, self.interval - (time.monotonic() - started))

    def _sweep_ack_timeouts(self) -> None:
        """Runs only while sends are pending (idle users cost no wake-ups), waking at the oldest deadline;
        pending is in send order, so deadlines are too."""
        while self.pending:
            _, _, deadline, _ = next(iter(self.pending.values()))
            gevent.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
            now = time.monotonic()
            for msg_id, (_, _, due, _) in list(self.pending.items()):
                if due > now:
                    break
                self.completed(msg_id, "info", "no ack within ack_timeout_s")
