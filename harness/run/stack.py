"""The parts under test for one run: the fault proxy, the target, one proxy listener per cohort and port.

Uses a real Toxiproxy when ``TOXIPROXY_URL`` is set, else starts the embedded stand-in as a child
process, or several when the cohorts need more links than one process may hold (whole cohorts per
process, one client for all: ``harness.faults.pool``). Every process started here is stopped here, by
PID (and dies with the harness process if it is killed: ``harness.run.process``). The target gets the
token secret in ``HARNESS_TARGET_SECRET``.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from harness.config import Scenario, check_target_fits
from harness.errors import HarnessError
from harness.faults.client import ToxiproxyClient
from harness.faults.pool import ProxyPool, link_budget, plan_members
from harness.run.context import CohortURL
from harness.run.process import LOOPBACK, SECRET_ENV, ManagedProcess, free_port, url_host
from harness.run.readiness import build_probe
from harness.run.store import RedisServer
from harness.run.targets import TargetSpec

__all__ = ["Stack"]

log = logging.getLogger(__name__)

PROXY_READY_S = 90.0
"""How long the embedded proxy may take to start before the run gives up (it exits at once on a real error)."""


def _file_written(path: Path) -> Callable[[], bool]:
    """A readiness check: ``path`` exists and is not empty (a proxy writes its API URL there once bound)."""
    return lambda: path.exists() and bool(path.read_text())


class Stack:
    """Start with ``start()``; ``cohort_url(name)`` is where that cohort's users connect; ``stop()`` always.

    A target with named ports (``ports = ["sub", "pub"]``) gets one free port number per name and, per
    cohort, one proxy listener per port (``cohort_urls``), so a fault can hit one port of one cohort.
    With ``[deploy] instances = N`` the target runs N times (ports differ); cohort i's listeners forward to
    instance i mod N, as a load balancer would, and ``rolling_restart`` moves listeners off an instance
    before restarting it.

    ``listen_host`` is the interface the cohort listeners bind (loopback unless the run says otherwise, for
    workers on other machines); ``advertise_host`` the name in the listener URLs users get (default: the
    listen host). The proxy's API, the target and the store stay on loopback: only this process drives them.
    """

    def __init__(self, scenario: Scenario, target: TargetSpec, run_dir: Path, run_id: str, secret: str,
                 toxiproxy_url: str | None = None, *, listen_host: str = LOOPBACK,
                 advertise_host: str | None = None, links_per_proxy: int | None = None) -> None:
        """``links_per_proxy``: links one embedded proxy process is planned to hold (default: from the
        open-file limit, ``harness.faults.pool.link_budget``); cohorts beyond it go to more processes."""
        self.scenario = scenario
        self.listen_host = listen_host
        self.advertise_host = advertise_host or listen_host
        self.target = target
        self.run_dir = run_dir
        self.run_id = run_id
        self.secret = secret
        self.toxiproxy_url = toxiproxy_url
        self.processes: list[ManagedProcess | RedisServer] = []
        self._exits_reported: set[int] = set()
        self.proxy_client: ToxiproxyClient | None = None
        self.proxy_names: dict[str, str] = {}
        """Cohort → its default (first) port's proxy name."""
        self.listeners: dict[str, str] = {}
        """Cohort → its default port's listener URL."""
        self.port_proxies: dict[str, dict[str, str]] = {}
        """Cohort → port name → proxy name (what a toxic is added to)."""
        self.port_listeners: dict[str, dict[str, str]] = {}
        """Cohort → port name → listener URL."""
        self.store: RedisServer | None = None
        count = 1 if target.url else scenario.deploy.instances
        self.port_numbers: list[dict[str, int]] = [{name: free_port() for name in target.ports} for _ in range(count)]
        """Per instance, each named port's number."""
        self.ports: list[int] = [numbers[target.ports[0]] for numbers in self.port_numbers]
        """Per instance, the first port's number."""
        self.instances: list[ManagedProcess | None] = [None] * count
        self.routes: dict[str, int] = {}
        """Cohort → index of the instance its listener forwards to."""
        links = {c.name: c.users * len(target.ports) for c in scenario.cohorts}
        budget = links_per_proxy or link_budget()
        self.proxy_members: dict[str, int] = {} if toxiproxy_url else plan_members(links, budget)
        """Cohort → the embedded proxy process holding its listeners (empty with a real Toxiproxy)."""
        for cohort, needed in links.items():
            if self.proxy_members and needed > budget:
                log.warning("cohort %s needs %d links, more than one proxy process is planned to hold (%d): a "
                            "listener cannot be split over processes, so split the cohort into several",
                            cohort, needed, budget)

    def pids(self) -> dict[str, int]:
        """Role → PID of every live process of the stack (for health samples; a restart changes them)."""
        found: dict[str, int] = {}
        if self.store is not None and self.store.process is not None and self.store.process.pid:
            found["store"] = self.store.process.pid
        for proc in self.processes:
            if isinstance(proc, ManagedProcess) and proc.name.startswith("fault-proxy") and proc.alive() and proc.pid:
                found[proc.name.removeprefix("fault-")] = proc.pid  # proxy, proxy-1, …
        for index, inst in enumerate(self.instances):
            if inst is not None and inst.alive() and inst.pid:
                found["target" if len(self.instances) == 1 else f"target-{index}"] = inst.pid
        return found

    def unexpected_exits(self) -> list[dict[str, object]]:
        """Processes of the stack that ended while the harness was not stopping them (a crash, an OOM kill, a
        ``kill -9`` from outside), each reported once: role, PID and exit code (negative: the signal)."""
        found: list[dict[str, object]] = []
        watched: list[tuple[str, ManagedProcess]] = []
        if self.store is not None and self.store.process is not None:
            watched.append(("store", self.store.process))
        for proc in self.processes:
            if isinstance(proc, ManagedProcess) and proc.name.startswith("fault-proxy"):
                watched.append((proc.name.removeprefix("fault-"), proc))
        for index, inst in enumerate(self.instances):
            if inst is not None:
                watched.append(("target" if len(self.instances) == 1 else f"target-{index}", inst))
        for role, proc in watched:
            popen = proc.popen
            if popen is None or proc.stopping or id(popen) in self._exits_reported or popen.poll() is None:
                continue
            self._exits_reported.add(id(popen))
            found.append({"role": role, "pid": popen.pid, "code": popen.returncode})
        return found

    @property
    def target_address(self) -> str:
        if self.target.url:
            return self.target.url.split("://", 1)[-1].rstrip("/")
        return f"127.0.0.1:{self.ports[0]}"

    def address(self, instance: int, port: str | None = None) -> str:
        """host:port of one instance's named port (default: the first)."""
        if self.target.url:
            named = self.target.urls.get(port or self.target.ports[0])
            return named.split("://", 1)[-1].rstrip("/") if named else self.target_address
        return f"127.0.0.1:{self.port_numbers[instance][port or self.target.ports[0]]}"

    def _proxy_name(self, cohort: str, port: str) -> str:
        if self.target.ports == (port,):
            return f"{self.run_id}-{cohort}"  # one port: the listener is named after the cohort alone
        return f"{self.run_id}-{cohort}.{port}"  # "." never occurs in a cohort name: no two names collide

    def start(self) -> None:
        check_target_fits(self.scenario, self.target)  # a fault on a port the target lacks stops here
        self._start_proxy()
        if self.target.needs_store:
            self.store = RedisServer(self.run_dir, self.scenario.store.persistence)
            self.processes.append(self.store)
            self.store.start()
        for index in range(len(self.instances)):
            self._start_instance(index)
        assert self.proxy_client is not None
        for number, cohort in enumerate(self.scenario.cohorts):
            self.routes[cohort.name] = number % len(self.instances)
            proxies, listeners = self.port_proxies.setdefault(cohort.name, {}), {}
            for port in self.target.ports:
                name = self._proxy_name(cohort.name, port)
                upstream, listen = self.address(self.routes[cohort.name], port), f"{url_host(self.listen_host)}:0"
                if isinstance(self.proxy_client, ProxyPool):
                    info = self.proxy_client.create_proxy(name, upstream, listen,
                                                          member=self.proxy_members[cohort.name])
                else:
                    info = self.proxy_client.create_proxy(name, upstream, listen)
                proxies[port] = name
                listeners[port] = f"http://{url_host(self.advertise_host)}:{info.port}"
            self.port_listeners[cohort.name] = listeners
            self.proxy_names[cohort.name] = proxies[self.target.ports[0]]
            self.listeners[cohort.name] = listeners[self.target.ports[0]]

    def _start_proxy(self) -> None:
        if self.toxiproxy_url:
            self.proxy_client = ToxiproxyClient(self.toxiproxy_url)
            self.proxy_client.version()
            return
        count = max(self.proxy_members.values(), default=0) + 1
        started = [self._launch_proxy(member) for member in range(count)]  # all at once: each may be slow
        clients = []
        for proc, ready in started:
            # our own process: slow only when the machine is (it took > 20 s at load average 9, a suite failed)
            proc.wait_ready(_file_written(ready), timeout_s=PROXY_READY_S)
            clients.append(ToxiproxyClient(ready.read_text().strip()))
        self.proxy_client = clients[0] if count == 1 else ProxyPool(clients)

    def _launch_proxy(self, member: int) -> tuple[ManagedProcess, Path]:
        """Start proxy process ``member`` (0: ``proxy.log``/``proxy.url``, as with one; n: ``proxy-n.*``), each
        with its own API port on loopback and its own seed (seed + n: the draws of one process do not
        depend on how many there are)."""
        suffix = "" if member == 0 else f"-{member}"
        ready = self.run_dir / f"proxy{suffix}.url"
        ready.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "harness", "proxy", "--port", "0", "--ready-file", str(ready),
                "--seed", str(self.scenario.seed + member), "--metrics"]
        proc = ManagedProcess(f"fault-proxy{suffix}", argv, self.run_dir / f"proxy{suffix}.log")
        proc.start()
        self.processes.append(proc)
        return proc, ready

    def _start_instance(self, index: int) -> None:
        if self.target.url:
            return
        numbers = self.port_numbers[index]
        hb = self.scenario.heartbeat
        redis_url = self.store.url if self.store else ""
        argv = self.target.argv(numbers, hb.ping_interval_s, hb.ping_timeout_s, redis_url, str(self.run_dir))
        suffix = "" if len(self.instances) == 1 else f"-{index}"
        proc = ManagedProcess(self.target.name, argv, self.run_dir / f"target-{self.target.name}{suffix}.log",
                              env={SECRET_ENV: self.secret})
        proc.start()
        self.instances[index] = proc
        self.processes.append(proc)
        ready = self.target.ready or {"kind": "http", "path": self.target.health_path}
        probe = build_probe(ready, numbers, self.run_dir / f"target-{self.target.name}{suffix}.log",
                            {"run_dir": str(self.run_dir)})
        proc.wait_for_probe(probe, timeout_s=float(ready.get("timeout_s") or 20))

    def _stop_instance(self, index: int, sig: int) -> None:
        proc = self.instances[index]
        if proc is not None:
            proc.stop(sig=sig)
            self.processes.remove(proc)
            self.instances[index] = None

    # -- process faults ------------------------------------------------------------------------------------
    def _require_command(self) -> None:
        if self.target.url:
            raise HarnessError(f"target '{self.target.name}' is given by URL: the harness cannot stop it")

    def stop_target(self, sig: int = signal.SIGTERM) -> None:
        """Stop every instance (SIGTERM: graceful; SIGKILL: crash). Only a target the harness started."""
        self._require_command()
        for index in range(len(self.instances)):
            self._stop_instance(index, sig)

    def start_target(self) -> None:
        """Start every stopped instance again on its own port."""
        for index, proc in enumerate(self.instances):
            if proc is None:
                self._start_instance(index)

    def rolling_restart(self) -> None:
        """The zero-downtime deploy: one instance at a time, its listeners moved to a live one first
        (moving a listener's upstream drops its connections, as a load balancer draining a node does)."""
        self._require_command()
        assert self.proxy_client is not None
        if len(self.instances) < 2:
            raise HarnessError("rolling_restart needs [deploy] instances >= 2")
        for index in range(len(self.instances)):
            spare = (index + 1) % len(self.instances)
            for cohort, routed in list(self.routes.items()):
                if routed == index:
                    for port, name in self.port_proxies[cohort].items():
                        self.proxy_client.update_proxy(name, upstream=self.address(spare, port))
                    self.routes[cohort] = spare
            self._stop_instance(index, signal.SIGTERM)
            self._start_instance(index)

    def stop_store(self, sig: int = signal.SIGTERM) -> None:
        if self.store is None:
            raise HarnessError(f"target '{self.target.name}' has no store to stop")
        self.store.kill() if sig == signal.SIGKILL else self.store.stop()

    def start_store(self) -> None:
        if self.store is not None and not (self.store.process and self.store.process.alive()):
            self.store.start()

    def cohort_url(self, cohort: str) -> CohortURL:
        """The cohort's default listener URL, carrying every port's listener (``.urls``) for its Slot."""
        return CohortURL(self.listeners[cohort], self.port_listeners[cohort])

    def cohort_urls(self, cohort: str) -> dict[str, str]:
        """Port name → the cohort's listener URL for that port."""
        return dict(self.port_listeners[cohort])

    def stop(self) -> None:
        """Delete our proxies (on a shared Toxiproxy) and stop every process we started."""
        if self.proxy_client is not None and self.toxiproxy_url:
            for name in [n for proxies in self.port_proxies.values() for n in proxies.values()]:
                try:
                    self.proxy_client.delete_proxy(name)
                except (HarnessError, httpx.HTTPError):
                    pass
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
