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
a fact; the checker turns a starved load process into a warning (``max_wait_pct``).

``probes``: more figures measured once a second in the same row, each a callable returning a dict merged into
the sample (``proxy_api_ms``: the round trip of the fault proxy's API, served on the same event loop as every
link it carries, so it is the proxy's event-loop lag plus a loopback HTTP call; ``locust_cpu_warning``: whether
Locust itself warned that its process was above 90 % CPU). A probe that fails leaves its figure out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psutil

__all__ = ["ProcessSampler", "run_queue_wait_ns", "proxy_api_probe"]


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
                 machine: bool = True, probes: Sequence[Callable[[], dict[str, Any]]] = ()) -> None:
        """``pids`` returns role → PID each time (targets restart with new PIDs); this process is ``own_role``;
        ``machine``: also sample the whole host (one sampler per host does: workers leave it to the master)."""
        self._pids = pids or (lambda: {})
        self.own_role = own_role
        self._procs: dict[int, psutil.Process] = {}
        self._waits: dict[int, tuple[int, int]] = {}
        """PID → (run-queue wait ns, monotonic ns) at the previous sample."""
        self._machine = machine
        self._probes = list(probes)
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
        extra: dict[str, Any] = {"wait_pct": waits} if waits else {}
        for probe in self._probes:
            try:
                extra.update(probe())
            except Exception:  # noqa: BLE001 - a probe never stops the sampling
                continue
        if not self._machine:
            return {"cpu": cpu, "rss_mb": rss, **extra}
        cpu["machine"] = round(psutil.cpu_percent(None) * self._cores, 1)
        return {"cpu": cpu, "rss_mb": rss, "cores": self._cores, **extra}


def proxy_api_probe(urls: Mapping[str, str], timeout_s: float = 2.0) -> Callable[[], dict[str, Any]]:
    """A probe timing ``GET /version`` on each fault-proxy API (role → base URL): ``{"proxy_api_ms": {role:
    ms}}``; a proxy that does not answer within ``timeout_s`` reads ``timeout_s`` (its loop was stuck at least
    that long)."""
    import urllib.error
    import urllib.request

    def probe() -> dict[str, Any]:
        found: dict[str, float] = {}
        for role, url in urls.items():
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{url.rstrip('/')}/version", timeout=timeout_s) as answer:
                    answer.read()
            except TimeoutError:
                found[role] = round(timeout_s * 1000, 1)
                continue
            except (urllib.error.URLError, OSError):
                continue
            found[role] = round((time.perf_counter() - began) * 1000, 2)
        return {"proxy_api_ms": found} if found else {}

    return probe
