"""Record ledger rows as they happen, so an interrupted run keeps every row.

``LedgerRecorder`` numbers rows and tells observers (the live tracker) about each one; where a row goes is
a subclass's job: ``LedgerWriter`` appends it to a JSON Lines file in small batches (see its docstring for
what a crash can cost: at most the rows of the last ``BATCH_S`` seconds, never more than ``BATCH_ROWS``);
a worker of a distributed run ships rows to the master instead (``harness.run.distributed.ShippingWriter``).
"""

from __future__ import annotations

import atexit
import os
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import gevent
import gevent.monkey
import orjson

__all__ = ["BATCH_ROWS", "BATCH_S", "LedgerRecorder", "LedgerWriter", "Row", "encode_row"]

Row = dict[str, Any]

BATCH_ROWS = 256
"""``LedgerWriter`` writes its buffer as soon as it holds this many rows (~60 KB: one write system call)."""

BATCH_S = 0.05
"""…and at the latest this long after the first row of a batch was appended (a gevent timer)."""


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
    """Appends rows to a JSON Lines file in batches of complete lines; ``flush`` and ``close`` write
    everything appended so far and fsync.

    Each row is encoded when it is appended and kept in memory; the batch goes to the OS in one write
    system call when it holds ``batch_rows`` rows (default ``BATCH_ROWS`` = 256), or ``batch_s`` seconds
    (default ``BATCH_S`` = 50 ms) after its first row was appended, whichever comes first. The timer is a
    gevent timer, so it fires when the process's event loop next runs: on time in the load process, whose
    greenlets all yield every few milliseconds.

    Crash safety: a SIGKILL (or an OOM kill, or a crash of the interpreter) loses at most the rows appended
    in the last 50 ms, and never more than 256 rows; the rows before them are in the file, complete. A batch
    is one write of whole lines, so the last line is torn only if the kernel wrote part of it when the
    process died (the ledger reader reports a torn last line; the verdict is then ``unknown``). A graceful
    stop loses nothing: Locust's ``quitting`` closes the writer (SIGTERM, Ctrl-C and the end of a run all
    pass there), and a writer still open at interpreter exit writes its batch from an ``atexit`` hook.
    Nothing but the OS page cache stands between a written row and the disk until ``flush``: a crash of the
    whole machine can lose more.

    In a process that gevent has not monkey-patched (tests, tools) nothing makes the timer run on time, so
    by default the writer writes every row at once there (``batch_rows=1``), as it always did.
    """

    def __init__(self, path: str | Path, run_id: str, node: str, *, batch_rows: int | None = None,
                 batch_s: float = BATCH_S) -> None:
        """``batch_rows``: None = ``BATCH_ROWS`` in a gevent-patched process, else 1 (a write per row)."""
        super().__init__(run_id, node)
        self.path = Path(path)
        self._file: IO[bytes] = self.path.open("ab", buffering=0)
        self._fd = self._file.fileno()
        if batch_rows is None:
            batch_rows = BATCH_ROWS if gevent.monkey.is_anything_patched() else 1
        self.batch_rows = max(1, batch_rows)
        self.batch_s = batch_s
        self._batch: list[bytes] = []
        self._timer: gevent.Greenlet | None = None
        _OPEN_WRITERS.add(self)

    @property
    def buffered(self) -> int:
        """Rows appended but not yet handed to the OS."""
        return len(self._batch)

    def _emit(self, row: Row) -> None:
        batch = self._batch
        batch.append(encode_row(row))
        if len(batch) >= self.batch_rows:
            self._write_batch()
        elif self._timer is None:  # a pending timer fires sooner than batch_s from now: it will take this row
            self._timer = gevent.spawn_later(self.batch_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._write_batch()

    def _write_batch(self) -> None:
        """Hand the batch to the OS in one write (more only if the kernel takes part of it); never yields."""
        if not self._batch or self._file.closed:
            return
        data = memoryview(b"".join(self._batch))
        self._batch = []
        while data:
            data = data[os.write(self._fd, data):]

    def flush(self) -> None:
        if not self._file.closed:
            self._write_batch()
            os.fsync(self._fd)

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.kill(block=False)
            self._timer = None
        self._file.close()
        _OPEN_WRITERS.discard(self)


_OPEN_WRITERS: weakref.WeakSet[LedgerWriter] = weakref.WeakSet()


@atexit.register
def _write_open_batches() -> None:
    """At interpreter exit, a writer nobody closed still hands its batch to the OS (no ``node_closed`` row:
    the run did not end properly)."""
    for writer in list(_OPEN_WRITERS):
        try:
            writer._write_batch()
        except OSError:
            pass
