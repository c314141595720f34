"""Message ids read from Parquet as one categorical (harness.ledger.format._id_categorical): the same ids, nulls
and first-appearance codes as ``pd.factorize`` of the strings, across several row groups."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.checker.delivery import column_codes
from harness.ledger.format import _id_categorical


def test_ids_across_row_groups_with_nulls_match_factorize(tmp_path: Path) -> None:
    ids = ["b", "a", None, "b", "c", "a", None, "d", "c", "b"]
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"msg_id": pa.array(ids, type=pa.string())}), path, row_group_size=3)
    column = pq.read_table(path).column(0)
    assert column.num_chunks > 1  # the case that needs one dictionary across chunks

    cat = pd.Series(_id_categorical(column))
    assert [None if pd.isna(v) else v for v in cat.astype(object)] == ids
    codes, values = column_codes(cat)
    want_codes, want_values = pd.factorize(pd.Series(ids, dtype=object))
    assert codes.tolist() == want_codes.tolist() == [0, 1, -1, 0, 2, 1, -1, 3, 2, 0]
    assert list(values) == list(want_values) == ["b", "a", "c", "d"]
