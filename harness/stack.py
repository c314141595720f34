"""The parts under test for one run: the fault proxy, the target, one proxy listener per cohort.

Uses a real Toxiproxy when ``TOXIPROXY_URL`` is set, else starts the embedded stand-in as a child
process. Every process started here is stopped here, by PID.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx

from harness.config import Scenario
from harness.errors import HarnessError
from harness.process import ManagedProcess, free_port
from harness.store import RedisServer
from harness.target_specs import TargetSpec
from harness.toxiproxy_client import ToxiproxyClient

__all__ = ["Stack"]


class Stack:
    """Start with ``start()``; ``cohort_url(name)`` is where that cohort's users connect; ``stop()`` always."""

    def __init__(self, scenario: Scenario, target: TargetSpec, run_dir: Path, run_id: str, secret: str,
                 toxiproxy_url: str | None = None) -> None:
        self.scenario = scenario
        self.target = target
        self.run_dir = run_dir
        self.run_id = run_id
        self.secret = secret
        self.toxiproxy_url = toxiproxy_url
        self.processes: list[ManagedProcess | RedisServer] = []
        self.proxy_client: ToxiproxyClient | None = None
        self.proxy_names: dict[str, str] = {}
        self.listeners: dict[str, str] = {}
        self.target_address = ""
        self.store: RedisServer | None = None
        self.target_process: ManagedProcess | None = None
        self._target_port = 0

    def start(self) -> None:
        self._start_proxy()
        if self.target.needs_store:
            self.store = RedisServer(self.run_dir, self.scenario.store.persistence)
            self.processes.append(self.store)
            self.store.start()
        self._start_target()
        assert self.proxy_client is not None
        for cohort in self.scenario.cohorts:
            name = f"{self.run_id}-{cohort.name}"
            info = self.proxy_client.create_proxy(name, self.target_address)
            self.proxy_names[cohort.name] = name
            self.listeners[cohort.name] = f"http://127.0.0.1:{info.port}"

    def _start_proxy(self) -> None:
        if self.toxiproxy_url:
            self.proxy_client = ToxiproxyClient(self.toxiproxy_url)
            self.proxy_client.version()
            return
        ready = self.run_dir / "proxy.url"
        ready.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "harness", "proxy", "--port", "0", "--ready-file", str(ready),
                "--seed", str(self.scenario.seed)]
        proc = ManagedProcess("fault-proxy", argv, self.run_dir / "proxy.log")
        proc.start()
        self.processes.append(proc)
        proc.wait_ready(lambda: ready.exists() and bool(ready.read_text()), timeout_s=20)
        self.proxy_client = ToxiproxyClient(ready.read_text().strip())

    def _start_target(self) -> None:
        if self.target.url:
            self.target_address = self.target.url.split("://", 1)[-1].rstrip("/")
            return
        self._target_port = self._target_port or free_port()
        port = self._target_port
        argv = self.target.argv(port, self.scenario.heartbeat, self.secret, self.store.url if self.store else "")
        proc = ManagedProcess(self.target.name, argv, self.run_dir / f"target-{self.target.name}.log")
        proc.start()
        self.target_process = proc
        self.processes.append(proc)
        url = f"http://127.0.0.1:{port}{self.target.health_path}"

        def healthy() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        proc.wait_ready(healthy, timeout_s=20)
        self.target_address = f"127.0.0.1:{port}"

    # -- process faults ------------------------------------------------------------------------------------
    def stop_target(self, sig: int = signal.SIGTERM) -> None:
        """Stop the target (SIGTERM: graceful; SIGKILL: crash). Only a target the harness started."""
        if self.target_process is None:
            raise HarnessError(f"target '{self.target.name}' is given by URL: the harness cannot stop it")
        self.target_process.stop(sig=sig)
        self.processes.remove(self.target_process)
        self.target_process = None

    def start_target(self) -> None:
        """Start the target again on the same port (after stop_target)."""
        if self.target_process is None and self.target.command is not None:
            self._start_target()

    def stop_store(self, sig: int = signal.SIGTERM) -> None:
        if self.store is None:
            raise HarnessError(f"target '{self.target.name}' has no store to stop")
        self.store.kill() if sig == signal.SIGKILL else self.store.stop()

    def start_store(self) -> None:
        if self.store is not None and not (self.store.process and self.store.process.alive()):
            self.store.start()

    def cohort_url(self, cohort: str) -> str:
        return self.listeners[cohort]

    def stop(self) -> None:
        """Delete our proxies (on a shared Toxiproxy) and stop every process we started."""
        if self.proxy_client is not None and self.toxiproxy_url:
            for name in self.proxy_names.values():
                try:
                    self.proxy_client.delete_proxy(name)
                except (HarnessError, httpx.HTTPError):
                    pass
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
