"""A Parquet ledger keeps the rules each JSON Lines line is checked against, or it is not judged: a row that
breaks one (or a column of the wrong kind) is ``LedgerDamaged`` naming the file, the rule, the count and the
first row, never a verdict over what is left. The case that motivated it: a user's Parquet ledger whose lost
messages' ``ok`` rows had no msg_id was judged PASS, 0 lost (the same rows as JSON Lines: unknown)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from harness.checker import check
from harness.errors import LedgerDamaged
from harness.ledger.format import read_ledger, to_frame, write_parquet
from harness.report.finalize import finalize
from tests.checker.builders import History

LOST = (8, 9, 10)


def _three_lost(rooms: bool = True) -> History:
    """Ten acknowledged sends a → b, the last three never received: FAIL, 3 lost (b joins a room first, unless
    not ``rooms``: a ledger with rooms is never checked in partitions)."""
    h = History().phase("start").connect("a", conn=1).connect("b", conn=1)
    if rooms:
        h.join("b", "lobby")
    for seq in range(1, 11):
        h.send("a", "b", seq)
        if seq not in LOST:
            h.recv("b", "a", "b", seq, conn=1)
    return h.finished()


def _lost_ok_rows(h: History) -> list[int]:
    ids = {History._mid("a", "b", seq) for seq in LOST}
    return [i for i, r in enumerate(h.rows) if r.get("msg_id") in ids and r["type"] == "ok"]


def _write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in rows))


DAMAGE = {  # column, value put on the lost messages' ok rows (or on the join's answer), the rule's words
    "msg_id null": ("msg_id", None, "3 send or recv row(s) without a msg_id"),
    "type 'OK'": ("type", "OK", "3 row(s) whose type is not one of event, fail, info, invoke, ok"),
    "type null": ("type", None, "3 row(s) whose type is not one of"),
    "f 'SEND'": ("f", "SEND", "3 row(s) whose f is not one of"),
    "f null": ("f", None, "3 row(s) whose f is not one of"),
    "t_ns null": ("t_ns", None, "3 row(s) without a t_ns"),
    "type event on sends": ("type", "event", "3 send row(s) of type event, or recv row(s) of a type other than ok"),
}


def test_the_honest_ledger_fails_with_three_lost() -> None:
    verdict = check(_three_lost().frame())
    assert verdict.valid is False and verdict.counts["lost"] == 3


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_broken_row_is_never_judged_from_parquet_and_is_a_bad_line_in_json_lines(damage: str,
                                                                                  tmp_path: Path) -> None:
    column, value, words = DAMAGE[damage]
    h = _three_lost()
    rows = _lost_ok_rows(h)
    for i in rows:
        h.rows[i][column] = value
    write_parquet(to_frame(h.rows), tmp_path / "ledger.parquet")
    with pytest.raises(LedgerDamaged) as caught:
        read_ledger(tmp_path / "ledger.parquet")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'ledger.parquet'}: 3 row(s) break the ledger format: {words}")
    assert f"(the first: row {rows[0] + 1}" in message
    _write_jsonl(h.rows, tmp_path / "ledger.jsonl")
    load = read_ledger(tmp_path / "ledger.jsonl")
    assert [b.line for b in load.bad_lines] == [i + 1 for i in rows]


def test_a_join_without_a_room_is_named(tmp_path: Path) -> None:
    h = _three_lost()
    answer = next(i for i, r in enumerate(h.rows) if r["f"] == "join" and r["type"] == "ok")
    h.rows[answer]["room"] = None
    write_parquet(to_frame(h.rows), tmp_path / "ledger.parquet")
    with pytest.raises(LedgerDamaged, match=rf"1 row\(s\) break the ledger format: 1 join or leave row\(s\) "
                                            rf"without a room \(the first: row {answer + 1}\)"):
        read_ledger(tmp_path / "ledger.parquet")


def test_several_rules_broken_are_each_counted_and_rows_counted_once(tmp_path: Path) -> None:
    h = _three_lost()
    first, second, third = _lost_ok_rows(h)
    h.rows[first]["type"] = "OK"
    h.rows[first]["t_ns"] = None  # one row breaking two rules
    h.rows[second]["msg_id"] = None
    write_parquet(to_frame(h.rows), tmp_path / "ledger.parquet")
    with pytest.raises(LedgerDamaged) as caught:
        read_ledger(tmp_path / "ledger.parquet")
    message = str(caught.value)
    assert ": 2 row(s) break the ledger format: 1 row(s) whose type is not one of" in message
    assert f"(the first: row {first + 1}, type 'OK')" in message
    assert f"1 send or recv row(s) without a msg_id (the first: row {second + 1})" in message
    assert f"1 row(s) without a t_ns (the first: row {first + 1})" in message


def _parquet(h: History, path: Path, **columns: pa.Array) -> None:
    """``h`` written as Parquet with some columns replaced by arrays of another Arrow type."""
    write_parquet(h.frame(), path)
    table = pq.read_table(path)
    for name, array in columns.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, array)
        else:
            table = table.append_column(name, array)
    pq.write_table(table, path)


@pytest.mark.parametrize(("name", "kind", "words"), [
    ("t_ns", pa.string(), "t_ns is stored as string, the ledger format needs integers"),
    ("t_ns", pa.timestamp("ns"), "t_ns is stored as timestamp[ns], the ledger format needs integers"),
    ("seq", pa.uint64(), "seq is stored as uint64, the ledger format needs integers"),
    ("conn", pa.float64(), "conn is stored as double, the ledger format needs integers"),
    ("msg_id", pa.binary(), "msg_id is stored as binary, the ledger format needs text"),
    ("node", pa.int64(), "node is stored as int64, the ledger format needs text"),
])
def test_a_column_of_the_wrong_kind_is_named(name: str, kind: pa.DataType, words: str, tmp_path: Path) -> None:
    h = _three_lost()
    path = tmp_path / "ledger.parquet"
    write_parquet(h.frame(), path)
    original = pq.read_table(path).column(name)
    if pa.types.is_integer(original.type) and pa.types.is_string(kind):
        replaced = pc.cast(original, pa.string())
    elif pa.types.is_integer(kind):
        replaced = pa.array(range(len(original)), kind)
    else:
        replaced = pc.cast(original, kind)
    _parquet(h, path, **{name: replaced})
    want = f"{path}: not a ledger: {words} (the format: docs/ledger.md)"
    with pytest.raises(LedgerDamaged, match=f"^{re.escape(want)}$"):
        read_ledger(path)


def test_missing_and_repeated_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "ledger.parquet"
    write_parquet(_three_lost().frame(), path)
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["f", "t_ns"]), path)
    with pytest.raises(LedgerDamaged, match=r"not a ledger: no t_ns, f columns"):
        read_ledger(path)
    pq.write_table(table.append_column("msg_id", table.column("msg_id")), path)
    with pytest.raises(LedgerDamaged, match=r"not a ledger: 2 columns named msg_id"):
        read_ledger(path)


def test_a_missing_msg_id_column_is_every_send_and_receipt_without_one(tmp_path: Path) -> None:
    h = _three_lost()
    path = tmp_path / "ledger.parquet"
    write_parquet(h.frame(), path)
    pq.write_table(pq.read_table(path).drop_columns(["msg_id"]), path)
    sends_and_receipts = sum(r["f"] in ("send", "recv") for r in h.rows)
    with pytest.raises(LedgerDamaged, match=rf": {sends_and_receipts} row\(s\) break the ledger format: "
                                            rf"{sends_and_receipts} send or recv row\(s\) without a msg_id"):
        read_ledger(path)


def test_other_arrow_layouts_of_the_same_values_get_the_same_verdict(tmp_path: Path) -> None:
    """What other tools write for the same values (string views, large strings, dictionaries, narrower
    integers, an all-null column) is read as the values it holds."""
    h = _three_lost()
    want = check(h.frame()).to_dict()
    path = tmp_path / "ledger.parquet"
    write_parquet(h.frame(), path)
    table = pq.read_table(path)
    column = table.column
    _parquet(h, path, msg_id=pc.cast(column("msg_id"), pa.string_view()),
             sender=pc.cast(column("sender"), pa.string_view()), recipient=pc.cast(column("recipient"),
                                                                                  pa.large_string()),
             process=column("process").combine_chunks().dictionary_encode(), t_ns=column("t_ns"),
             seq=pc.cast(column("seq"), pa.int32()), offset=pa.nulls(len(table)))
    assert check(read_ledger(path).frame).to_dict() == want
    _parquet(h, path, msg_id=column("msg_id").combine_chunks().dictionary_encode(),
             room=pc.cast(column("room"), pa.large_string()))
    assert check(read_ledger(path).frame).to_dict() == want


@pytest.mark.parametrize(("text", "words"), [
    ("[1, 2]", "is a JSON list, not an object"),
    ("{'phase': 'end'}", "is not JSON text (Expecting property name enclosed in double quotes"),
    ("[" * 100_000 + "]" * 100_000, "is JSON nested too deeply to read"),
])
def test_data_that_is_not_a_json_object_is_named_with_its_row(text: str, words: str, tmp_path: Path) -> None:
    h = _three_lost()
    path = tmp_path / "ledger.parquet"
    at = next(i for i, r in enumerate(h.rows) if r.get("data"))
    write_parquet(h.frame(), path)
    data = pq.read_table(path).column("data").to_pylist()
    data[at] = text
    _parquet(h, path, data=pa.array(data, pa.string()))
    with pytest.raises(LedgerDamaged, match=f"^{re.escape(f'{path}: data at row {at + 1} {words}')}"):
        read_ledger(path)


def test_json_nested_too_deeply_is_a_bad_line_in_json_lines(tmp_path: Path) -> None:
    h = _three_lost()
    path = tmp_path / "ledger.jsonl"
    _write_jsonl(h.rows, path)
    with path.open("a") as handle:
        handle.write('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    load = read_ledger(path)
    assert [(b.line, b.reason) for b in load.bad_lines] == [(len(h.rows) + 1, "JSON nested too deeply to read")]


@pytest.mark.parametrize("where", ["partition", "global rows"])
def test_a_partitioned_check_names_the_ledger_and_its_row_not_the_partition(where: str, tmp_path: Path) -> None:
    """Sends and receipts are judged from partition files, the other rows from a global file (both scratch files
    of the split): an error names the ledger and the row's number in it."""
    h = _three_lost(rooms=False)
    path = tmp_path / "ledger.parquet"
    if where == "partition":
        rows = _lost_ok_rows(h)
        for i in rows:
            h.rows[i]["type"] = "OK"
        want = (f"{path}: 3 row(s) break the ledger format: 3 row(s) whose type is not one of event, fail, info, "
                f"invoke, ok (the first: row {rows[0] + 1}, type 'OK') (docs/ledger.md)")
    else:
        phase = max(i for i, r in enumerate(h.rows) if r["f"] == "phase")
        h.rows[phase]["t_ns"] = None
        want = f"{path}: 1 row(s) break the ledger format: 1 row(s) without a t_ns (the first: row {phase + 1}) " \
               "(docs/ledger.md)"
    write_parquet(to_frame(h.rows), path)
    for parts in (1, 3):  # the split counts every row: the same message however the rows are spread
        with pytest.raises(LedgerDamaged) as caught:
            finalize(path, out_dir=tmp_path / "out", partition="always", parts=parts, html=False)
        assert str(caught.value) == want
    with pytest.raises(LedgerDamaged) as caught:
        finalize(path, out_dir=tmp_path / "one", partition="never", html=False)
    assert str(caught.value) == want  # and the one-pass check's


@pytest.mark.parametrize(("text", "words"), [
    ("[1]", "is a JSON list, not an object"),
    ("{not json at all}", "is not JSON text (Expecting property name enclosed in double quotes"),
    ("[" * 100_000 + "]" * 100_000, "is JSON nested too deeply to read"),
])
def test_a_partitioned_check_rejects_receipt_data_as_one_pass_does(text: str, words: str, tmp_path: Path) -> None:
    """Only the split sees a receipt's data in a partitioned check (the partitions carry no data column): it must
    say what the one-pass check says (a '{not json}' receipt was a PASS in partitions, unknown in one pass)."""
    h = _three_lost(rooms=False)
    at = next(i for i, r in enumerate(h.rows) if r["f"] == "recv")
    for row in h.rows:
        if row["f"] == "recv":
            row["data"] = {"resent": True, "emit_id": 7 if row is h.rows[at] else "x"}  # mixed types: still fine
    path = tmp_path / "ledger.parquet"
    write_parquet(to_frame(h.rows), path)
    assert finalize(path, out_dir=tmp_path / "fine", partition="always", parts=2, html=False)["valid"] is False
    data = pq.read_table(path).column("data").to_pylist()
    data[at] = text
    _parquet(h, path, data=pa.array(data, pa.string()))
    want = f"{path}: data at row {at + 1} {words}"
    for partition in ("always", "never"):
        with pytest.raises(LedgerDamaged, match=f"^{re.escape(want)}"):
            finalize(path, out_dir=tmp_path / partition, partition=partition,  # type: ignore[arg-type]
                     parts=2, html=False)


def test_string_views_and_null_typed_columns_get_the_same_verdict_in_partitions(tmp_path: Path) -> None:
    h = _three_lost(rooms=False)
    path = tmp_path / "ledger.parquet"
    write_parquet(h.frame(), path)
    want = finalize(path, out_dir=tmp_path / "plain", partition="never", html=False)
    column = pq.read_table(path).column
    _parquet(h, path, **{name: pc.cast(column(name), pa.string_view()) for name in ("f", "msg_id", "node", "data")},
             offset=pa.nulls(len(h.rows)), room=pa.nulls(len(h.rows)))
    for partition in ("never", "always"):
        got = finalize(path, out_dir=tmp_path / partition, partition=partition,  # type: ignore[arg-type]
                       parts=2, html=False)
        assert (got["valid"], got["counts"]) == (want["valid"], want["counts"]), partition


def test_a_failed_re_check_replaces_the_old_pass_with_unknown(tmp_path: Path) -> None:
    """`harness gate` reads the folder's verdict.json: a re-check that cannot read the ledger must not leave the
    earlier PASS (nor its pages) there."""
    h = History().phase("start").connect("a", conn=1).connect("b", conn=1)
    for seq in range(1, 6):
        h.send("a", "b", seq).recv("b", "a", "b", seq, conn=1)
    h.finished()
    run = tmp_path / "run"
    run.mkdir()
    write_parquet(h.frame(), run / "ledger.parquet")
    doc = finalize(run)
    assert (doc["valid"], doc["exit_code"]) == (True, 0)
    assert (run / "report.html").exists() and (run / "messages.png").exists()
    h.rows[3]["type"] = "OK"
    write_parquet(to_frame(h.rows), run / "ledger.parquet")
    with pytest.raises(LedgerDamaged):
        finalize(run)
    saved = json.loads((run / "verdict.json").read_text())
    assert (saved["valid"], saved["exit_code"], saved["counts"]) == ("unknown", 3, {})
    assert saved["reason"] == (f"ledger unreadable: {run / 'ledger.parquet'}: 1 row(s) break the ledger format: "
                               "1 row(s) whose type is not one of event, fail, info, invoke, ok (the first: row 4, "
                               "type 'OK') (docs/ledger.md)")
    assert not (run / "report.html").exists() and not (run / "messages.png").exists()
    assert "UNKNOWN" in (run / "report.md").read_text()


def test_checking_a_run_folder_leaves_its_parquet_ledger_as_it_was(tmp_path: Path) -> None:
    """A folder holding only ledger.parquet (the user's own, with a column of their own) is read, not rewritten."""
    h = _three_lost()
    path = tmp_path / "ledger.parquet"
    _parquet(h, path, shard=pa.array(["s1"] * len(h.rows)))
    before = path.read_bytes()
    doc = finalize(tmp_path, html=False)
    assert doc["counts"]["lost"] == 3
    assert path.read_bytes() == before
    finalize(tmp_path, out_dir=tmp_path / "elsewhere", html=False)
    assert (tmp_path / "elsewhere" / "ledger.parquet").read_bytes() == before


def test_a_receipt_that_is_not_ok_is_refused_in_every_path(tmp_path: Path) -> None:
    """The checker counts only ``ok`` receipts: one of another type would vanish, so it breaks the format."""
    h = _three_lost(rooms=False)
    at = [i for i, r in enumerate(h.rows) if r["f"] == "recv"][:2]
    for i in at:
        h.rows[i]["type"] = "info"
    path = tmp_path / "ledger.parquet"
    write_parquet(to_frame(h.rows), path)
    want = (f"{path}: 2 row(s) break the ledger format: 2 send row(s) of type event, or recv row(s) of a type other "
            f"than ok (the first: row {at[0] + 1}, type 'info') (docs/ledger.md)")
    for partition in ("never", "always"):
        with pytest.raises(LedgerDamaged) as caught:
            finalize(path, out_dir=tmp_path / partition, partition=partition,  # type: ignore[arg-type]
                     parts=2, html=False)
        assert str(caught.value) == want
    _write_jsonl(h.rows, tmp_path / "ledger.jsonl")
    bad = read_ledger(tmp_path / "ledger.jsonl").bad_lines
    assert [(b.line, b.reason) for b in bad] == [
        (i + 1, "a recv row cannot have type 'info' (send: invoke, ok, fail or info; recv: ok)") for i in at]
