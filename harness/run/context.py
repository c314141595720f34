"""State one load process shares between its users and the run controller (no Locust import here)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.config import Scenario
from harness.ledger.recorder import LedgerRecorder, Row
from harness.run.targets import DEFAULT_PORT

__all__ = ["Slot", "CohortURL", "DeliveryTracker", "RunContext", "TrackerFields", "tracker_fields"]


class CohortURL(str):
    """A cohort's default listener URL that also carries every named port's listener (``urls``).

    ``Stack.cohort_url`` returns one, so a ``Slot(user, cohort, stack.cohort_url(cohort), token)`` built by
    code that predates named ports still gets ``slot.urls``; code that knows them passes ``urls=`` itself."""

    urls: dict[str, str]

    def __new__(cls, url: str, urls: Mapping[str, str]) -> CohortURL:
        made = super().__new__(cls, url)
        made.urls = dict(urls)
        return made


@dataclass(frozen=True)
class Slot:
    """One scenario user: its id, its cohort, and the URL of its cohort's proxy listener(s).

    ``url`` is the default (first) port's listener; ``urls`` maps each of the target's named ports to its
    own listener (``{"main": url}`` for a target with one port). Both go through the fault proxy: a driver
    that connects anywhere else is not faulted, and the fault evidence says so."""

    user_id: str
    cohort: str
    url: str
    token: str
    urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        urls = self.urls or getattr(self.url, "urls", None) or ({DEFAULT_PORT: str(self.url)} if self.url else {})
        object.__setattr__(self, "urls", dict(urls))
        object.__setattr__(self, "url", str(self.url))  # a plain str from here on (it is shipped to workers)


TRACKED = frozenset({"send", "recv", "join", "leave", "connect", "disconnect"})
"""The ledger functions the live tracker follows."""

TrackerFields = tuple[str, str, str, str | None, str | None, str | None, int | None]


def tracker_fields(row: Row) -> TrackerFields | None:
    """(f, type, process, msg_id, recipient, room, conn) of a row the live tracker follows, else None: all the
    tracker reads of a row (a few short strings instead of a whole row to ship or decode)."""
    f = row.get("f")
    if f not in TRACKED:
        return None
    room, recipient, conn = row.get("room"), row.get("recipient"), row.get("conn")
    return (str(f), str(row.get("type")), str(row.get("process")), row.get("msg_id"),
            None if recipient is None else str(recipient), None if room is None else str(room),
            None if conn is None else int(conn))


@dataclass
class DeliveryTracker:
    """Live counts for the drain and the UI, fed with every ledger row as it is recorded (``apply``), so a
    master fed with its workers' rows sees the same as a single process. The verdict never uses these.

    Memory is O(messages not yet settled + duplicates + users), not O(messages): an id is kept only while its send is in
    flight, while it is acknowledged and not yet received, or while its outcome is unknown and it has not
    arrived. A receipt of an id in none of these sets is a repeat (a live duplicate), so an hour-long soak at
    thousands of messages a second does not grow the tracker.
    """

    in_flight: set[str] = field(default_factory=set)
    """Sends invoked and not yet completed."""
    outstanding: dict[str, str] = field(default_factory=dict)
    """Acknowledged, not yet received: msg_id → recipient (what the drain waits for; "unseen now")."""
    early: set[str] = field(default_factory=set)
    """Received while the send was still in flight (the receipt overtook the ack)."""
    early_copies: dict[str, set[str]] = field(default_factory=dict)
    """Room sends still in flight → members whose copy already arrived."""
    unsettled: set[str] = field(default_factory=set)
    """Sends that ended ``info`` or ``fail`` and have not arrived (a first receipt may still come)."""
    unknown: dict[str, str] = field(default_factory=dict)
    """Receipts of ids this tracker has no send for (msg_id → receiver): repeats of settled messages, or
    receipts that arrived before their send row (distributed runs). Bounded by the duplicates."""
    connected: set[str] = field(default_factory=set)
    members: dict[str, set[str]] = field(default_factory=dict)
    """Room → users whose join was acknowledged and who have not asked to leave (the checker's strict
    membership): an acknowledged room send is outstanding for each of them but its sender."""
    by_user: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """Counts per user: sent/acked/failed/info by sender; received/duplicated/reconnects by recipient."""

    def _count(self, user: str, key: str) -> None:
        self.by_user[user][key] += 1

    def invoked(self, msg_id: str, user: str) -> None:
        self.in_flight.add(msg_id)
        self._count(user, "sent")
        receiver = self.unknown.pop(msg_id, None)
        if receiver is not None:  # its receipt overtook the send row: a first receipt after all
            self.by_user[receiver]["duplicated"] -= 1
            self.early.add(msg_id)

    def completed(self, msg_id: str, kind: str, recipient: str, user: str) -> None:
        self.in_flight.discard(msg_id)
        self._count(user, {"ok": "acked", "fail": "failed"}.get(kind, kind))
        if msg_id in self.early:
            self.early.discard(msg_id)  # already delivered: nothing left to wait for
        elif kind == "ok":
            self.outstanding[msg_id] = recipient
        else:
            self.unsettled.add(msg_id)

    def receipt(self, msg_id: str, user: str) -> None:
        self._count(user, "received")
        if self.outstanding.pop(msg_id, None) is not None:
            return
        if msg_id in self.in_flight and msg_id not in self.early:
            self.early.add(msg_id)
            return
        if msg_id in self.unsettled:
            self.unsettled.discard(msg_id)
            return
        # A repeat of a settled message, or (in a distributed run) a receipt whose send row is still on its way
        # from another load process: counted as a duplicate until its invoke shows up (see ``invoked``).
        self.by_user[user]["duplicated"] += 1
        self.unknown[msg_id] = user

    def memory_items(self) -> int:
        """Ids held right now (what the bound is about)."""
        return (len(self.in_flight) + len(self.outstanding) + len(self.early) + len(self.unsettled)
                + sum(len(copies) for copies in self.early_copies.values())
                + len(self.unknown))

    def reconnected(self, user: str) -> None:
        self._count(user, "reconnects")

    def room_completed(self, msg_id: str, kind: str, room: str, user: str) -> None:
        """A room send's completion: one outstanding copy per member at this moment (``msg_id@member``, the
        checker's expanded ids), except copies that already arrived."""
        self.in_flight.discard(msg_id)
        self._count(user, {"ok": "acked", "fail": "failed"}.get(kind, kind))
        arrived = self.early_copies.pop(msg_id, set())
        for member in self.members.get(room, ()):
            copy = f"{msg_id}@{member}"
            if member == user or member in arrived:
                continue
            if kind == "ok":
                self.outstanding[copy] = member
            else:
                self.unsettled.add(copy)

    def room_receipt(self, msg_id: str, user: str) -> None:
        copy = f"{msg_id}@{user}"
        self._count(user, "received")
        if self.outstanding.pop(copy, None) is not None:
            return
        if msg_id in self.in_flight:
            self.early_copies.setdefault(msg_id, set()).add(user)
        elif copy in self.unsettled:
            self.unsettled.discard(copy)
        # else: a repeat, or a copy to someone who was not a member (the checker judges it)

    def membership(self, f: str, kind: str, room: str, user: str) -> None:
        if f == "join" and kind == "ok":
            self.members.setdefault(room, set()).add(user)
        elif f == "leave" and kind == "invoke":
            self.members.get(room, set()).discard(user)

    def apply(self, row: Row) -> None:
        """Update the counts from one ledger row (rows that are not sends, receipts, memberships or connections
        are ignored)."""
        fields = tracker_fields(row)
        if fields is not None:
            self.apply_fields(*fields)

    def apply_fields(self, f: str, kind: str, user: str, msg_id: str | None, recipient: str | None,
                     room: str | None, conn: int | None) -> None:
        """``apply`` on what it reads of a row (``tracker_fields``): what a worker that keeps its own ledger
        shard sends the master for its live view, instead of the row."""
        if f == "send":
            if kind == "invoke":
                self.invoked(str(msg_id), user)
            elif room is not None:
                self.room_completed(str(msg_id), kind, room, user)
            else:
                self.completed(str(msg_id), kind, str(recipient), user)
        elif f == "recv":
            if room is not None:
                self.room_receipt(str(msg_id), recipient or user)
            else:
                self.receipt(str(msg_id), recipient or user)
        elif f in ("join", "leave"):
            if room is not None:
                self.membership(f, kind, room, user)
        elif f == "connect":
            self.connected.add(user)
            if (conn or 1) > 1:
                self.reconnected(user)
        elif f == "disconnect":
            self.connected.discard(user)

    def quiescent(self) -> bool:
        """Nothing in flight and every acked send delivered."""
        return not self.in_flight and not self.outstanding


@dataclass
class RunContext:
    """Everything a load process needs: the scenario, the ledger writer, the user slots."""

    scenario: Scenario
    target: str
    run_id: str
    writer: LedgerRecorder
    slots: list[Slot]
    tracker: DeliveryTracker = field(default_factory=DeliveryTracker)
    sending: bool = False
    stopped: bool = False
    flag_listeners: list[Callable[[bool, bool], None]] = field(default_factory=list)
    """Called with (sending, stopped) whenever the controller changes them (a master tells its workers)."""
    _next_slot: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    extra: dict[str, Any] = field(default_factory=dict)
    _slot_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.writer.observers.append(self.tracker.apply)

    def set_flags(self, *, sending: bool | None = None, stopped: bool | None = None) -> None:
        """Start or stop sending, or mark the run stopped, here and wherever listeners carry it."""
        if sending is not None:
            self.sending = sending
        if stopped is not None:
            self.stopped = stopped
        for listener in self.flag_listeners:
            listener(self.sending, self.stopped)

    def claim_slot(self) -> Slot | None:
        """The next unclaimed scenario user, or None when every slot is taken."""
        with self._lock:
            if self._next_slot >= len(self.slots):
                return None
            slot = self.slots[self._next_slot]
            self._next_slot += 1
            return slot

    def recipients_for(self, user_id: str) -> Iterator[str]:
        """Every other scenario user in slot order, round and round, starting with the one after the sender
        (no per-user copy of the list: with 15,000 users, copies would take gigabytes). Starting after the
        sender spreads traffic over every user from the first second: when all senders started at slot 0,
        a crowd sending slower than one round per run never reached the last cohort, and an outage there
        touched no message."""
        count = len(self.slots)
        if count < 2:
            return
        if len(self._slot_index) != count:
            self._slot_index = {slot.user_id: i for i, slot in enumerate(self.slots)}
        own = self._slot_index.get(user_id, -1)
        while True:
            for step in range(1, count + 1):
                slot = self.slots[(own + step) % count]
                if slot.user_id != user_id:
                    yield slot.user_id

    def message_id(self, sender: str, recipient: str, seq: int) -> str:
        return f"{self.run_id}:{sender}>{recipient}#{seq}"
