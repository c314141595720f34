"""Targets (systems under test) by name: how to start one and what it claims.

A target is any server reachable over loopback. Built-in reference targets live in ``targets/`` (they
never import the harness); a scenario adds its own under ``[target.NAME]`` with a command or a URL.
A started target reads its token secret from the environment variable ``HARNESS_TARGET_SECRET``: the
secret is never on a command line (world-readable in /proc/PID/cmdline, copied into logs).
"""

from __future__ import annotations

import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.paths import PROJECT_ROOT

__all__ = ["Claims", "TargetSpec", "PortNumbers", "builtin_targets", "placeholders", "TARGETS_DIR", "DEFAULT_PORT",
           "PLACEHOLDERS"]

TARGETS_DIR = PROJECT_ROOT / "targets"

DEFAULT_PORT = "main"
"""The name of a target's only port when it declares none (``{port}``, ``self.slot.urls["main"]``)."""

PLACEHOLDERS = ("python", "port", "ping_interval", "ping_timeout", "redis_url", "run_dir")
"""What a target command may contain in braces (``{port.NAME}`` for a named port)."""


class PortNumbers:
    """A target instance's port numbers by name, for ``str.format``: ``{port}`` is the first port,
    ``{port.sub}`` the one named ``sub`` (format's own attribute syntax, so no parsing of our own)."""

    def __init__(self, numbers: Mapping[str, int]) -> None:
        if not numbers:
            raise ValueError("a target has at least one port")
        self._numbers = dict(numbers)

    def __getattr__(self, name: str) -> int:
        numbers: dict[str, int] = self.__dict__["_numbers"]
        try:
            return numbers[name]
        except KeyError:
            raise AttributeError(f"no port named {name!r}; ports: {', '.join(self.__dict__['_numbers'])}") from None

    def __format__(self, spec: str) -> str:
        return format(next(iter(self._numbers.values())), spec)

    def __str__(self) -> str:
        return format(self, "")


def placeholders(part: str) -> list[str]:
    """The brace fields of one command argument (``"--port={port.sub}"`` → ``["port.sub"]``); raises
    ValueError for an unbalanced brace (literal braces are written doubled)."""
    return [name for _, name, _, _ in string.Formatter().parse(part) if name is not None]

@dataclass(frozen=True)
class Claims:
    """What a target promises; the verdict is judged against it and the report states both."""

    delivery: Literal["at-most-once", "at-least-once", "effectively-once"]
    ordered: bool
    """Per sender→recipient order of first receipts."""
    survives_restart: bool = False
    """Acknowledged messages survive a restart of the target process (they live outside it)."""


@dataclass(frozen=True)
class TargetSpec:
    """How to reach a target: a command to start (placeholders below) or a running server's URL."""

    name: str
    claims: Claims
    command: tuple[str, ...] | None = None
    url: str | None = None
    description: str = ""
    secret: str | None = None
    """Fixed auth-token secret; None = random per run (started targets) or, for a URL target, the harness's
    own ``HARNESS_TARGET_SECRET`` (a run without either refuses to start)."""
    needs_store: bool = False
    """Start the run's redis-server first and pass its URL as ``{redis_url}``."""
    driver: str = "socketio"
    """Client driver: a built-in name (harness.drivers.registry) or "package.module:UserClass"."""
    health_path: str = "/socket.io/?EIO=4&transport=polling"
    """GET this path until it answers 200 before the run starts (when ``ready`` is not given)."""
    ready: dict[str, Any] | None = None
    """A readiness probe (``harness.run.readiness``): kind http | tcp | log | command, and its settings."""
    ports: tuple[str, ...] = (DEFAULT_PORT,)
    """Named ports, the first being the default one: each gets its own proxy listener per cohort."""
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """``[target.NAME.options]``: the driver's settings, checked against the driver's ``Options`` model."""
    urls: Mapping[str, str] = field(default_factory=dict, hash=False)
    """A running server's URL per named port (``url`` is then the first one)."""
    rooms: bool = False
    """Serves rooms: ``join`` / ``leave`` and sends addressed to a room (a scenario with rooms needs it)."""

    def argv(self, port: int | Mapping[str, int], ping_interval_s: float, ping_timeout_s: float,
             redis_url: str = "", run_dir: str = "") -> list[str]:
        """The command with {python}, {port} (the first port), {port.NAME}, {ping_interval}, {ping_timeout},
        {redis_url}, {run_dir} filled in (no secret: it goes in the environment). ``port`` is the only port's
        number or every port's by name. Literal braces are written doubled: ``{{`` and ``}}``."""
        assert self.command is not None
        numbers = {self.ports[0]: port} if isinstance(port, int) else port
        values: dict[str, Any] = {
            "python": sys.executable,
            "port": PortNumbers(numbers),
            "ping_interval": str(ping_interval_s),
            "ping_timeout": str(ping_timeout_s),
            "redis_url": redis_url,
            "run_dir": run_dir,
        }
        return [part.format(**values) for part in self.command]


def _module_command(module: str) -> tuple[str, ...]:
    return ("{python}", "-m", module, "--port", "{port}", "--ping-interval", "{ping_interval}",
            "--ping-timeout", "{ping_timeout}")


def builtin_targets() -> dict[str, TargetSpec]:
    """The reference targets shipped in ``targets/``."""
    return {
        "naive": TargetSpec(
            "naive", Claims("at-most-once", ordered=True), _module_command("targets.naive_app"),
            description="emits straight to the recipient's current socket; no acks, no buffer",
            rooms=True,
        ),
        "ackmap": TargetSpec(
            "ackmap", Claims("at-least-once", ordered=False), _module_command("targets.ackmap_app"),
            description="pending map per user keyed by emit id; unconfirmed emits resent on reconnect",
            rooms=True,
        ),
        "memory-resume": TargetSpec(
            "memory-resume", Claims("at-least-once", ordered=True), _module_command("targets.memory_resume_app"),
            description="in-memory pending list per user; the client resumes from the last offset it saw",
        ),
        "redis-store": TargetSpec(
            "redis-store", Claims("at-least-once", ordered=False, survives_restart=True),
            (*_module_command("targets.redis_store_app"), "--redis-url", "{redis_url}"),
            description="every message stored in a Redis stream per recipient before the sender's ack; "
                        "resume with XRANGE from the last stream id",
            needs_store=True, rooms=True,
        ),
        "node-socketio-csr": TargetSpec(
            "node-socketio-csr", Claims("at-least-once", ordered=True),
            ("node", str(TARGETS_DIR / "node_csr" / "server.js"), "--port", "{port}", "--ping-interval",
             "{ping_interval}", "--ping-timeout", "{ping_timeout}", "--max-disconnection-ms", "30000"),
            description="socket.io 4.8 (npm) with connectionStateRecovery, 30 s window, in-memory adapter",
            driver="socketio-csr", health_path="/healthz", rooms=True,
        ),
        "sse": TargetSpec(
            "sse", Claims("at-least-once", ordered=True, survives_restart=True),
            (*_module_command("targets.sse_app"), "--redis-url", "{redis_url}"),
            description="SSE stream (id: = Redis stream id, retry: set) + HTTP POST; resume with Last-Event-ID",
            needs_store=True, driver="sse", health_path="/healthz", rooms=True,
        ),
    }

