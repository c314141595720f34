"""A partitioned check gives the one-pass verdict, to the byte, on ledgers forced into several partitions.

Each history below is written to Parquet, checked in one pass (``read_ledger`` + ``analyse`` + ``judge``) and
in 2, 3 and 7 partitions (``harness.report.finalize.analyse_partitioned``: split, one partition at a time,
merge, judge once); the whole verdict.json document must be equal, and the exact counts are asserted too, so
neither path can drift from the known history.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.checker import CheckOptions, analyse, judge
from harness.ledger.format import read_ledger, write_parquet
from harness.ledger.partition import NotPartitionable, split_ledger
from harness.report.finalize import analyse_partitioned, finalize
from tests.checker.builders import History
from tests.checker.test_check import counts

ROOT = Path(__file__).resolve().parents[2]

LIMITS = {"min_connected_share": 1.0, "min_ack_share": 0.5, "max_cpu_pct": 90.0, "max_cpu_saturated_share": 0.25}
SCHEDULE = [{"fault": "b-blackhole", "type": "timeout", "cohort": "b", "starts_s": [0.05], "duration_s": 0.05}]


def _start(h: History, **data: Any) -> History:
    return h.phase("start", 10, **{"connected": 3, "users": 3, "sending": True, "faults": SCHEDULE,
                                    "health_limits": LIMITS, "fair_chance_s": 2.0, **data})


def _many(h: History, sender: str, recipient: str, seqs: range) -> History:
    for seq in seqs:
        h.send(sender, recipient, seq).recv(recipient, sender, recipient, seq)
    return h


def lossy() -> History:
    """Lost, duplicated, unexpected (never sent, and to the wrong user), recovered, delivered after a fail,
    reordered / skipped / gap, two server offsets for one message, ack time-outs, health rows, a fault
    injected and healed, a reconnect with a replayed message."""
    h = _start(History().connect("a", conn=1, cohort="a").connect("b", conn=1, cohort="b")
               .connect("c", conn=1, cohort="c"), fair_chance_s=0.01)
    _many(h, "a", "b", range(1, 30))
    h.send("a", "b", 30)  # lost
    h.send("a", "c", 1).recv("c", "a", "c", 1).recv("c", "a", "c", 1)  # duplicated
    h.recv("c", "z", "c", 1, msg_id="ghost#1")  # never sent
    h.send("b", "a", 1).recv("c", "b", "a", 1)  # received by the wrong user (and lost for a)
    h.invoke("c", "a", 1).info("c", "a", 1).recv("a", "c", "a", 1)  # recovered
    h.invoke("c", "a", 2).fail("c", "a", 2).recv("a", "c", "a", 2)  # delivered after a fail
    h.invoke("c", "a", 3)._add(None, process="c", type="info", f="send", msg_id="c>a#3", sender="c", recipient="a",
                               seq=3, error="no ack within 5 s")
    for seq in (1, 2, 3, 4, 5):
        h.send("b", "c", seq)
    for seq in (1, 3, 2, 5):  # 2 reordered; 4 a gap; 3 and 5 skipped
        h.recv("c", "b", "c", seq, offset=f"o{seq}")
    h.recv("c", "b", "c", 5, offset="o99")  # stored twice
    h.fault("inject", "b-blackhole", "b", at_ms=60)
    h._add(70, process="controller", type="event", f="health", data={"cpu": {"load": 50.0, "target": 30.0}})
    h.fault("heal", "b-blackhole", "b", at_ms=100)
    h.send("a", "b", 31)
    h.disconnect("b").connect("b", conn=2).recv("b", "a", "b", 31, conn=2)
    _many(h, "c", "b", range(1, 12))
    return h.finished()


def two_nodes_one_unclosed() -> History:
    """Receipts on two nodes; worker-2 never closes its record: its users' messages are unseen, its unexpected
    receipts unverifiable."""
    h = _start(History().connect("a").connect("b", node="worker-2").connect("c"), faults=[])
    _many(h, "a", "c", range(1, 9))
    for seq in range(1, 6):
        h.send("a", "b", seq).recv("b", "a", "b", seq, node="worker-2")
    h.send("a", "b", 6)
    h.recv("c", "b", "c", 1)  # never sent by b, whose record is cut off: unverifiable
    h.phase("drain_end", quiescent=True).phase("end")
    return h.node_closed("local")


def index_hole() -> History:
    """A hole in the local node's index (a row lost from the record) and an incomplete run."""
    h = _start(History().connect("a").connect("b"), faults=[])
    _many(h, "a", "b", range(1, 15))
    del h.rows[20]
    h.send("a", "b", 15)
    return h


def late_reconnect() -> History:
    """A recipient that reconnected less than the fair chance before the drain ended: unseen, not lost."""
    h = _start(History().connect("a").connect("b"), faults=[])
    _many(h, "a", "b", range(1, 10))
    h.send("a", "b", 10)
    h.disconnect("b", at_ms=5000).connect("b", at_ms=5001, conn=2)
    h.phase("drain_end", 5500, quiescent=True).phase("end", 5501)
    return h.close_nodes()


CASES: dict[str, Callable[[], History]] = {"lossy": lossy, "two_nodes_one_unclosed": two_nodes_one_unclosed,
                                           "index_hole": index_hole, "late_reconnect": late_reconnect}


def _one_pass(path: Path, options: CheckOptions) -> dict[str, Any]:
    frame = read_ledger(path).frame
    return judge(analyse(frame, options), options).to_dict()


def _partitioned(path: Path, options: CheckOptions, parts: int, tmp: Path) -> dict[str, Any]:
    analysis, _ = analyse_partitioned(path, options, parts, tmp)
    return judge(analysis, options).to_dict()


@pytest.mark.parametrize("parts", [2, 3, 7])
@pytest.mark.parametrize("case", sorted(CASES))
def test_partitioned_verdict_is_the_one_pass_verdict(case: str, parts: int, tmp_path: Path) -> None:
    path = tmp_path / "ledger.parquet"
    write_parquet(CASES[case]().frame(), path)
    for options in (CheckOptions(), CheckOptions(delivery="effectively-once", ordered=True)):
        assert _partitioned(path, options, parts, tmp_path) == _one_pass(path, options)
    assert not list(tmp_path.glob(".partitions-*"))  # the scratch folder is removed


def test_the_lossy_history_has_its_exact_counts(tmp_path: Path) -> None:
    path = tmp_path / "ledger.parquet"
    write_parquet(lossy().frame(), path)
    doc = _partitioned(path, CheckOptions(), 3, tmp_path)
    assert doc["valid"] is False
    assert doc["counts"] == counts(attempted=52, acknowledged=49, failed=1, indeterminate=2, delivered=48, lost=3,
                                   duplicated=2, unexpected=2, recovered=1, delivered_after_fail=1, reordered=1,
                                   skipped=3, gap=2, duplicate_offsets=1, replayed=1)
    assert doc["examples"]["lost"] == ["a>b#30", "b>a#1", "b>c#4"]
    assert doc["examples"]["unexpected"] == ["ghost#1", "b>a#1"]
    assert doc["examples"]["skipped"] == ["b>c#3", "b>c#5", "a>b#31"]
    assert doc["details"]["faults"]["problems"] == [] and doc["details"]["faults"]["applied"] == 1
    assert doc["details"]["health"]["ack_timeouts"] == {"timed_out": 1, "sent": 52, "share": 0.0192}


def test_unclosed_node_is_unknown_in_partitions_too(tmp_path: Path) -> None:
    path = tmp_path / "ledger.parquet"
    write_parquet(two_nodes_one_unclosed().frame(), path)
    doc = _partitioned(path, CheckOptions(), 4, tmp_path)
    assert doc["valid"] == "unknown"
    assert doc["counts"] == counts(attempted=14, acknowledged=14, delivered=13, unseen=1, unverifiable=1)
    assert "worker-2" in doc["details"]["unhealthy_nodes"]


def test_synthetic_ledger_in_five_partitions(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic_ledger import make_ledger

    path = tmp_path / "ledger.parquet"
    expected = make_ledger(60_000, str(path), chunk_ticks=8)
    options = CheckOptions()
    doc = _partitioned(path, options, 5, tmp_path)
    assert {k: doc["counts"][k] for k in ("lost", "duplicated", "unexpected", "recovered", "reordered")} == {
        k: expected[k] for k in ("lost", "duplicated", "unexpected", "recovered", "reordered")}
    assert doc == _one_pass(path, options)


def test_a_room_ledger_is_not_split(tmp_path: Path) -> None:
    h = History().connect("a").connect("b").join("b", "r1").room_send("a", "r1", 1).room_recv("b", "a", "r1", 1)
    path = tmp_path / "ledger.parquet"
    write_parquet(h.finished().frame(), path)
    with pytest.raises(NotPartitionable):
        split_ledger(path, tmp_path / "split", 3)
    # finalize falls back to one pass: same verdict as never partitioning
    forced = finalize(path, out_dir=tmp_path / "forced", partition="always", parts=3, html=False)
    plain = finalize(path, out_dir=tmp_path / "plain", partition="never", html=False)
    assert forced == plain


def test_finalize_forced_into_partitions_writes_the_same_verdict(tmp_path: Path) -> None:
    path = tmp_path / "ledger.parquet"
    write_parquet(lossy().frame(), path)
    forced = finalize(path, out_dir=tmp_path / "forced", partition="always", parts=3)
    plain = finalize(path, out_dir=tmp_path / "plain", partition="never")
    assert forced == plain
    for name in ("verdict.json", "report.md", "junit.xml", "anomalies.json", "over_time.csv", "report.html"):
        assert (tmp_path / "forced" / name).exists(), name
    assert pd.read_csv(tmp_path / "forced" / "over_time.csv").equals(pd.read_csv(tmp_path / "plain" / "over_time.csv"))


@pytest.mark.parametrize("damage", ["none", "hole", "repeat", "no_index", "out_of_order", "starts_late"])
def test_index_damage_from_the_split_is_the_one_pass_damage(damage: str, tmp_path: Path) -> None:
    """The split keeps a node's indexes only once they stop going 1, 2, 3, …: across batches (batch_rows=7) the
    damage found must be what ``index_damage`` finds over the whole ledger."""
    from harness.checker.experiment import index_damage

    h = History().connect("a").connect("b", node="worker-2")
    for seq in range(1, 20):
        h.send("a", "b", seq).recv("b", "a", "b", seq, node="worker-2")
    h.finished()
    local = [i for i, r in enumerate(h.rows) if r["node"] == "local"]
    if damage == "hole":
        del h.rows[local[30]]
    elif damage == "repeat":
        h.rows[local[25]]["index"] = h.rows[local[24]]["index"]
    elif damage == "no_index":
        h.rows[local[12]]["index"] = None
    elif damage == "out_of_order":
        a, b = local[10], local[22]
        h.rows[a]["index"], h.rows[b]["index"] = h.rows[b]["index"], h.rows[a]["index"]
    elif damage == "starts_late":
        for i in local:
            h.rows[i]["index"] += 5
    frame = h.frame()
    path = tmp_path / "ledger.parquet"
    write_parquet(frame, path)
    split = split_ledger(path, tmp_path / "split", 3, batch_rows=7)
    assert index_damage(split.index_frame) == index_damage(read_ledger(path).frame)
    assert bool(index_damage(split.index_frame)) == (damage not in ("none", "out_of_order"))  # order alone is no damage
