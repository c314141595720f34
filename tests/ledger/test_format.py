"""Ledger I/O: the recorder's rows read back unchanged; damage is named line by line, never fatal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.errors import LedgerDamaged, LedgerError
from harness.ledger.format import read_ledger, write_parquet
from harness.ledger.recorder import LedgerWriter


def _sample(path: Path) -> LedgerWriter:
    writer = LedgerWriter(path, "run1", "local")
    writer.append(process="a", type="invoke", f="send", msg_id="m1", sender="a", recipient="b", seq=1, conn=1)
    writer.append(process="a", type="ok", f="send", msg_id="m1", sender="a", recipient="b", seq=1, conn=1)
    writer.append(process="b", type="ok", f="recv", msg_id="m1", sender="a", recipient="b", seq=1,
                  data={"resent": True})
    return writer


def test_rows_are_on_disk_before_close(tmp_path: Path) -> None:
    writer = _sample(tmp_path / "ledger.jsonl")
    load = read_ledger(tmp_path / "ledger.jsonl")  # not closed yet: a crash now loses nothing
    assert len(load.frame) == 3 and load.bad_lines == []
    assert list(load.frame["index"]) == [1, 2, 3]
    assert load.frame["data"].iloc[2] == {"resent": True}
    writer.close()
    writer.append(process="a", type="event", f="phase")  # ignored after close
    rows = read_ledger(tmp_path / "ledger.jsonl").frame
    assert len(rows) == 4 and rows["data"].iloc[3] == {"phase": "node_closed"}


def test_parquet_round_trip(tmp_path: Path) -> None:
    _sample(tmp_path / "ledger.jsonl").close()
    frame = read_ledger(tmp_path / "ledger.jsonl").frame
    write_parquet(frame, tmp_path / "ledger.parquet")
    back = read_ledger(tmp_path / "ledger.parquet").frame

    def rows(f: pd.DataFrame) -> list[dict[str, object]]:
        return [{k: (None if v is None or v is pd.NA or v != v else v) for k, v in r.items()}
                for r in f.astype(object).to_dict("records")]

    assert list(back.columns) == list(frame.columns)
    assert rows(back) == rows(frame)


def test_bad_lines_are_named_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    _sample(path).close()
    with path.open("a") as handle:
        handle.write("not json\n")
        handle.write('{"type": "ok", "f": "teleport", "t_ns": 1}\n')
        handle.write('{"type": "ok", "f": "recv", "t_ns": 1}\n')
        handle.write('{"type": "ok", "f": "recv", "t_ns": 5, "msg_id": "m9"')  # torn last line
    load = read_ledger(path)
    assert len(load.frame) == 4
    damaged, orphans = load.damaged_nodes()
    assert orphans == 0 and damaged["local"].startswith("4 unreadable ledger line(s): ledger.jsonl:5 invalid JSON")
    assert damaged["local"].endswith("; 1 more")
    assert [(b.line, b.reason) for b in load.bad_lines] == [
        (5, "invalid JSON: Expecting value"),
        (6, "f must be one of ['connect', 'disconnect', 'fault', 'health', 'join', 'leave', 'node', 'phase', "
            "'process_exit', 'recv', 'send'], got 'teleport'"),
        (7, "send and recv rows need a string msg_id"),
        (8, "torn last line (interrupted write)"),
    ]


def test_missing_ledger_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError):
        read_ledger(tmp_path / "nothing.jsonl")
    with pytest.raises(LedgerError):
        read_ledger(tmp_path)


@pytest.mark.parametrize(("line", "reason"), [
    ('{"type": "ok", "f": "recv", "t_ns": 5, "index": "abc", "msg_id": "m"}', "index must be an integer, got 'abc'"),
    ('{"type": "ok", "f": "recv", "t_ns": 5, "index": 9, "msg_id": "m", "conn": true}',
     "conn must be an integer, got True"),
    ('{"type": "ok", "f": "recv", "t_ns": 5, "index": 9, "msg_id": "m", "sender": 3}',
     "sender must be a string or null, got 3"),
    ('{"type": "ok", "f": "recv", "t_ns": 5, "index": 9, "msg_id": "m", "data": [1]}',
     "data must be a JSON object or null, got list"),
    ('{"type": "ok", "f": "recv", "t_ns": 5, "msg_id": "m"}', "index must be an integer"),
    ('{"type": "ok", "f": "recv", "t_ns": 1e400, "index": 9, "msg_id": "m"}', "t_ns must be an integer, got inf"),
    ('{"type": "ok", "f": "recv", "t_ns": 99999999999999999999999, "index": 9, "msg_id": "m"}',
     "t_ns must be an integer, got 99999999999999999999999"),
])
def test_a_row_of_the_wrong_type_is_a_named_bad_line_not_a_crash(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "ledger.jsonl"
    _sample(path).close()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + line + "\n" + "".join(lines[2:]))
    load = read_ledger(path)
    assert len(load.frame) == 4
    assert [(b.line, b.reason) for b in load.bad_lines] == [(3, reason)]
    assert load.damaged_nodes() == ({"local": f"1 unreadable ledger line(s): ledger.jsonl:3 {reason}"}, 0)


def test_a_truncated_parquet_ledger_is_damaged_not_a_crash(tmp_path: Path) -> None:
    _sample(tmp_path / "ledger.jsonl").close()
    write_parquet(read_ledger(tmp_path / "ledger.jsonl").frame, tmp_path / "ledger.parquet")
    data = (tmp_path / "ledger.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(LedgerDamaged, match="cut.parquet: unreadable parquet ledger"):
        read_ledger(tmp_path / "cut.parquet")
    (tmp_path / "text.parquet").write_text("not parquet at all")
    with pytest.raises(LedgerDamaged):
        read_ledger(tmp_path / "text.parquet")


@pytest.mark.parametrize("users", [3, 200, 40_000])  # int8, int16 and int32 codes
def test_dictionary_columns_read_as_pyarrow_would_convert_them(tmp_path: Path, users: int) -> None:
    """Several row groups, each with its own dictionary, with nulls, and one column all null: the categoricals
    ``read_ledger`` builds are the ones ``to_pandas`` would build (categories, their dtype, codes and their dtype)."""
    rows = 3 * users
    names = [f"u{i}" for i in range(users)]
    process = pa.array([names[(i * 7) % users] if i % 5 else None for i in range(rows)], pa.string())
    table = pa.table({"index": pa.array(range(rows), pa.int64()), "t_ns": pa.array(range(rows), pa.int64()),
                      "process": process, "type": pa.array(["event"] * rows), "f": pa.array(["connect"] * rows),
                      "error": pa.array([None] * rows, pa.string())})
    path = tmp_path / "ledger.parquet"
    pq.write_table(table, path, row_group_size=users)
    frame = read_ledger(path).frame
    want = pq.read_table(path, read_dictionary=["process", "type", "f", "error"]).to_pandas()
    for column in ("process", "type", "f", "error"):
        got = frame[column]
        assert got.dtype == want[column].dtype
        assert got.cat.categories.dtype == want[column].cat.categories.dtype
        assert got.cat.codes.dtype == want[column].cat.codes.dtype
        assert np.array_equal(got.cat.codes.to_numpy(), want[column].cat.codes.to_numpy())


def test_a_failed_parquet_write_leaves_the_ledger_it_would_replace_intact(tmp_path: Path, monkeypatch: Any) -> None:
    """The ledger is written beside itself and renamed over the old one: a write cut off part-way (simulated:
    some bytes written to the file pandas was given, then an error, as a kill or a full disk would leave it)
    never leaves a torn ledger.parquet behind a verdict that was judged from it, nor a stray partial file."""
    target = tmp_path / "ledger.parquet"
    target.write_bytes(b"the ledger before")
    real = pd.DataFrame.to_parquet

    def cut_off(self: pd.DataFrame, path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"PAR1 torn")
        raise OSError("no space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", cut_off)
    with pytest.raises(OSError):
        write_parquet(pd.DataFrame({"data": [None], "n": [1]}), target)
    assert target.read_bytes() == b"the ledger before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.parquet"]
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    write_parquet(pd.DataFrame({"data": [{"a": 1}], "n": [1]}), target)
    assert target.read_bytes()[:4] == b"PAR1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.parquet"]


def test_under_an_address_space_limit_parquet_is_read_without_threads(tmp_path: Path, monkeypatch: Any) -> None:
    """Under ``ulimit -v`` two Arrow reads at once were seen to wait forever for pool threads that could not
    start; there the ledger is read on the calling thread alone, with the same result."""
    import resource
    import threading

    import pyarrow.parquet as pq

    from tests.checker.builders import History

    h = History().connect("b").send("a", "b", 1).recv("b", "a", "b", 1).finished()
    path = tmp_path / "ledger.parquet"
    write_parquet(h.frame(), path)
    want = read_ledger(path).frame
    options: list[dict[str, Any]] = []
    real_read = pq.read_table

    def recording(*args: Any, **kwargs: Any) -> Any:
        options.append({k: kwargs.get(k) for k in ("use_threads", "pre_buffer")})
        return real_read(*args, **kwargs)

    started: list[str] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(pq, "read_table", recording)
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), real_start(self))[1])
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1 << 31, resource.RLIM_INFINITY))
    got = read_ledger(path).frame
    assert got.equals(want)
    assert options == [{"use_threads": False, "pre_buffer": False}] * 2 and started == []
