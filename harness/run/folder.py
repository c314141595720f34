"""A run folder starts empty of an earlier run's record: ledgers append, so a rerun into the same ``--out``
would otherwise mix two runs into one history (repeated indexes, interleaved sequence numbers)."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["clear_previous_run"]

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
