"""A ledger read back from Parquet (categorical string columns, Arrow-backed integers) gets exactly the verdict
of the same rows read from JSON Lines (pandas ``string`` columns): the dtypes are the reader's business, never the
checker's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.checker import check
from harness.checker.delivery import column_codes
from harness.ledger.format import read_ledger, write_parquet
from tests.checker.builders import History


def _pathological() -> History:
    h = History().phase("start")
    for user, cohort in (("a", "c1"), ("b", "c1"), ("c", "c2")):
        h.connect(user, conn=1, cohort=cohort)
    h.join("b", "r").join("c", "r")
    h.send("a", "b", 1).recv("b", "a", "b", 1, conn=1, offset="o1")
    h.send("a", "b", 2).send("a", "b", 3).recv("b", "a", "b", 3, conn=1).recv("b", "a", "b", 2, conn=1)  # reordered
    h.send("a", "b", 4)  # lost
    h.send("a", "b", 5).recv("b", "a", "b", 5, conn=1, offset="o5").recv("b", "a", "b", 5, conn=1, offset="o6")
    h.send("a", "c", 1, outcome="info").recv("c", "a", "c", 1, conn=1)  # recovered
    h.send("a", "c", 2, outcome="fail").recv("c", "a", "c", 2, conn=1)  # delivered after fail
    h.recv("c", "z", "c", 1, msg_id="ghost", conn=1)  # unexpected
    h.fault("inject", "cut", "c2").disconnect("c").connect("c", conn=2).fault("heal", "cut", "c2")
    h.send("b", "c", 1).recv("c", "b", "c", 1, conn=2, node="worker-1")
    h.room_send("a", "r", 1).room_recv("b", "a", "r", 1)  # c's copy lost
    h.room_send("a", "r", 2).room_recv("b", "a", "r", 2).room_recv("c", "a", "r", 2)
    h.room_recv("c", "a", "r", 2, in_room="elsewhere")  # a stray copy
    return h.finished()


def _damaged() -> History:
    h = _pathological()
    del h.rows[7]  # an index hole on node local
    return h


def _plain() -> History:
    h = History().phase("start").connect("a", conn=1).connect("b", conn=1)
    for seq in range(1, 6):
        h.send("a", "b", seq).recv("b", "a", "b", seq, conn=1)
    return h.finished()


@pytest.mark.parametrize("build", [_plain, _pathological, _damaged, lambda: History()])
def test_parquet_and_jsonl_rows_get_the_same_verdict(tmp_path: Path, build: object) -> None:
    frame = build().frame()  # type: ignore[operator]
    write_parquet(frame, tmp_path / "ledger.parquet")
    back = read_ledger(tmp_path / "ledger.parquet").frame
    assert isinstance(back["f"].dtype, pd.CategoricalDtype)
    assert check(back).to_dict() == check(frame).to_dict()


def test_column_codes_match_factorize_for_every_dtype() -> None:
    values = ["b", None, "a", "b", "c", None, "a"]
    want_codes, want_values = pd.factorize(pd.Series(values, dtype="string"))
    for column in (pd.Series(values, dtype="string"), pd.Series(values, dtype="category"),
                   pd.Series(pd.Categorical(values, categories=["c", "zzz", "b", "a"]))):
        codes, uniques = column_codes(column)
        assert codes.tolist() == want_codes.tolist()
        assert [str(v) for v in uniques] == [str(v) for v in want_values]
    codes, uniques = column_codes(pd.Series(pd.Categorical.from_codes(np.full(3, -1), categories=[])))
    assert codes.tolist() == [-1, -1, -1] and len(uniques) == 0
