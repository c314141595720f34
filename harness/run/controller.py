"""Drives one run inside the Locust process: connect → send under faults → heal → drain → end.

Phases written to the ledger (``f = "phase"``): ``connecting``, ``start``, ``drain_start``,
``drain_end`` (with ``quiescent``), ``end``. A ledger without ``end`` is an incomplete run. ``start`` carries
what the checker holds the run to: users connected, the fault schedule, the health limits, ``fair_chance_s``
and ``ack_timeout_s`` (the margins around each fault that the acknowledged-share rule leaves out).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import gevent

from harness.run.context import RunContext
from harness.run.health import ProcessSampler
from harness.run.timeline import TimelineFault

__all__ = ["RunController"]

log = logging.getLogger(__name__)

_LEAD_S = 1.0
"""How long before each fault its traffic is measured (the baseline its effect is compared with)."""

_LATE_WARN_S = 0.5
"""An inject later than this behind its schedule is logged (the ledger's inject row has the true time)."""


class RunController:
    """Runs the phases once; ``finished`` is True only if the run reached ``end``."""

    def __init__(self, ctx: RunContext, faults: Sequence[TimelineFault], quit_runner: Callable[[], None],
                 sampler: ProcessSampler | None = None,
                 exits: Callable[[], list[dict[str, object]]] | None = None) -> None:
        self.ctx = ctx
        self.exits = exits or (lambda: [])
        """The stack's processes that ended on their own since last asked (``Stack.unexpected_exits``)."""
        self.faults = faults
        self.quit_runner = quit_runner
        self.sampler = sampler or ProcessSampler()
        self.finished = False
        self.phase = "idle"
        self._greenlets: list[gevent.Greenlet] = []
        self._acting: set[str] = set()
        """Faults whose inject or heal is running now (a restart in progress must not be cut in half)."""

    def _phase(self, name: str, **data: object) -> None:
        self.phase = name
        self.ctx.writer.append(process="controller", type="event", f="phase", data={"phase": name, **data})
        log.info("phase %s %s", name, data or "")

    def _wait_connected(self) -> int:
        deadline = time.monotonic() + self.ctx.scenario.load.connect_timeout_s
        wanted = len(self.ctx.slots)
        while len(self.ctx.tracker.connected) < wanted and time.monotonic() < deadline:
            gevent.sleep(0.05)
        return len(self.ctx.tracker.connected)

    def _schedule(self) -> list[dict[str, object]]:
        """What the timeline will do, written into the ``start`` phase so the checker can hold the run to it."""
        seed = self.ctx.scenario.seed
        return [{"fault": f.spec.name, "type": f.spec.type, "cohort": f.spec.cohort,
                 "starts_s": [round(s, 3) for s in f.spec.starts(seed)], "duration_s": f.spec.duration_s}
                for f in self.faults]

    def _unused_paths(self) -> list[str]:
        """Once everyone is connected: each faulted cohort's listener must have carried bytes, or its faults
        cannot bite (a driver that bypasses ``self.slot.url``). Said now, in the log and the start phase;
        the verdict's fault evidence later makes such a run unknown."""
        warnings: list[str] = []
        seen: set[str] = set()
        for fault in self.faults:
            measure = getattr(fault, "bytes_received", None)
            cohort = fault.spec.cohort
            if measure is None or cohort is None or cohort in seen:
                continue
            seen.add(cohort)
            if measure() == 0:
                url = f'self.slot.urls["{fault.spec.port}"]' if fault.spec.port else "self.slot.url"
                warnings.append(f"cohort {cohort}: its users are connected but nothing has passed its proxy "
                                f"listener, so fault {fault.spec.name} will touch no traffic (does the driver "
                                f"connect through {url}?)")
        for warning in warnings:
            log.warning(warning)
        return warnings

    def _fault_row(self, fault: TimelineFault, action: str, **data: object) -> None:
        self.ctx.writer.append(process="controller", type="event", f="fault", data={
            "action": action, "fault": fault.spec.name, "type": fault.spec.type, "cohort": fault.spec.cohort,
            **data})

    def _run_fault(self, fault: TimelineFault, t0: float) -> None:
        """Every occurrence is injected and healed, or the ledger says why not (the verdict is then unknown)."""
        for start in fault.spec.starts(self.ctx.scenario.seed):
            gevent.sleep(max(0.0, t0 + start - _LEAD_S - time.monotonic()))
            try:
                fault.prepare()
            except Exception:
                log.exception("fault %s: measuring before it failed", fault.spec.name)
            gevent.sleep(max(0.0, t0 + start - time.monotonic()))
            if not self.ctx.sending:
                self._fault_row(fault, "skipped", reason=f"sending had already stopped at {start:.1f} s")
                return
            try:
                self._acting.add(fault.spec.name)
                fault.inject()
            except Exception as exc:
                log.exception("fault %s could not be injected", fault.spec.name)
                self._fault_row(fault, "failed", step="inject", error=_describe(exc))
                continue
            finally:
                self._acting.discard(fault.spec.name)
            # The fault lasts its duration from when it bit: measured on a crowd run, a proxy call that took
            # 10 s made an 8 s outage last 0.9 s when the heal kept its planned time (a different experiment).
            injected = time.monotonic()
            late = injected - (t0 + start)
            if late > _LATE_WARN_S:
                log.warning("fault %s injected %.1f s late (the load process or the proxy API was slow); it still "
                            "lasts its %.1f s", fault.spec.name, late, fault.spec.duration_s)
            gevent.sleep(max(0.0, injected + fault.spec.duration_s - time.monotonic()))
            self._heal(fault)

    def _heal(self, fault: TimelineFault) -> None:
        try:
            self._acting.add(fault.spec.name)
            fault.heal()
        except Exception as exc:
            log.exception("fault %s could not be healed", fault.spec.name)
            self._fault_row(fault, "failed", step="heal", error=_describe(exc))
        finally:
            self._acting.discard(fault.spec.name)

    def _stop_faults(self, limit_s: float = 120.0) -> None:
        """At the end of sending: let an inject or heal in progress finish (a rolling restart killed halfway
        left an instance down and no heal row: 'never healed' on a busy machine), then stop the timelines and
        heal whatever is still active."""
        deadline = time.monotonic() + limit_s
        while self._acting and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if self._acting:
            log.error("fault(s) %s still acting after %.0f s; stopping them", sorted(self._acting), limit_s)
        gevent.killall(self._greenlets, block=True, timeout=5)
        for fault in self.faults:
            self._heal(fault)

    def _sample_health(self) -> None:
        """One ``health`` row a second for the whole run (the checker judges saturation from them)."""
        while True:
            try:
                for exit_ in self.exits():  # before the sample, which no longer lists the dead process
                    log.error("%s (PID %s) exited on its own with code %s during the run (phase %s): it is not "
                              "started again", exit_["role"], exit_["pid"], exit_["code"], self.phase)
                    self.ctx.writer.append(process="controller", type="event", f="process_exit",
                                           data={**exit_, "phase": self.phase})
                self.ctx.writer.append(process="controller", type="event", f="health", data=self.sampler.sample())
            except Exception:  # measuring must never end the run; a gap in samples is visible in the ledger
                log.exception("health sample failed")
            gevent.sleep(1.0)

    def _outstanding(self) -> int:
        """Acknowledged and not yet received: it falls only by receipts (sends in flight that time out would
        look like progress, and must not keep the drain going)."""
        return len(self.ctx.tracker.outstanding)

    def _drain(self) -> dict[str, object]:
        """Wait for quiescence for ``timeout_s``; past it, go on while the outstanding count keeps falling,
        up to ``limit_s``. Returns what ``drain_end`` records: quiescent, and whether it was still progressing."""
        drain = self.ctx.scenario.drain
        began = time.monotonic()
        quiet_since: float | None = None
        history: list[tuple[float, int]] = []  # (time, outstanding), one per second, for the progress rate
        while True:
            now = time.monotonic()
            if self.ctx.tracker.quiescent():
                quiet_since = quiet_since or now
                if now - quiet_since >= drain.settle_s:
                    return {"quiescent": True}
            else:
                quiet_since = None
            if not history or now - history[-1][0] >= 1.0:
                history.append((now, self._outstanding()))
                del history[:-6]
            rate = _falling_per_s(history)
            past_timeout = now - began >= drain.timeout_s
            if past_timeout and (rate <= 0 or now - began >= drain.limit_s):
                quiescent = self.ctx.tracker.quiescent()
                return {"quiescent": quiescent, "progressing": (not quiescent) and rate > 0,
                        "delivering_per_s": round(rate, 1), "drained_s": round(now - began, 2)}
            gevent.sleep(0.05)

    def run(self) -> None:
        """The whole run; meant to be spawned as its own greenlet."""
        scenario = self.ctx.scenario
        sampler = gevent.spawn(self._sample_health)
        try:
            self._phase("connecting", users=len(self.ctx.slots))
            connected = self._wait_connected()
            users = len(self.ctx.slots)
            sending = connected >= users * scenario.health.min_connected_share
            t0 = time.monotonic()
            unused = self._unused_paths() if sending else []
            self._phase("start", connected=connected, users=users, sending=sending,
                        **({"path_warnings": unused} if unused else {}),
                        faults=self._schedule() if sending else [],
                        health_limits=scenario.health.model_dump(), fair_chance_s=scenario.fair_chance_s,
                        ack_timeout_s=scenario.load.ack_timeout_s, planned_sends=scenario.planned_sends)
            if sending:
                self.ctx.set_flags(sending=True)
                self._greenlets = [gevent.spawn(self._run_fault, f, t0) for f in self.faults]
                gevent.sleep(scenario.load.duration_s)
                self.ctx.set_flags(sending=False)
                self._stop_faults()
            else:
                log.error("only %d of %d users connected within %.0f s: sending not started", connected, users,
                          scenario.load.connect_timeout_s)
            self._phase("drain_start")
            drained = self._drain()
            self._phase("drain_end", outstanding=len(self.ctx.tracker.outstanding),
                        in_flight=len(self.ctx.tracker.in_flight), **drained)
            self._phase("end")
            self.finished = True
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("run controller crashed; the run is incomplete")
        finally:
            sampler.kill(block=False)
            self.ctx.set_flags(sending=False, stopped=True)
            self.quit_runner()


def _falling_per_s(history: list[tuple[float, int]]) -> float:
    """How fast the outstanding count fell over the recorded window (0 when flat or rising)."""
    if len(history) < 2:
        return 0.0
    (t_first, first), (t_last, last) = history[0], history[-1]
    return max(0.0, (first - last) / (t_last - t_first)) if t_last > t_first else 0.0


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
