"""Faults in a scenario's timeline: each one is injected, later healed, and both go into the ledger.

A timeline fault is a small object with ``inject()`` and ``heal()``. ``ToxicFault`` adds Toxiproxy toxics
to one cohort's listeners (one per direction for ``stream = "both"``, on the fault's ``port`` or on every
port of the target); process faults (kill/restart a target or the store) plug in behind the same two methods.

Traffic evidence in a fault row (``traffic_before``, ``traffic_at``): ``bytes`` sums the byte counters of
the listeners the fault sits on, per direction (what ``harness.checker.experiment`` reads: did the fault
touch traffic?); ``ports`` gives each port's own counters, so a fault on ``sub`` shows the ``sub`` listener
alone and the ``pub`` listener, not faulted, appears nowhere in it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from harness.config import FaultSpec
from harness.faults.client import ToxiproxyClient
from harness.ledger.recorder import LedgerWriter
from harness.run.targets import DEFAULT_PORT

if TYPE_CHECKING:
    from harness.run.stack import Stack

__all__ = ["TimelineFault", "ToxicFault", "ProcessFault", "build_faults"]


class TimelineFault(Protocol):
    spec: FaultSpec

    def prepare(self) -> None:
        """Measure the traffic the fault is about to hit (called about a second before ``inject``)."""
        ...

    def inject(self, source: str = "timeline") -> None: ...

    def heal(self, source: str = "timeline") -> None: ...


def _stamp(counts: Mapping[str, dict[str, tuple[int, int]] | None]) -> dict[str, object] | None:
    """Byte counters of the fault's listeners (port → direction → (received, sent)) with the time they were
    read, for the ledger: ``bytes`` summed over the ports, ``ports`` each one's. None when any listener's
    counters are missing (the proxy serves no metrics): a partial sum would understate the traffic."""
    if not counts or any(c is None for c in counts.values()):
        return None
    total: dict[str, dict[str, int]] = {}
    ports: dict[str, dict[str, dict[str, int]]] = {}
    for port, per_direction in counts.items():
        assert per_direction is not None
        ports[port] = {d: {"received": r, "sent": s} for d, (r, s) in per_direction.items()}
        for direction, (received, sent) in per_direction.items():
            into = total.setdefault(direction, {"received": 0, "sent": 0})
            into["received"] += received
            into["sent"] += sent
    return {"t_ns": time.time_ns(), "bytes": total, "ports": ports}


class ToxicFault:
    """A toxic on one cohort's proxy listeners (port name → proxy name); ``heal`` is idempotent."""

    def __init__(self, spec: FaultSpec, client: ToxiproxyClient, proxies: str | Mapping[str, str],
                 writer: LedgerWriter) -> None:
        self.spec = spec
        self.client = client
        self.proxies: dict[str, str] = {DEFAULT_PORT: proxies} if isinstance(proxies, str) else dict(proxies)
        """The listeners this fault sits on, by port name."""
        self.writer = writer
        self.active = False
        self._added: list[tuple[str, str]] = []
        """(proxy, direction) whose toxic the proxy accepted and that is not removed yet."""
        self._before: dict[str, object] | None = None
        self._lock = threading.Lock()

    def _toxic_name(self, stream: str) -> str:
        return f"{self.spec.name}_{stream}"

    @property
    def proxy_name(self) -> str:
        """The first listener's proxy name (a fault on one port has only one)."""
        return next(iter(self.proxies.values()))

    def _record(self, action: str, source: str, **evidence: object) -> None:
        self.writer.append(process="controller", type="event", f="fault", data={
            "action": action, "fault": self.spec.name, "type": self.spec.type, "cohort": self.spec.cohort,
            "port": self.spec.port, "ports": list(self.proxies), "listeners": list(self.proxies.values()),
            "stream": self.spec.stream, "attributes": dict(self.spec.attributes), "toxicity": self.spec.toxicity,
            "source": source, **{k: v for k, v in evidence.items() if v is not None},
        })

    def _traffic(self) -> dict[str, object] | None:
        """The listeners' byte counters now (the measured effect of the fault, not the timeline's claim)."""
        try:
            return _stamp({port: self.client.byte_counts(name) for port, name in self.proxies.items()})
        except Exception:  # evidence is best effort; its absence is visible in the ledger
            return None

    def prepare(self) -> None:
        self._before = self._traffic()

    def bytes_received(self) -> int | None:
        """Bytes its listeners have received so far, both directions (None: the proxy keeps no counters)."""
        try:
            counts = [self.client.byte_counts(name) for name in self.proxies.values()]
        except Exception:
            return None
        if any(c is None for c in counts):
            return None
        return sum(received for per_direction in counts if per_direction
                   for received, _ in per_direction.values())

    def inject(self, source: str = "timeline") -> None:
        """Add one toxic per listener and direction; if any is refused, remove those already added and raise."""
        with self._lock:
            if self.active:
                return
            try:
                for proxy in self.proxies.values():
                    for stream in self.spec.streams:
                        self.client.add_toxic(proxy, self.spec.type, stream=stream,
                                              name=self._toxic_name(stream), toxicity=self.spec.toxicity,
                                              attributes=dict(self.spec.attributes))
                        self._added.append((proxy, stream))
            except BaseException:
                self._remove_added()
                raise
            self.active = True
            self._record("inject", source, traffic_before=self._before, traffic_at=self._traffic())
            self._before = None

    def _remove_added(self) -> None:
        while self._added:
            proxy, stream = self._added[-1]
            self.client.remove_toxic(proxy, self._toxic_name(stream))
            self._added.pop()

    def heal(self, source: str = "timeline") -> None:
        with self._lock:
            if not self.active:
                return
            self._remove_added()
            self.active = False
            self._record("heal", source, traffic_at=self._traffic())


class ProcessFault:
    """Stop the target or the store at inject (SIGKILL or SIGTERM), start it again at heal."""

    def __init__(self, spec: FaultSpec, stack: Stack, writer: LedgerWriter) -> None:
        self.spec = spec
        self.stack = stack
        self.writer = writer
        self.active = False
        self._lock = threading.Lock()

    def _record(self, action: str, source: str, **evidence: object) -> None:
        self.writer.append(process="controller", type="event", f="fault", data={
            "action": action, "fault": self.spec.name, "type": self.spec.type, "cohort": None, "source": source,
            **evidence})

    def prepare(self) -> None:
        """Nothing to measure ahead: the processes' PIDs are recorded at inject and heal."""

    def inject(self, source: str = "timeline") -> None:
        with self._lock:
            if self.active:
                return
            self._record("inject", source, pids=self.stack.pids())
            sig = signal.SIGKILL if self.spec.type.startswith("kill") else signal.SIGTERM
            if self.spec.type == "rolling_restart":
                self.stack.rolling_restart()  # complete when it returns: heal only records the end
            elif self.spec.type.endswith("_store"):
                self.stack.stop_store(sig)
            else:
                self.stack.stop_target(sig)
            self.active = True

    def heal(self, source: str = "timeline") -> None:
        with self._lock:
            if not self.active:
                return
            if self.spec.type.endswith("_store"):
                self.stack.start_store()
            elif self.spec.type != "rolling_restart":
                self.stack.start_target()
            self.active = False
            self._record("heal", source, pids=self.stack.pids())


def build_faults(specs: list[FaultSpec], stack: Stack, writer: LedgerWriter) -> list[TimelineFault]:
    """One timeline fault per spec: toxics on the cohort's proxy, process faults on the stack."""
    faults: list[TimelineFault] = []
    for spec in specs:
        if spec.is_process_fault:
            faults.append(ProcessFault(spec, stack, writer))
        else:
            assert stack.proxy_client is not None and spec.cohort is not None
            listeners = stack.port_proxies[spec.cohort]
            chosen = {spec.port: listeners[spec.port]} if spec.port is not None else listeners
            faults.append(ToxicFault(spec, stack.proxy_client, chosen, writer))
    return faults
