"""Readiness probes: how the harness knows a target it started is ready for users.

One small interface, a probe that answers "ready?" together with what it saw, so a timeout can say what it
waited for and what it got last. Built in: ``http`` (a path answering one of some statuses), ``tcp`` (the
port accepts a connection: brokers and other non-HTTP servers), ``log`` (a line matching a pattern in the
target's log) and ``command`` (a command exiting 0). A scenario picks one with ``[target.NAME.ready]``.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from harness.run.targets import DEFAULT_PORT, PortNumbers

__all__ = ["Probe", "HttpProbe", "TcpProbe", "AllProbes", "LogProbe", "CommandProbe", "build_probe"]


class Probe(Protocol):
    """``check()`` returns (ready, what was seen); ``description`` says what is waited for."""

    @property
    def description(self) -> str: ...

    def check(self) -> tuple[bool, str]: ...


@dataclass
class HttpProbe:
    url: str
    statuses: Sequence[int] = (200,)

    @property
    def description(self) -> str:
        return f"HTTP {'/'.join(map(str, self.statuses))} from GET {self.url}"

    def check(self) -> tuple[bool, str]:
        try:
            status = httpx.get(self.url, timeout=1).status_code
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return status in self.statuses, f"HTTP {status}"


@dataclass
class TcpProbe:
    host: str
    port: int

    @property
    def description(self) -> str:
        return f"a TCP connection to {self.host}:{self.port}"

    def check(self) -> tuple[bool, str]:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True, "connected"
        except OSError as exc:
            return False, exc.strerror or str(exc)


@dataclass
class AllProbes:
    """Ready when every probe is (a server with several ports is ready when each one accepts)."""

    probes: Sequence[Probe]

    @property
    def description(self) -> str:
        return " and ".join(p.description for p in self.probes)

    def check(self) -> tuple[bool, str]:
        for probe in self.probes:
            ready, seen = probe.check()
            if not ready:
                return False, f"{probe.description}: {seen}" if len(self.probes) > 1 else seen
        return True, "all ready"


@dataclass
class LogProbe:
    path: Path
    pattern: str

    @property
    def description(self) -> str:
        return f"a line matching /{self.pattern}/ in {self.path.name}"

    def check(self) -> tuple[bool, str]:
        try:
            text = self.path.read_text(errors="replace")
        except OSError as exc:
            return False, exc.strerror or str(exc)
        if re.search(self.pattern, text, re.MULTILINE):
            return True, "matched"
        lines = text.splitlines()
        return False, f"last line: {lines[-1][:200]!r}" if lines else "the log is empty"


@dataclass
class CommandProbe:
    argv: Sequence[str]

    @property
    def description(self) -> str:
        return f"the command {' '.join(self.argv)} exiting 0"

    def check(self) -> tuple[bool, str]:
        try:
            run = subprocess.run(list(self.argv), capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
        tail = (run.stdout + run.stderr).strip().splitlines()[-1:] or [""]
        return run.returncode == 0, f"exit {run.returncode} {tail[0][:200]}".strip()


def build_probe(spec: Mapping[str, Any], port: int | Mapping[str, int], log_path: Path,
                values: Mapping[str, str]) -> Probe:
    """The probe a target's ``ready`` table describes (validated by ``harness.config.Readiness``).

    ``port``: the target's only port number, or every named port's. http probes ``spec["port"]`` (default:
    the first port); tcp probes that one, or every port when none is named; a command gets ``{port}``,
    ``{port.NAME}`` and ``values`` (``run_dir``) filled in."""
    numbers = {DEFAULT_PORT: port} if isinstance(port, int) else dict(port)
    chosen = spec.get("port")
    kind = spec["kind"]
    if kind == "http":
        number = numbers[chosen] if chosen else next(iter(numbers.values()))
        return HttpProbe(f"http://127.0.0.1:{number}{spec.get('path') or '/'}",
                         tuple(spec.get("statuses") or (200,)))
    if kind == "tcp":
        if chosen:
            return TcpProbe("127.0.0.1", numbers[chosen])
        probes = [TcpProbe("127.0.0.1", number) for number in numbers.values()]
        return probes[0] if len(probes) == 1 else AllProbes(probes)
    if kind == "log":
        return LogProbe(log_path, str(spec["pattern"]))
    if kind == "command":
        return CommandProbe([part.format(**{**values, "port": PortNumbers(numbers)}) for part in spec["command"]])
    raise ValueError(f"unknown readiness probe kind {kind!r}")
