"""The fast paths under delivery and order (radix sort, codes already by first appearance, integer columns with
nulls) give exactly what the general numpy / pandas calls give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from harness.checker.delivery import _floats, _in_appearance_order, column_codes
from harness.checker.ordering import _previous_max, _stable_argsort


@pytest.mark.parametrize("high", [1, 7, 2**16 - 1, 2**16, 2**20, 2**32 - 1, 2**32, 2**40])
def test_stable_argsort_is_numpys_stable_argsort(high: int) -> None:
    keys = np.random.default_rng(high).integers(0, high + 1, 5000, dtype=np.int64)
    keys[:3] = high  # the top key is present
    assert np.array_equal(_stable_argsort(keys), np.argsort(keys, kind="stable"))


def test_stable_argsort_of_negative_and_empty_keys() -> None:
    keys = np.array([3, -1, 2, -1, 3, 0], dtype=np.int64)
    assert np.array_equal(_stable_argsort(keys), np.argsort(keys, kind="stable"))
    assert _stable_argsort(np.zeros(0, dtype=np.int64)).size == 0


def test_previous_max_across_many_streams() -> None:
    rng = np.random.default_rng(1)
    stream = rng.integers(0, 70_000, 20_000, dtype=np.int64)
    seq = rng.integers(1, 50, 20_000, dtype=np.int64)
    table = pd.DataFrame({"stream": stream, "seq": seq})
    want = table.groupby("stream")["seq"].cummax().groupby(table["stream"]).shift(1).fillna(0).to_numpy(np.int64)
    assert np.array_equal(_previous_max(stream, seq, 52), want)


@pytest.mark.parametrize(("codes", "expected"), [
    ([0, 0, 1, 2, 1, 3], True), ([-1, 0, -1, 1, 0], True), ([-1, -1], True), ([1, 0], False), ([0, 2, 1], False),
    ([0, 1, 1, 3, 2], False),
])
def test_in_appearance_order(codes: list[int], expected: bool) -> None:
    assert _in_appearance_order(np.array(codes, dtype=np.int8)) is expected


@pytest.mark.parametrize("codes", [[0, 0, 1, 2, 1, 3], [-1, 0, -1, 1, 0], [-1, -1], [1, 0, 2], [0, 1, 1]])
def test_column_codes_of_a_categorical_match_factorize(codes: list[int]) -> None:
    categories = pd.Index(["a", "b", "c", "d"], dtype=pd.ArrowDtype(pa.string()))
    column = pd.Series(pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories)))
    got, values = column_codes(column)
    want, uniques = pd.factorize(column.astype(object))
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert list(values) == list(uniques)


@pytest.mark.parametrize("dtype", ["int64[pyarrow]", "Int64", "float64", "object"])
def test_floats_of_a_column_with_nulls(dtype: str) -> None:
    column = pd.Series([5, None, 7, None, 2**40], dtype=dtype)
    rows = np.array([4, 0, 1, 1, 3, 2])
    got = _floats(column, rows)
    want = np.array([2**40, 5, np.nan, np.nan, np.nan, 7], dtype=np.float64)
    assert got.dtype == np.float64 and np.array_equal(got, want, equal_nan=True)
