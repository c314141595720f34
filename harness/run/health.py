"""Samples the CPU and memory of every process of a run, for the ledger's ``health`` rows.

The checker (``harness.checker.health``) decides what the samples mean; this only measures. CPU is percent
of one core over the interval since the previous sample (psutil), so a single-threaded load process
saturates at 100. A process seen for the first time reports memory only: its first CPU reading would cover
an interval of a few microseconds (a near-zero that would dilute a saturated process's share).

Roles: the sampling process itself is ``own_role`` (``load`` for a local run or a distributed master,
``load-<node>`` for a distributed worker, which samples only itself and ships the rows to the master).
``machine`` (local run and master only) is the whole host's CPU in the same unit (percent of one core, so
200 is both cores of a 2-core machine busy), with ``cores``: a per-process figure cannot show that other jobs
on a shared machine starved the run (a process that wants a core and gets a fifth reads 20 %).

``wait_pct`` (Linux): per role, the share of the interval its main thread spent *runnable but waiting* for
a CPU (``/proc/PID/schedstat``, the scheduler's run-queue time). A process that reads 25 % CPU because it
had nothing to do waits ~0; one that read 25 % because other work held the cores waits a lot. Recorded as
a fact; not yet judged (its thresholds are still to be measured on busy and quiet machines).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import psutil

__all__ = ["ProcessSampler", "run_queue_wait_ns"]


def run_queue_wait_ns(pid: int) -> int | None:
    """Total ns the process's main thread has waited on a run queue (None where the kernel does not say)."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as handle:
            return int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None


class ProcessSampler:
    """CPU and RSS of named processes; a process that is gone (a killed target) is left out of that sample."""

    def __init__(self, pids: Callable[[], Mapping[str, int]] | None = None, own_role: str = "load",
                 machine: bool = True) -> None:
        """``pids`` returns role → PID each time (targets restart with new PIDs); this process is ``own_role``;
        ``machine``: also sample the whole host (one sampler per host does: workers leave it to the master)."""
        self._pids = pids or (lambda: {})
        self.own_role = own_role
        self._procs: dict[int, psutil.Process] = {}
        self._waits: dict[int, tuple[int, int]] = {}
        """PID → (run-queue wait ns, monotonic ns) at the previous sample."""
        self._machine = machine
        self._cores = psutil.cpu_count() or 1
        if machine:
            psutil.cpu_percent(None)  # starts the host's interval

    def _process(self, pid: int) -> tuple[psutil.Process, bool]:
        """The process and whether it was already known (its CPU interval has a real start)."""
        proc = self._procs.get(pid)
        if proc is not None:
            return proc, True
        proc = self._procs[pid] = psutil.Process(pid)
        proc.cpu_percent(None)  # the first call only starts the interval
        return proc, False

    def sample(self) -> dict[str, Any]:
        roles = {self.own_role: os.getpid(), **self._pids()}
        cpu: dict[str, float] = {}
        rss: dict[str, float] = {}
        waits: dict[str, float] = {}
        now = time.monotonic_ns()
        for role, pid in roles.items():
            waited = run_queue_wait_ns(pid)
            if waited is not None:
                before = self._waits.get(pid)
                self._waits[pid] = (waited, now)
                if before is not None and now > before[1]:
                    waits[role] = round(100 * max(0, waited - before[0]) / (now - before[1]), 1)
            try:
                proc, known = self._process(pid)
                with proc.oneshot():
                    if known:
                        cpu[role] = round(proc.cpu_percent(None), 1)
                    rss[role] = round(proc.memory_info().rss / 2**20, 1)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
        extra = {"wait_pct": waits} if waits else {}
        if not self._machine:
            return {"cpu": cpu, "rss_mb": rss, **extra}
        cpu["machine"] = round(psutil.cpu_percent(None) * self._cores, 1)
        return {"cpu": cpu, "rss_mb": rss, "cores": self._cores, **extra}
