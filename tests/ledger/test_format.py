"""Ledger I/O: the recorder's rows read back unchanged; damage is named line by line, never fatal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.errors import LedgerError
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
    assert load.damaged_nodes() == ({"local": "4 unreadable ledger line(s)"}, 0)
    assert [(b.line, b.reason) for b in load.bad_lines] == [
        (5, "invalid JSON: Expecting value"),
        (6, "f must be one of ['connect', 'disconnect', 'fault', 'node', 'phase', 'recv', 'send'], got 'teleport'"),
        (7, "send and recv rows need a string msg_id"),
        (8, "torn last line (interrupted write)"),
    ]


def test_missing_ledger_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError):
        read_ledger(tmp_path / "nothing.jsonl")
    with pytest.raises(LedgerError):
        read_ledger(tmp_path)
