"""Samples the CPU and memory of every process of a run, for the ledger's ``health`` rows.

The checker (``harness.checker.health``) decides what the samples mean; this only measures. CPU is percent
of one core over the interval since the previous sample (psutil), so a single-threaded load process
saturates at 100.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import psutil

__all__ = ["ProcessSampler"]


class ProcessSampler:
    """CPU and RSS of named processes; a process that is gone (a killed target) is left out of that sample."""

    def __init__(self, pids: Callable[[], Mapping[str, int]] | None = None) -> None:
        """``pids`` returns role → PID each time (targets restart with new PIDs); this process is ``load``."""
        self._pids = pids or (lambda: {})
        self._procs: dict[int, psutil.Process] = {}

    def _process(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
            proc.cpu_percent(None)  # the first call only starts the interval
        return proc

    def sample(self) -> dict[str, dict[str, float]]:
        roles = {"load": os.getpid(), **self._pids()}
        cpu: dict[str, float] = {}
        rss: dict[str, float] = {}
        for role, pid in roles.items():
            try:
                proc = self._process(pid)
                with proc.oneshot():
                    cpu[role] = round(proc.cpu_percent(None), 1)
                    rss[role] = round(proc.memory_info().rss / 2**20, 1)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
        return {"cpu": cpu, "rss_mb": rss}
