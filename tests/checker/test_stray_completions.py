"""A send has one completion row per invoke. A completion that matches no invoke (an id never invoked, or a second
completion of one) is a damaged record: it can move an acknowledgment away from a lost message, whose send then
reads as unknown instead of lost. Found by a hostile review: each case below was a PASS, "all 3 acknowledged
messages delivered", over a ledger in which three acknowledged messages were never received."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.checker import check
from harness.ledger.format import to_frame, write_parquet
from harness.report.finalize import finalize
from tests.checker.builders import History

LOST = (4, 5, 6)


def _three_lost() -> History:
    """Six acknowledged sends a → b, the last three never received: FAIL, 3 lost."""
    h = History().phase("start").connect("a", conn=1).connect("b", conn=1)
    for seq in range(1, 7):
        h.send("a", "b", seq)
        if seq not in LOST:
            h.recv("b", "a", "b", seq, conn=1)
    return h.finished()


def _lost_rows(h: History, kind: str) -> list[dict[str, Any]]:
    ids = {History._mid("a", "b", seq) for seq in LOST}
    return [r for r in h.rows if r.get("msg_id") in ids and r["type"] == kind and r["f"] == "send"]


def _renumber(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Indexes 1, 2, 3, … again after rows were removed (a careful forger leaves no hole)."""
    return [{**r, "index": i} for i, r in enumerate(rows, start=1)]


def _ids_emptied(h: History) -> list[dict[str, Any]]:
    for row in _lost_rows(h, "ok"):
        row["msg_id"] = ""
    return h.rows


def _ids_padded(h: History) -> list[dict[str, Any]]:
    for row in _lost_rows(h, "ok"):
        row["msg_id"] += " "
    return h.rows


def _ids_of_a_received_message(h: History) -> list[dict[str, Any]]:
    for row in _lost_rows(h, "ok"):
        row["msg_id"] = History._mid("a", "b", 1)
    return h.rows


def _invokes_dropped(h: History) -> list[dict[str, Any]]:
    dropped = {id(r) for r in _lost_rows(h, "invoke")}
    return _renumber([r for r in h.rows if id(r) not in dropped])


DAMAGE: dict[str, tuple[Callable[[History], list[dict[str, Any]]], str]] = {
    "ids emptied": (_ids_emptied, "''"),
    "ids padded": (_ids_padded, "'a>b#4 '"),
    "ids of a received message": (_ids_of_a_received_message, "'a>b#1'"),
    "invokes dropped": (_invokes_dropped, "'a>b#4'"),
}


def test_the_honest_ledger_fails_with_three_lost() -> None:
    verdict = check(_three_lost().frame())
    assert (verdict.valid, verdict.counts["lost"], verdict.counts["acknowledged"]) == (False, 3, 6)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_stray_completions_make_the_verdict_unknown_naming_the_node(damage: str) -> None:
    forge, first = DAMAGE[damage]
    verdict = check(to_frame(forge(_three_lost())))
    assert verdict.valid == "unknown"
    assert verdict.details["unhealthy_nodes"] == {
        "local": f"3 send completion row(s) match no invoke (an id never invoked, or a second completion; the "
                 f"first: {first})"}
    assert any("the record of load process(es) local (3 send completion row(s) match no invoke" in r
               for r in verdict.reasons), verdict.reasons


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_partitioned_check_finds_them_too(damage: str, tmp_path: Path) -> None:
    forge, _ = DAMAGE[damage]
    path = tmp_path / "ledger.parquet"
    write_parquet(to_frame(forge(_three_lost())), path)
    one = finalize(path, out_dir=tmp_path / "one", partition="never", html=False)
    parts = finalize(path, out_dir=tmp_path / "parts", partition="always", parts=3, html=False)
    assert one["valid"] == parts["valid"] == "unknown"
    assert one["details"]["unhealthy_nodes"] == parts["details"]["unhealthy_nodes"]
    assert one["counts"] == parts["counts"]


def test_a_sound_ledger_with_retries_has_no_stray_completion() -> None:
    """Two invokes of one id (a resend) may have two completions: one per invoke is the format."""
    h = History().phase("start").connect("a", conn=1).connect("b", conn=1)
    h.send("a", "b", 1, outcome="info").send("a", "b", 1).recv("b", "a", "b", 1, conn=1)
    verdict = check(h.finished().frame())
    assert verdict.valid is True and verdict.details["unhealthy_nodes"] == {}
