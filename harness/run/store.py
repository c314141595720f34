"""The run's own redis-server: a real process on a free loopback port, never the machine's shared one.

Started with the persistence the scenario asks for, killed or restarted as a fault, stopped after the run.
"""

from __future__ import annotations

import shutil
import signal
import socket
from pathlib import Path

from harness.errors import TargetStartError
from harness.run.process import ManagedProcess, free_port

__all__ = ["RedisServer"]


def _pong(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


class RedisServer:
    """One redis-server; ``url`` stays the same across restarts (same port, same data folder)."""

    def __init__(self, run_dir: Path, persistence: str = "none") -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise TargetStartError("redis-server", "not installed (scripts/setup.sh installs the Debian package)")
        self.binary = binary
        self.port = free_port()
        self.data_dir = run_dir / "redis"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = run_dir / "redis.log"
        self.persistence = persistence
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        aof = ["--appendonly", "no"] if self.persistence == "none" else [
            "--appendonly", "yes", "--appendfsync", self.persistence]
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir",
                str(self.data_dir), "--daemonize", "no", "--protected-mode", "yes", *aof]

    def start(self) -> None:
        self.process = ManagedProcess("redis-server", self.argv(), self.log_path)
        self.process.start()
        self.process.wait_ready(lambda: _pong(self.port), timeout_s=15)

    def kill(self) -> None:
        """SIGKILL: whatever was not persisted is gone."""
        if self.process is not None:
            self.process.stop(sig=signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
