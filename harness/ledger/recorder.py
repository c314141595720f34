"""Record ledger rows as they happen, so an interrupted run keeps every row.

``LedgerRecorder`` numbers rows and tells observers (the live tracker) about each one; where a row goes is
a subclass's job: ``LedgerWriter`` appends it to a JSON Lines file and hands it to the OS at once (no
user-space buffering), so a crash of the load process loses at most the row being written; a worker of a
distributed run ships rows to the master instead (``harness.run.distributed.ShippingWriter``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["LedgerRecorder", "LedgerWriter", "Row", "encode_row"]

Row = dict[str, Any]


class LedgerRecorder:
    """One node's ledger rows; not thread-safe (greenlets never preempt inside ``append``)."""

    def __init__(self, run_id: str, node: str) -> None:
        self.run_id = run_id
        self.node = node
        self.observers: list[Callable[[Row], None]] = []
        self.closed = False
        self._index = 0

    @property
    def rows_written(self) -> int:
        return self._index

    def append(self, *, process: str, type: str, f: str, t_ns: int | None = None, **fields: Any) -> int:
        """Append one row and return its t_ns. Unknown keyword fields go in as columns (see ledger.COLUMNS)."""
        stamp = t_ns if t_ns is not None else time.time_ns()
        if self.closed:
            return stamp
        self._index += 1
        row = {"run_id": self.run_id, "node": self.node, "index": self._index, "t_ns": stamp,
               "process": process, "type": type, "f": f}
        row.update({k: v for k, v in fields.items() if v is not None})
        self._emit(row)
        for observer in self.observers:
            observer(row)
        return stamp

    def flush(self) -> None:
        """Make every row appended so far durable (or delivered)."""

    def close(self) -> None:
        """Mark the node's record complete (``node_closed`` phase) and flush; later appends are ignored."""
        if self.closed:
            return
        self.append(process="node", type="event", f="phase", data={"phase": "node_closed"})
        self.flush()
        self.closed = True
        self._release()

    def _emit(self, row: Row) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Free what the recorder holds, after the final flush."""


def encode_row(row: Row) -> bytes:
    """One ledger line: compact UTF-8 JSON and a newline (orjson: the ledger's main CPU cost, ~5x less)."""
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


class LedgerWriter(LedgerRecorder):
    """Appends rows to a JSON Lines file, one unbuffered write per row; ``flush`` and ``close`` also fsync."""

    def __init__(self, path: str | Path, run_id: str, node: str) -> None:
        super().__init__(run_id, node)
        self.path = Path(path)
        self._file: IO[bytes] = self.path.open("ab", buffering=0)

    def _emit(self, row: Row) -> None:
        self._file.write(encode_row(row))

    def flush(self) -> None:
        if not self._file.closed:
            os.fsync(self._file.fileno())

    def _release(self) -> None:
        self._file.close()
