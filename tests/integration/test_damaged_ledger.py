"""`harness check` on a damaged ledger: unknown (exit 3) naming file and line, never a pass, never a traceback.

The ledger is a complete run in which everything was delivered, so damage is the only thing that can stop a
pass. Each case is what a reviewer did to a real ledger file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.checker.builders import History
from tests.integration.helpers import harness, verdict


def _complete_ledger(path: Path) -> list[str]:
    h = History().connect("a").connect("b").phase("start", faults=[])
    for seq in range(1, 6):
        h.send("a", "b", seq).recv("b", "a", "b", seq)
    h.finished()
    lines = [json.dumps(row) + "\n" for row in h.rows]
    path.write_text("".join(lines))
    return lines


def _garbage(lines: list[str]) -> str:
    return "".join(lines[:6] + ["garbage\n"] + lines[6:])


def _torn_last(lines: list[str]) -> str:
    return "".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2]


def _wrong_type(lines: list[str]) -> str:
    row = json.loads(lines[4])
    row["index"] = "abc"
    return "".join(lines[:4] + [json.dumps(row) + "\n"] + lines[5:])


def _deleted_receipt(lines: list[str]) -> str:
    last_recv = max(i for i, line in enumerate(lines) if '"f": "recv"' in line)
    return "".join(lines[:last_recv] + lines[last_recv + 1:])


@pytest.mark.parametrize(("damage", "where"), [
    (_garbage, "ledger.jsonl:7 invalid JSON"),
    (_torn_last, "torn last line"),
    (_wrong_type, "ledger.jsonl:5 index must be an integer, got 'abc'"),
    (_deleted_receipt, "ledger rows missing: index"),
])
def test_damage_is_unknown_with_its_place(tmp_path: Path, damage: Callable[[list[str]], str], where: str) -> None:
    ledger = tmp_path / "ledger.jsonl"
    lines = _complete_ledger(ledger)
    whole = harness("check", str(ledger), "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stdout + whole.stderr  # the undamaged ledger passes
    ledger.write_text(damage(lines))
    run = harness("check", str(ledger), "--out", str(tmp_path / "damaged"))
    assert run.returncode == 3, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    doc = verdict(tmp_path / "damaged")
    assert doc["valid"] == "unknown"
    assert doc["counts"]["lost"] == 0
    assert where in doc["reason"], doc["reason"]


def test_a_truncated_parquet_ledger_is_unknown_not_violated(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    _complete_ledger(ledger)
    assert harness("check", str(ledger)).returncode == 0  # writes ledger.parquet beside it
    parquet = tmp_path / "ledger.parquet"
    data = parquet.read_bytes()
    parquet.write_bytes(data[: len(data) // 2])
    run = harness("check", str(parquet), "--out", str(tmp_path / "out"))
    assert run.returncode == 3, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert f"verdict unknown: {parquet}: unreadable parquet ledger" in run.stderr


@pytest.mark.parametrize("make", ["directory", "binary"])
def test_a_scenario_that_is_a_directory_or_binary_is_a_clear_error(tmp_path: Path, make: str) -> None:
    path = tmp_path / "s.toml"
    if make == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"name = 'x'\n\xff\xfe\x00\n")
    run = harness("run", str(path))
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert f"{path}: field '(file)': " in run.stderr


def test_a_crash_exits_3_with_its_traceback_never_1(tmp_path: Path) -> None:
    """Exit 1 says the target lost messages: a crash of the harness itself (here the ledger reader raising what
    it never raises on purpose, as a bug or the machine running out of memory would) must not say that."""
    import subprocess
    import sys

    ledger = tmp_path / "ledger.jsonl"
    _complete_ledger(ledger)
    crash = ("import sys, harness.ledger.format as f\n"
             "def broken(*a, **k): raise MemoryError('Unable to allocate 7.62 MiB')\n"
             "f.read_jsonl = broken\n"
             "from harness.cli import main\n"
             f"sys.argv = ['harness', 'check', {str(ledger)!r}, '--out', {str(tmp_path / 'out')!r}]\n"
             "main()\n")
    run = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 3, run.stdout + run.stderr
    assert "Traceback" in run.stderr and "MemoryError: Unable to allocate 7.62 MiB" in run.stderr
    assert run.stderr.rstrip().endswith("error: the harness crashed (MemoryError): no verdict (exit 3)")
