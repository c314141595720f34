"""A verdict in a folder speaks only for the ledger it judged: `harness gate` exits 3 when that ledger has changed
since (a re-check killed before it replaced the verdict), or when verdict.json itself is unreadable; a check that
fails leaves no copy of an earlier ledger to be judged in its place. Found by a hostile review (kill -9 during a
re-check; a failed check into a folder holding an earlier run's copy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import LedgerDamaged, LedgerError
from harness.ledger.format import to_frame, write_parquet
from harness.report.finalize import finalize
from tests.checker.builders import History
from tests.integration.helpers import harness


def _ledger(lost: int = 0) -> History:
    h = History().phase("start").connect("a", conn=1).connect("b", conn=1)
    for seq in range(1, 7):
        h.send("a", "b", seq)
        if seq > lost:
            h.recv("b", "a", "b", seq, conn=1)
    return h.finished()


def test_gate_refuses_a_verdict_whose_ledger_changed_and_accepts_a_faithful_copy(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write_parquet(_ledger().frame(), run / "ledger.parquet")
    assert finalize(run, html=False)["exit_code"] == 0
    copy = tmp_path / "copied"
    shutil.copytree(run, copy)  # new modification times, same bytes: a downloaded CI artefact
    assert harness("gate", str(copy)).returncode == 0
    write_parquet(_ledger(lost=3).frame(), run / "ledger.parquet")  # the re-check never ran (killed at start)
    gate = harness("gate", str(run))
    assert gate.returncode == 3, gate.stdout + gate.stderr
    assert gate.stderr.strip() == (f"error: verdict unknown: the ledger changed since {run / 'verdict.json'} was "
                                   "written (ledger.parquet); run `harness check` on it again")
    (run / "ledger.parquet").unlink()  # a report folder kept without its ledger: the verdict still gates
    assert harness("gate", str(run)).returncode == 0


@pytest.mark.parametrize("text", ['{"valid": true, "coun', "[]", ""])
def test_gate_on_an_unreadable_verdict_is_unknown_without_a_traceback(text: str, tmp_path: Path) -> None:
    (tmp_path / "verdict.json").write_text(text)
    gate = harness("gate", str(tmp_path))
    assert gate.returncode == 3, gate.stdout + gate.stderr
    assert "Traceback" not in gate.stderr
    assert gate.stderr.startswith(f"error: verdict unknown: {tmp_path / 'verdict.json'} cannot be read (")


def test_a_failed_check_leaves_no_earlier_ledger_copy_to_judge(tmp_path: Path) -> None:
    good, bad, out = tmp_path / "good.parquet", tmp_path / "bad.parquet", tmp_path / "out"
    write_parquet(_ledger().frame(), good)
    h = _ledger(lost=3)
    next(r for r in h.rows if r["type"] == "ok")["type"] = "OK"
    write_parquet(to_frame(h.rows), bad)
    assert finalize(good, out_dir=out, html=False)["exit_code"] == 0
    assert (out / "ledger.parquet").read_bytes() == good.read_bytes()
    with pytest.raises(LedgerDamaged):
        finalize(bad, out_dir=out, html=False)
    assert not (out / "ledger.parquet").exists()
    assert json.loads((out / "verdict.json").read_text())["exit_code"] == 3
    with pytest.raises(LedgerError, match="no ledger"):
        finalize(out, html=False)


def test_an_out_folder_whose_ledger_is_a_link_to_the_source_is_checked_in_place(tmp_path: Path) -> None:
    source, out = tmp_path / "ledger.parquet", tmp_path / "out"
    write_parquet(_ledger(lost=2).frame(), source)
    out.mkdir()
    (out / "ledger.parquet").symlink_to(source)
    doc = finalize(source, out_dir=out, html=False)
    assert (doc["valid"], doc["counts"]["lost"]) == (False, 2)
    assert (out / "ledger.parquet").is_symlink() and (out / "ledger.parquet").resolve() == source.resolve()


def test_a_verdict_in_another_folder_names_the_copy_that_travels_with_it(tmp_path: Path) -> None:
    source, out = tmp_path / "mine.parquet", tmp_path / "out"
    write_parquet(_ledger().frame(), source)
    doc = finalize(source, out_dir=out, html=False)
    assert [f["path"] for f in doc["ledger_files"]] == ["ledger.parquet"]
    write_parquet(_ledger(lost=3).frame(), source)  # the user's file changes; the judged copy did not
    assert harness("gate", str(out)).returncode == 0
    (out / "ledger.parquet").write_bytes(source.read_bytes())
    assert harness("gate", str(out)).returncode == 3


def test_gate_sees_every_ledger_file_a_check_of_the_folder_would_read(tmp_path: Path) -> None:
    """A JSON Lines run folder also holds the Parquet conversion, and a check of the folder reads every
    ledger*.jsonl: a lossy ledger.parquet copied over the conversion, or a new part beside the others, must not
    leave the old PASS gating (both passed: only the part that was read had been recorded)."""
    import json as json_

    run = tmp_path / "run"
    run.mkdir()
    (run / "ledger.jsonl").write_text("".join(json_.dumps(r) + "\n" for r in _ledger().rows))
    doc = finalize(run, html=False)
    assert sorted(f["path"] for f in doc["ledger_files"]) == ["ledger.jsonl", "ledger.parquet"]
    assert harness("gate", str(run)).returncode == 0
    conversion = (run / "ledger.parquet").read_bytes()
    write_parquet(_ledger(lost=3).frame(), run / "ledger.parquet")
    assert harness("gate", str(run)).returncode == 3
    (run / "ledger.parquet").write_bytes(conversion)
    assert harness("gate", str(run)).returncode == 0
    (run / "ledger-extra.jsonl").write_text((run / "ledger.jsonl").read_text())
    gate = harness("gate", str(run))
    assert gate.returncode == 3 and "(ledger-extra.jsonl)" in gate.stderr, gate.stderr


def test_a_json_lines_ledger_checked_into_another_folder_gates_on_its_conversion(tmp_path: Path) -> None:
    import json as json_

    source, out = tmp_path / "src" / "ledger.jsonl", tmp_path / "out"
    source.parent.mkdir()
    source.write_text("".join(json_.dumps(r) + "\n" for r in _ledger().rows))
    doc = finalize(source, out_dir=out, html=False)
    assert [f["path"] for f in doc["ledger_files"]] == ["ledger.parquet"]
    write_parquet(_ledger(lost=3).frame(), out / "ledger.parquet")
    assert harness("gate", str(out)).returncode == 3


@pytest.mark.parametrize("doc", [{"valid": True, "counts": "x"}, {"valid": True, "latency_ms": {"delivery": 5}}])
def test_gate_on_a_verdict_of_the_wrong_shape_is_unknown_without_a_traceback(doc: dict[str, object],
                                                                             tmp_path: Path) -> None:
    (tmp_path / "verdict.json").write_text(json.dumps(doc))
    gate = harness("gate", str(tmp_path))
    assert gate.returncode == 3, gate.stdout + gate.stderr
    assert "Traceback" not in gate.stderr
    assert gate.stderr.startswith(f"error: verdict unknown: {tmp_path / 'verdict.json'} is not a verdict harness "
                                  "check wrote (")
