"""Drives one run inside the Locust process: connect → send under faults → heal → drain → end.

Phases written to the ledger (``f = "phase"``): ``connecting``, ``start``, ``drain_start``,
``drain_end`` (with ``quiescent``), ``end``. A ledger without ``end`` is an incomplete run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import gevent

from harness.run.context import RunContext
from harness.run.timeline import TimelineFault

__all__ = ["RunController"]

log = logging.getLogger(__name__)


class RunController:
    """Runs the phases once; ``finished`` is True only if the run reached ``end``."""

    def __init__(self, ctx: RunContext, faults: Sequence[TimelineFault], quit_runner: Callable[[], None]) -> None:
        self.ctx = ctx
        self.faults = faults
        self.quit_runner = quit_runner
        self.finished = False
        self.phase = "idle"
        self._greenlets: list[gevent.Greenlet] = []

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

    def _run_fault(self, fault: TimelineFault, t0: float) -> None:
        for start in fault.spec.starts(self.ctx.scenario.seed):
            gevent.sleep(max(0.0, t0 + start - time.monotonic()))
            if not self.ctx.sending:
                return
            try:
                fault.inject()
                gevent.sleep(max(0.0, t0 + start + fault.spec.duration_s - time.monotonic()))
                fault.heal()
            except Exception:
                log.exception("fault %s failed", fault.spec.name)

    def _drain(self) -> bool:
        drain = self.ctx.scenario.drain
        deadline = time.monotonic() + drain.timeout_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self.ctx.tracker.quiescent():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= drain.settle_s:
                    return True
            else:
                quiet_since = None
            gevent.sleep(0.05)
        return self.ctx.tracker.quiescent()

    def run(self) -> None:
        """The whole run; meant to be spawned as its own greenlet."""
        try:
            self._phase("connecting", users=len(self.ctx.slots))
            connected = self._wait_connected()
            t0 = time.monotonic()
            self._phase("start", connected=connected, users=len(self.ctx.slots))
            self.ctx.set_flags(sending=True)
            self._greenlets = [gevent.spawn(self._run_fault, f, t0) for f in self.faults]
            gevent.sleep(self.ctx.scenario.load.duration_s)
            self.ctx.set_flags(sending=False)
            gevent.killall(self._greenlets, block=True, timeout=5)
            for fault in self.faults:
                try:
                    fault.heal()
                except Exception:
                    log.exception("healing fault %s failed", fault.spec.name)
            self._phase("drain_start")
            quiescent = self._drain()
            self._phase("drain_end", quiescent=quiescent, outstanding=len(self.ctx.tracker.outstanding),
                        in_flight=len(self.ctx.tracker.in_flight))
            self._phase("end")
            self.finished = True
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("run controller crashed; the run is incomplete")
        finally:
            self.ctx.set_flags(sending=False, stopped=True)
            self.quit_runner()
