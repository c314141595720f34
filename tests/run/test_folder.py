"""A rerun into the same folder starts a fresh record, and leaves the user's own files alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.run.folder import LOCK_NAME, claim_run_folder, clear_previous_run


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


def test_a_folder_in_use_by_a_live_run_is_refused_and_free_once_it_ends(tmp_path: Path) -> None:
    """Two runs in one folder cleared each other's files and each judged what was left (a false PASS)."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from harness.run.folder import claim_run_folder; claim_run_folder(Path(sys.argv[1])); "
                               "print('held', flush=True); time.sleep(60)", str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(HarnessError, match=rf"in use by another run \(PID {holder.pid}\)"):
            claim_run_folder(tmp_path)
    finally:
        holder.kill()  # kill -9: the kernel drops the lock with the process
        holder.wait()
    claim_run_folder(tmp_path)
    assert (tmp_path / LOCK_NAME).read_text() == str(os.getpid())
    assert clear_previous_run(tmp_path) == []  # the lock file is not an earlier run's record


def test_a_folder_this_process_holds_can_be_claimed_again(tmp_path: Path) -> None:
    claim_run_folder(tmp_path)
    claim_run_folder(tmp_path / ".." / tmp_path.name)  # the same folder by another path
