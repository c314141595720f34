"""Append ledger rows to a JSON Lines file as they happen, so an interrupted run keeps every row.

Each row is handed to the OS as soon as it is appended (no user-space buffering), so a crash of the
load process loses at most the row being written; ``close`` also fsyncs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["LedgerWriter"]


class LedgerWriter:
    """Writes one node's ledger rows; not thread-safe (greenlets never preempt inside ``append``)."""

    def __init__(self, path: str | Path, run_id: str, node: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.node = node
        self._index = 0
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8", buffering=1)

    def append(self, *, process: str, type: str, f: str, t_ns: int | None = None, **fields: Any) -> int:
        """Append one row and return its t_ns. Unknown keyword fields go in as columns (see ledger.COLUMNS)."""
        if self._file is None:
            return t_ns or time.time_ns()
        self._index += 1
        stamp = t_ns if t_ns is not None else time.time_ns()
        row = {
            "run_id": self.run_id,
            "node": self.node,
            "index": self._index,
            "t_ns": stamp,
            "process": process,
            "type": type,
            "f": f,
        }
        row.update({k: v for k, v in fields.items() if v is not None})
        self._file.write(json.dumps(row, separators=(",", ":")) + "\n")
        return stamp

    def flush(self) -> None:
        """Push buffered rows to the kernel and to disk."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Mark the node's record complete (``node_closed`` phase), fsync and close; later appends are ignored."""
        if self._file is not None:
            self.append(process="node", type="event", f="phase", data={"phase": "node_closed"})
            self.flush()
            self._file.close()
            self._file = None
