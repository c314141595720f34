"""Starting the reference targets for the tests in this folder, as the harness does.

Every target reads its token secret from ``HARNESS_TARGET_SECRET`` (never the command line), listens on a
free loopback port and is ended by PID when the ``started`` block exits (with its redis-server, if any).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.run.process import ManagedProcess, free_port, http_ok
from harness.run.store import RedisServer

__all__ = ["SECRET", "SECRET_ENV", "COMMANDS", "NEEDS_REDIS", "Running", "started"]

SECRET = secrets.token_hex(8)
SECRET_ENV = "HARNESS_TARGET_SECRET"
NODE_SERVER = Path(__file__).resolve().parents[2] / "targets" / "node_csr" / "server.js"

COMMANDS: dict[str, list[str]] = {
    "naive": [sys.executable, "-m", "targets.naive_app"],
    "ackmap": [sys.executable, "-m", "targets.ackmap_app"],
    "memory-resume": [sys.executable, "-m", "targets.memory_resume_app"],
    "redis-store": [sys.executable, "-m", "targets.redis_store_app"],
    "sse": [sys.executable, "-m", "targets.sse_app"],
    "node-socketio-csr": ["node", str(NODE_SERVER)],
    "polling": [sys.executable, "-m", "examples.polling.server"],
}
"""How to start each target, without ``--port`` (added here) and target-specific options."""

NEEDS_REDIS = {"redis-store", "sse"}


@dataclass
class Running:
    name: str
    url: str
    proc: ManagedProcess
    log_path: Path
    store_url: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def started(name: str, folder: Path, *options: str, secret: str = SECRET) -> Iterator[Running]:
    """Start target ``name`` with ``options``, wait until /healthz answers, stop it (by PID) afterwards."""
    store = RedisServer(folder) if name in NEEDS_REDIS else None
    port = free_port()
    argv = [*COMMANDS[name], "--port", str(port), *options]
    if store is not None:
        argv += ["--redis-url", store.url]
    log_path = folder / f"target-{name}.log"
    proc = ManagedProcess(name, argv, log_path, env={SECRET_ENV: secret})
    try:
        if store is not None:
            store.start()
        proc.start()
        proc.wait_ready(http_ok(f"http://127.0.0.1:{port}/healthz"), 20)
        yield Running(name, f"http://127.0.0.1:{port}", proc, log_path, store.url if store else None)
    finally:
        proc.stop()
        if store is not None:
            store.stop()
