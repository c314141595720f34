"""A run's processes seen from outside (psutil): the tree under one PID, what it listens on, how it ends."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.integration.helpers import ROOT

__all__ = ["descendants", "listening", "start_run", "wait_until", "wait_gone"]


def start_run(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """`harness run ARGS` in the background, its output in ``log`` (the caller ends it, by PID)."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "harness", "run", *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)


def descendants(pid: int) -> list[psutil.Process]:
    """Every live process below ``pid`` (not ``pid`` itself); empty if it is gone."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def listening(procs: list[psutil.Process]) -> set[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket of ``procs``."""
    found = set()
    for proc in procs:
        try:
            name = proc.name()
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((name, conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_until(condition: Callable[[], bool], timeout_s: float, step_s: float = 0.1) -> bool:
    """Poll ``condition`` for at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


def wait_gone(procs: list[psutil.Process], timeout_s: float) -> tuple[float, list[psutil.Process]]:
    """Seconds until every one of ``procs`` has ended (zombies count as ended), and those still alive."""
    began = time.monotonic()

    def alive() -> list[psutil.Process]:
        left = []
        for proc in procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(proc)
            except psutil.NoSuchProcess:
                continue
        return left

    wait_until(lambda: not alive(), timeout_s, step_s=0.02)
    return time.monotonic() - began, alive()
