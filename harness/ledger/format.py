"""The ledger: the public, append-only record of everything a run did and saw.

One row per event, modelled on Jepsen operations. A send is an ``invoke`` row followed by exactly one
completion row with the same ``msg_id``: ``ok`` (the server acknowledged), ``fail`` (the server refused:
it definitely did not take the message) or ``info`` (unknown: ack timeout, or the connection dropped
before the ack). A receipt is its own ``ok`` row with ``f == "recv"``. Connects, disconnects, faults and
run phases are ``event`` rows; a distributed run's master adds one ``node`` row per worker. The full
format is documented in docs/ledger.md; this module alone owns it.
"""

from __future__ import annotations

import json
import os
import resource
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.errors import LedgerDamaged, LedgerError
from harness.ledger.parquet_rules import check_rows, check_schema, decode_data, is_text
from harness.ledger.schema import COLUMNS, DTYPES, FUNCTIONS, OP_TYPES

__all__ = [
    "COLUMNS",
    "OP_TYPES",
    "FUNCTIONS",
    "BadLine",
    "LedgerLoad",
    "to_frame",
    "read_jsonl",
    "read_ledger",
    "write_parquet",
    "DICTIONARY_COLUMNS",
]

@dataclass(frozen=True)
class BadLine:
    """A ledger line that could not be used, and why."""

    path: str
    line: int
    reason: str


@dataclass
class LedgerLoad:
    """Rows read from one or more ledger files plus every line that had to be skipped."""

    frame: pd.DataFrame
    bad_lines: list[BadLine] = field(default_factory=list)
    node_of_file: dict[str, str] = field(default_factory=dict)
    """Which node wrote each file (from its readable rows), to attribute bad lines to a load process."""

    def damaged_nodes(self) -> tuple[dict[str, str], int]:
        """Nodes with unreadable lines (node → reason) and the count of bad lines no node can be blamed for."""
        per_node: dict[str, list[BadLine]] = {}
        orphans = 0
        for bad in self.bad_lines:
            node = self.node_of_file.get(bad.path)
            if node is None:
                orphans += 1
            else:
                per_node.setdefault(node, []).append(bad)
        return {n: _describe_bad(lines) for n, lines in per_node.items()}, orphans


_INT64 = (-(2**63), 2**63 - 1)


def _describe_bad(lines: list[BadLine], shown: int = 3) -> str:
    """"2 unreadable ledger line(s): ledger.jsonl:5 invalid JSON; ledger.jsonl:9 torn last line"."""
    where = "; ".join(f"{Path(b.path).name}:{b.line} {b.reason}" for b in lines[:shown])
    more = f"; {len(lines) - shown} more" if len(lines) > shown else ""
    return f"{len(lines)} unreadable ledger line(s): {where}{more}"


def _check_row(row: Any) -> str | None:
    """Return why a decoded JSON value is not a usable ledger row, or None if it is.

    Every column is checked against its dtype, so one odd row is a named bad line, never a crash later.
    """
    if not isinstance(row, dict):
        return "not a JSON object"
    if row.get("type") not in OP_TYPES:
        return f"type must be one of {sorted(OP_TYPES)}, got {row.get('type')!r}"
    if row.get("f") not in FUNCTIONS:
        return f"f must be one of {sorted(FUNCTIONS)}, got {row.get('f')!r}"
    if (row["f"] == "send" and row["type"] == "event") or (row["f"] == "recv" and row["type"] != "ok"):
        return f"a {row['f']} row cannot have type {row['type']!r} (send: invoke, ok, fail or info; recv: ok)"
    if row["f"] in ("send", "recv") and not isinstance(row.get("msg_id"), str):
        return "send and recv rows need a string msg_id"
    if row["f"] in ("join", "leave") and not isinstance(row.get("room"), str):
        return "join and leave rows need a string room"
    for column, dtype in DTYPES.items():
        value = row.get(column)
        if value is None:
            if column in ("t_ns", "index"):
                return f"{column} must be an integer"
            continue
        if dtype == "Int64":
            if isinstance(value, bool) or not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
                return f"{column} must be an integer, got {value!r}"
        elif not isinstance(value, str):
            return f"{column} must be a string or null, got {value!r}"
    data = row.get("data")
    if data is not None and not isinstance(data, dict):
        return f"data must be a JSON object or null, got {type(data).__name__}"
    return None


def to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Build a ledger DataFrame with the canonical columns and dtypes from row dicts."""
    records = [{c: r.get(c) for c in COLUMNS} for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for column, dtype in DTYPES.items():
        frame[column] = frame[column].astype(dtype)
    frame["data"] = frame["data"].astype(object)
    return frame


def read_jsonl(path: str | Path) -> LedgerLoad:
    """Read a JSON Lines ledger, keeping every good row and naming every bad line.

    A torn last line (an interrupted write) and garbled lines are reported, never fatal: the checker
    decides what the damage means.
    """
    path = Path(path)
    if not path.exists():
        raise LedgerError(f"{path}: no such ledger file")
    rows: list[dict[str, Any]] = []
    bad: list[BadLine] = []
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                row = json.loads(text)
            except RecursionError:
                bad.append(BadLine(str(path), number, "JSON nested too deeply to read"))
                continue
            except json.JSONDecodeError as exc:
                torn = not line.endswith("\n")
                reason = "torn last line (interrupted write)" if torn else f"invalid JSON: {exc.msg}"
                bad.append(BadLine(str(path), number, reason))
                continue
            problem = _check_row(row)
            if problem is not None:
                bad.append(BadLine(str(path), number, problem))
                continue
            rows.append(row)
    nodes = {str(r.get("node")) for r in rows if r.get("node") is not None}
    owner = {str(path): nodes.pop()} if len(nodes) == 1 else {}
    return LedgerLoad(to_frame(rows), bad, owner)


def read_ledger(path: str | Path) -> LedgerLoad:
    """Read a ledger from a .jsonl or .parquet file, or from a run folder holding ledger files."""
    path = Path(path)
    if path.is_dir():
        parts = sorted(path.glob("ledger*.jsonl"))
        if not parts:
            parquet = path / "ledger.parquet"
            if parquet.exists():
                return read_ledger(parquet)
            raise LedgerError(f"{path}: no ledger*.jsonl or ledger.parquet in this folder")
        loads = [read_jsonl(p) for p in parts]
        frames = [load.frame for load in loads if not load.frame.empty]
        frame = pd.concat(frames, ignore_index=True) if frames else to_frame([])
        owners = {k: v for load in loads for k, v in load.node_of_file.items()}
        return LedgerLoad(frame, [b for load in loads for b in load.bad_lines], owners)
    if path.suffix == ".parquet":
        if not path.exists():
            raise LedgerError(f"{path}: no such ledger file")
        return LedgerLoad(_read_parquet(path))
    return read_jsonl(path)


#: Columns read from Parquet as pandas categoricals (dictionary-encoded): few distinct values, compared and taken
#: over every row by the checker. ``msg_id`` becomes a categorical too, but by ``_id_categorical``: with ~1/3
#: distinct values per row, Parquet's per-row-group dictionaries cost more to merge than one encoding of the rows.
DICTIONARY_COLUMNS: tuple[str, ...] = ("run_id", "node", "process", "type", "f", "sender", "recipient", "error",
                                       "room")


def _arrow_dtype(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    """Arrow-backed pandas columns as stored; dictionaries (None here) become pandas categoricals."""
    return None if pa.types.is_dictionary(arrow_type) else pd.ArrowDtype(arrow_type)


def _id_categorical(column: pa.ChunkedArray) -> pd.Categorical:
    """Message ids as a pandas categorical: int32 codes in order of first appearance (what ``pd.factorize``
    gives) over an Arrow-backed index of the distinct ids. One hash over the rows, done here once instead of
    in the checker, and 40 MB of codes instead of 200 MB of strings at 10 M rows.

    pandas validates a categorical's categories by hashing them again (3 s for 3.3 M ids, more than the
    encoding itself); they come from Arrow's dictionary encoding, distinct by construction, so the dtype is
    built without that check (pandas' own fast path, as pandas uses it; pandas is pinned)."""
    combined = column.dictionary_encode().combine_chunks()
    indices = combined.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    categories = pd.Index(combined.dictionary.to_pandas(types_mapper=pd.ArrowDtype))
    try:
        dtype = pd.CategoricalDtype._from_fastpath(categories, False)
        return pd.Categorical._simple_new(codes, dtype)
    except AttributeError:  # pragma: no cover - another pandas: the validated (slower) way
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories))


def _dictionary_categorical(column: pa.ChunkedArray) -> pd.Categorical:
    """A dictionary column (one dictionary per row group) as the pandas categorical ``to_pandas`` makes of it:
    the same unified categories, converted by pyarrow from an empty slice so their dtype is pyarrow's, and the
    same codes in pandas' smallest integer type. ``to_pandas`` checks every code against the categories
    (``Categorical.from_codes``: a minimum and a maximum over each 10 M-row column); Arrow's indices are valid by
    construction, so the check is skipped (pandas' fast path, as in ``_id_categorical``)."""
    combined = column.unify_dictionaries().combine_chunks() if column.num_chunks > 1 else column.combine_chunks()
    dtype = pd.Series(combined.slice(0, 0).to_pandas()).dtype
    indices = combined.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    size = len(dtype.categories)
    small = np.int8 if size < 127 else np.int16 if size < 32767 else np.int32  # pandas' coerce_indexer_dtype
    codes = indices.to_numpy(zero_copy_only=False).astype(small, copy=False)
    try:
        return pd.Categorical._simple_new(codes, dtype)
    except AttributeError:  # pragma: no cover - another pandas: the validated (slower) way
        return pd.Categorical.from_codes(codes, dtype=dtype)


class _IdEncoding:
    """A Parquet file's message ids read and encoded (``_id_categorical``) in a thread of their own: Arrow
    releases the GIL for both, so on a machine with two cores the ~1 s of hashing 10 M ids overlaps with
    converting the other columns instead of following it."""

    def __init__(self, path: Path, where: Path, threads: bool) -> None:
        self._path = path
        self._where = where
        self._value: pd.Categorical | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.threads = threads
        """False when threads may not start (``_threads_allowed``) or this one could not: then Arrow's own pools may
        not start theirs either, and a read that waits for them waits forever (seen under ``ulimit -v``), so every
        read of this file runs on the calling thread (``_no_threads``)."""
        if threads:
            self._thread = threading.Thread(target=self._run, name="ledger-msg-id", daemon=True)
            try:
                self._thread.start()
            except RuntimeError:  # "can't start new thread"
                self._thread = None
                self.threads = False
        if self._thread is None:
            self._run()

    def _run(self) -> None:
        try:
            ids = pq.read_table(self._path, columns=["msg_id"], **_no_threads(self.threads)).column(0)
            if _is_view(ids.type):  # Arrow's string_view: no dictionary encoding of its own
                ids = pc.cast(ids, pa.string())
        except Exception as exc:
            self._error = _unreadable(self._where, exc)
            return
        try:
            self._value = _id_categorical(ids)
        except BaseException as exc:  # handed to the reader's thread, raised there
            self._error = exc

    def result(self) -> pd.Categorical:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def _read_parquet(path: Path, extra: tuple[str, ...] = (), where: Path | None = None) -> pd.DataFrame:
    """The ledger columns of a Parquet file: low-cardinality strings as categoricals, message ids as a
    categorical of their own (``_id_categorical``), the rest Arrow-backed as stored (no per-column conversion),
    ``data`` decoded from JSON text where present. A column the file lacks, or stores as all null, is all null (an
    empty categorical for a string column: no 10 M-element list). The message ids are read and encoded in a thread
    of their own (``_IdEncoding``) beside the rest (10 M rows: peak unchanged, 1.80–1.82 GB, read 0.1–1.0 s
    shorter). The file must keep the format's rules (``parquet_rules``: ``LedgerDamaged`` otherwise, naming
    ``where``, by default ``path``). ``extra``: columns beyond the ledger's to keep as stored (a partition's
    ``_row``, which also numbers the rows in errors)."""
    where = where or path
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # truncated or not parquet at all: the run cannot be judged from it
        raise _unreadable(where, exc) from None
    check_schema(schema, where)
    present = [c for c in (*COLUMNS, *extra) if c in schema.names and not pa.types.is_null(schema.field(c).type)]
    strings = [c for c in DICTIONARY_COLUMNS if c in present and is_text(schema.field(c).type)
               and not pa.types.is_dictionary(schema.field(c).type)]
    encode_ids = "msg_id" in present and not pa.types.is_dictionary(schema.field("msg_id").type)
    try:
        threads = _threads_allowed()
        ids = _IdEncoding(path, where, threads) if encode_ids else None  # on another core while the rest is read
        table = pq.read_table(path, columns=[c for c in present if not (c == "msg_id" and encode_ids)],
                              read_dictionary=[c for c in strings if not _is_view(schema.field(c).type)],
                              **_no_threads(threads and (ids is None or ids.threads)))
    except Exception as exc:  # truncated or not parquet at all: the run cannot be judged from it
        raise _unreadable(where, exc) from None
    rows = table.num_rows
    raw = table.column("data") if "data" in table.column_names else None
    table = table.drop_columns(["data"]) if raw is not None else table
    dictionaries = {}
    for name in table.column_names:  # one column at a time, each dropped from the table once converted
        kind = table.schema.field(name).type
        if _is_view(kind) or (pa.types.is_dictionary(kind) and _is_view(kind.value_type)):
            column = pc.cast(table.column(name), pa.string())  # Arrow's string_view: rare, converted first
            if name in DICTIONARY_COLUMNS:
                column = column.dictionary_encode()
            table = table.set_column(table.column_names.index(name), name, column)
            kind = column.type
        if pa.types.is_dictionary(kind):
            dictionaries[name] = _dictionary_categorical(table.column(name))
            table = table.drop_columns([name])
    frame = table.to_pandas(types_mapper=_arrow_dtype, self_destruct=True)
    del table
    for name, values in dictionaries.items():
        frame[name] = values
    del dictionaries
    pa.default_memory_pool().release_unused()  # decode buffers Arrow's pool would keep (~600 MB at 10 M rows)
    if ids is not None:
        frame["msg_id"] = ids.result()
        del ids
        pa.default_memory_pool().release_unused()
    for column in COLUMNS:
        if column in frame.columns or column == "data":
            continue
        if DTYPES.get(column) == "string":
            frame[column] = pd.Categorical.from_codes(np.full(rows, -1, dtype=np.int8), categories=[])
        else:
            frame[column] = pd.arrays.IntegerArray(np.zeros(rows, dtype=np.int64), np.ones(rows, dtype=bool))
    numbers = frame["_row"].to_numpy(dtype=np.int64, na_value=-1) if "_row" in frame.columns else None
    check_rows(frame, where, numbers)
    frame["data"] = decode_data(raw, where, numbers) if raw is not None else np.full(rows, None, dtype=object)
    return frame[[*COLUMNS, *(c for c in extra if c in frame.columns)]]


def _threads_allowed() -> bool:
    """Whether reads may use threads: not under an address-space limit (``ulimit -v``), where a thread's stack may
    not fit and two Arrow reads at once were seen to wait forever for pool threads that never started (1 M rows
    at 1.5–1.7 GB); one read on the calling thread then fails with an error instead, or succeeds."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return bool(soft == resource.RLIM_INFINITY)


def _no_threads(threads: bool) -> dict[str, bool]:
    """``read_table`` options for a read without Arrow's thread pools (no column decoding in parallel, no
    read-ahead on the I/O pool) when threads cannot be started; none otherwise."""
    return {} if threads else {"use_threads": False, "pre_buffer": False}


def _unreadable(where: Path, exc: Exception) -> LedgerDamaged:
    """Why a Parquet ledger could not be read: the file, or this process's memory (a limit such as ulimit -v)."""
    if isinstance(exc, (MemoryError, pa.ArrowMemoryError)) or "Failed to launch worker thread" in str(exc):
        return LedgerDamaged(f"{where}: not enough memory to read this parquet ledger ({type(exc).__name__}: {exc})")
    return LedgerDamaged(f"{where}: unreadable parquet ledger ({type(exc).__name__}: {exc})")


def _is_view(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string_view(kind))


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a ledger frame to Parquet; the free-form ``data`` column is stored as JSON text."""
    out = frame.copy()
    out["data"] = out["data"].map(lambda v: None if v is None else json.dumps(v, sort_keys=True)).astype("string")
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # a kill mid-write never leaves a torn ledger
    try:
        out.to_parquet(partial, index=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
