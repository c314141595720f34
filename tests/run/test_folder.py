"""A rerun into the same folder starts a fresh record, and leaves the user's own files alone."""

from __future__ import annotations

from pathlib import Path

from harness.run.folder import clear_previous_run


def test_an_earlier_runs_record_is_removed_and_nothing_else(tmp_path: Path) -> None:
    for name in ("ledger.jsonl", "ledger-worker-1.jsonl", "verdict.json", "report.html", "target-naive.log"):
        (tmp_path / name).write_text("old")
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "appendonly.aof").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    removed = clear_previous_run(tmp_path)
    assert sorted(p.name for p in removed) == ["ledger-worker-1.jsonl", "ledger.jsonl", "redis", "report.html",
                                               "target-naive.log", "verdict.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert clear_previous_run(tmp_path) == []
