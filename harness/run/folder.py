"""A run folder holds one run: ``claim_run_folder`` refuses a folder another live run is using, and a run
starts it empty of an earlier run's record (ledgers append, so a rerun into the same ``--out`` would otherwise
mix two runs into one history: repeated indexes, interleaved sequence numbers)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import IO

from harness.errors import HarnessError

__all__ = ["LOCK_NAME", "HELD_BY_PARENT_ENV", "claim_run_folder", "held_by_parent", "clear_previous_run"]

LOCK_NAME = ".run.lock"
"""Locked (``flock``) by the process that runs in the folder, for as long as it lives: the kernel releases it
when that process ends, however it ends (kill -9 included), so a stale lock never blocks a later run."""

HELD_BY_PARENT_ENV = "HARNESS_RUN_FOLDER_HELD_BY"
"""Set by ``harness run`` to its own PID for the Locust process it starts: the folder is already claimed by
that parent (which must not judge a folder it could not claim), so the child does not claim it again."""

_HELD: dict[Path, IO[str]] = {}
"""The open lock files of this process by folder (a lock lasts as long as its file stays open)."""


def held_by_parent() -> bool:
    """This process's parent claimed the run folder for it (``HELD_BY_PARENT_ENV`` names that very parent)."""
    return os.environ.get(HELD_BY_PARENT_ENV) == str(os.getppid())


def claim_run_folder(run_dir: Path) -> None:
    """Lock ``run_dir`` for this process, or raise ``HarnessError`` naming the process that holds it. Two live
    runs in one folder would clear each other's files and each judge whatever is left: a PASS for a run whose
    own ledger was deleted. A folder this process already holds is its own (one ``harness`` command may run
    into one folder several times, e.g. explore's repeats)."""
    key = run_dir.resolve()
    if key in _HELD:
        return
    lock = (run_dir / LOCK_NAME).open("a+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise HarnessError(f"{run_dir} is in use by another run (PID {holder}): give each run its own --out") from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    _HELD[key] = lock

_PATTERNS = ("ledger*.jsonl", "ledger.parquet", "verdict.json", "anomalies.json", "over_time.csv", "report.md",
             "report.html", "junit.xml", "manifest.json", "*.png", "target-*.log", "proxy.log", "proxy.url",
             "proxy-*.log", "proxy-*.url", "redis.log", "locust-stats.json", ".shard-probe")


def clear_previous_run(run_dir: Path) -> list[Path]:
    """Remove the files an earlier run wrote here (only the harness's own names); return what was removed."""
    removed: list[Path] = []
    for pattern in _PATTERNS:
        for path in sorted(run_dir.glob(pattern)):
            if path.is_file():
                path.unlink()
                removed.append(path)
    store = run_dir / "redis"  # the run's redis-server data folder: an old AOF would be replayed into this run
    if store.is_dir():
        shutil.rmtree(store)
        removed.append(store)
    return removed
