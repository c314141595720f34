"""Child processes the harness starts (targets, the fault proxy, redis-server): logs kept, stopped by PID only.

Every child dies with the process that started it: on Linux each is started with
``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so a SIGKILLed parent (which runs no cleanup) leaves no orphan.
Logs in a run folder are private (mode 0600) and the token secret never reaches a child's argv: a target
gets it in its environment (``SECRET_ENV``), which only its own user can read.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from harness.errors import HarnessError, TargetStartError
from harness.run.readiness import Probe

__all__ = ["ManagedProcess", "SECRET_ENV", "LOOPBACK", "child_dies_with_parent", "cores", "die_with_parent",
           "free_port", "http_ok", "is_wildcard", "listen_hosts", "log_tail", "open_private_log", "url_host",
           "worker_count"]

SECRET_ENV = "HARNESS_TARGET_SECRET"
"""The environment variable a target reads its token secret from (never the command line)."""

_PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _libc_prctl()  # looked up once: a preexec_fn should do as little as possible between fork and exec


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux); False where unsupported.

    If the parent is already gone (it died before this call), the process kills itself: the kernel would
    never send the signal. ``parent_pid`` is the parent we expect; without it, only the request is made.
    """
    if _PRCTL is None:
        return False
    _PRCTL(_PR_SET_PDEATHSIG, sig)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
    return True


def child_dies_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` for Popen: the child gets SIGKILL when the calling process dies."""
    parent = os.getpid()

    def preexec() -> None:
        die_with_parent(parent)

    return preexec


def free_port() -> int:
    """A currently free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LOOPBACK = "127.0.0.1"
"""Where everything listens unless the user names another host."""

_WILDCARDS = frozenset({"", "*", "0.0.0.0", "::", "[::]"})


def is_wildcard(host: str) -> bool:
    """A bind host meaning "every interface" (Locust writes it ``*``)."""
    return host.strip() in _WILDCARDS


def listen_hosts(bind: str, advertise: str | None, allow_all_interfaces: bool) -> tuple[str, str]:
    """(bind host, advertise host) for the proxy listeners and the Locust master, or HarnessError.

    The bind host is where they listen; the advertise host is the name users (on workers) connect to,
    by default the bind host. Every interface (0.0.0.0, ``*``, ::) is refused unless asked for twice: it
    opens the target, through the listeners, and the master's port, which hands each worker the users'
    tokens, to every network the machine is on. A named interface is the user's explicit choice."""
    bind = bind.strip()
    if is_wildcard(bind):
        if not allow_all_interfaces:
            raise HarnessError(f"bind host '{bind or '*'}' listens on every interface, which opens the target "
                               "(through the proxy listeners) and the master's port (it hands out the users' "
                               "tokens) to every network this machine is on: give one interface's address "
                               "(e.g. the private one the workers reach), or add --allow-all-interfaces")
        if not advertise:
            raise HarnessError(f"bind host '{bind or '*'}' is every interface: give --advertise-host, the address "
                               "the workers reach this machine at")
        bind = "::" if bind in ("::", "[::]") else "0.0.0.0"  # "*" is Locust's spelling; sockets want an address
    return bind, (advertise or bind).strip()


def url_host(host: str) -> str:
    """A host as it goes into a URL or host:port (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows; not
    ``os.cpu_count()``, which counts the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(value: str) -> int:
    """``--workers``: a count >= 0, or ``auto`` for one worker per core (``cores()``). ValueError otherwise."""
    text = value.strip().lower()
    if text == "auto":
        return cores()
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"--workers must be a number >= 0 or 'auto', not {value!r}") from None
    if count < 0:
        raise ValueError(f"--workers must be a number >= 0 or 'auto', not {value!r}")
    return count


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness probe: GET ``url`` answers 200."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def open_private_log(path: Path) -> int:
    """Open ``path`` for appending, readable by its owner only (0600, also if it already existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return fd


class ManagedProcess:
    """A child started with its output in ``log_path``; ``stop`` ends exactly this PID.

    ``env`` is added to the harness's environment, from which ``SECRET_ENV`` is removed first: only a
    child given the secret explicitly (a target) sees it.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        inherited = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
        self.env = {**inherited, **(env or {}), "HARNESS_PARENT_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        self.popen: subprocess.Popen[bytes] | None = None
        self.stopping = False
        """Set while (and after) the harness stops it: its exit is then expected, not a crash to report."""

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        self.stopping = False
        fd = open_private_log(self.log_path)
        with os.fdopen(fd, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())  # argv carries no secret (it is in env only)
            log.flush()
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=self.env, preexec_fn=child_dies_with_parent())

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, probe: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``probe`` until it returns True; raise TargetStartError with the log tail on exit or timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.popen.returncode if self.popen else None
                raise TargetStartError(self.name, f"process exited with code {code}", log_tail(self.log_path))
            try:
                if probe():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TargetStartError(self.name, f"not healthy after {timeout_s:.0f} s", log_tail(self.log_path))

    def wait_for_probe(self, probe: Probe, timeout_s: float) -> None:
        """Like ``wait_ready``, but the error names what was waited for and what the probe saw last."""
        seen = "nothing yet"

        def ready() -> bool:
            nonlocal seen
            ok, seen = probe.check()
            return ok

        try:
            self.wait_ready(ready, timeout_s)
        except TargetStartError as exc:
            if exc.reason.startswith("not healthy"):
                raise TargetStartError(self.name, f"not ready after {timeout_s:g} s: waited for "
                                       f"{probe.description}; last saw: {seen}", exc.log_tail) from None
            raise

    def stop(self, sig: int = signal.SIGTERM, grace_s: float = 5.0) -> None:
        """Send ``sig`` to our child, wait up to ``grace_s``, then SIGKILL it."""
        self.stopping = True
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
