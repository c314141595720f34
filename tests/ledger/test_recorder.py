"""LedgerWriter's batches: the row and time bounds, flush/close, and what a real SIGKILL leaves in the file."""

from __future__ import annotations

import json
import mmap
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gevent

from harness.ledger.format import read_ledger
from harness.ledger.recorder import BATCH_ROWS, BATCH_S, LedgerWriter

ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _row(writer: LedgerWriter, n: int) -> None:
    writer.append(process="u1-0", type="invoke", f="send", msg_id=f"m{n}", sender="u1-0", recipient="u2-0", seq=n,
                  conn=1)


class TestBatches:
    def test_a_batch_is_written_when_it_reaches_batch_rows(self, tmp_path: Path) -> None:
        path = tmp_path / "ledger.jsonl"
        writer = LedgerWriter(path, "r", "local", batch_rows=10, batch_s=3600)
        for n in range(1, 10):
            _row(writer, n)
        assert path.read_bytes() == b"" and writer.buffered == 9
        _row(writer, 10)  # the tenth row: all ten go out in one write
        assert [r["index"] for r in _lines(path)] == list(range(1, 11)) and writer.buffered == 0
        for n in range(11, 14):
            _row(writer, n)
        assert len(_lines(path)) == 10 and writer.rows_written == 13
        writer.close()

    def test_a_batch_is_written_batch_s_after_its_first_row(self, tmp_path: Path) -> None:
        path = tmp_path / "ledger.jsonl"
        writer = LedgerWriter(path, "r", "local", batch_rows=1000, batch_s=0.05)
        _row(writer, 1)
        _row(writer, 2)
        assert path.read_bytes() == b""
        deadline = time.monotonic() + 10  # the timer runs when the hub does; generous against a busy machine
        while not path.read_bytes() and time.monotonic() < deadline:
            gevent.sleep(0.01)
        assert [r["index"] for r in _lines(path)] == [1, 2] and writer.buffered == 0
        writer.close()

    def test_the_timer_is_armed_again_for_the_next_batch(self, tmp_path: Path) -> None:
        path = tmp_path / "ledger.jsonl"
        writer = LedgerWriter(path, "r", "local", batch_rows=1000, batch_s=0.02)
        for n in (1, 2):
            _row(writer, n)
            deadline = time.monotonic() + 10
            while writer.buffered and time.monotonic() < deadline:
                gevent.sleep(0.01)
            assert len(_lines(path)) == n
        writer.close()

    def test_flush_writes_everything_and_close_adds_node_closed(self, tmp_path: Path) -> None:
        path = tmp_path / "ledger.jsonl"
        writer = LedgerWriter(path, "r", "local", batch_rows=1000, batch_s=3600)
        for n in range(1, 6):
            _row(writer, n)
        writer.flush()
        assert len(_lines(path)) == 5 and writer.buffered == 0
        _row(writer, 6)
        writer.close()
        rows = _lines(path)
        assert [r["index"] for r in rows] == list(range(1, 8)) and rows[-1]["data"] == {"phase": "node_closed"}
        _row(writer, 8)  # ignored after close
        assert len(_lines(path)) == 7

    def test_without_gevent_patching_every_row_is_written_at_once(self, tmp_path: Path) -> None:
        writer = LedgerWriter(tmp_path / "ledger.jsonl", "r", "local")  # pytest's process is not monkey-patched
        assert writer.batch_rows == 1
        _row(writer, 1)
        assert len(_lines(tmp_path / "ledger.jsonl")) == 1
        writer.close()


# -- a real SIGKILL ------------------------------------------------------------------------------------------------
_CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import mmap, os, struct, sys, time
    import gevent
    from harness.ledger.recorder import LedgerWriter

    ledger, shared, limit, pause_after = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(shared, "r+b") as handle:
        mm = mmap.mmap(handle.fileno(), 16)
    writer = LedgerWriter(ledger, "r", "local")  # the defaults a load process gets
    assert writer.batch_rows > 1
    appended = 0
    for n in range(1, limit + 1):  # bounded: the test kills it long before
        writer.append(process="u1-0", type="invoke", f="send", msg_id=f"m{n}", sender="u1-0", recipient="u2-0",
                      seq=n, conn=1, data={"pad": "x" * 40})
        appended = n
        struct.pack_into("<QQ", mm, 0, appended, 0)
        if n == pause_after:  # stop appending, stay alive with the event loop free
            struct.pack_into("<QQ", mm, 0, appended, 1)
            gevent.sleep(120)
        if n % 50 == 0:
            gevent.sleep(0.001)  # as a load process's users do: the hub runs between sends
""")


def _kill_child(tmp_path: Path, pause_after: int, wait_s: float) -> tuple[Path, int]:
    """Start the child, wait until it has appended a few thousand rows (or paused), wait ``wait_s`` more, SIGKILL
    it by PID; returns the ledger and how many appends had completed."""
    ledger, shared = tmp_path / "ledger.jsonl", tmp_path / "shared"
    shared.write_bytes(bytes(16))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(ledger), str(shared), "2000000", str(pause_after)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        with shared.open("r+b") as handle:
            mm = mmap.mmap(handle.fileno(), 16)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            appended, paused = struct.unpack_from("<QQ", mm, 0)
            if paused if pause_after else appended >= 5000:
                break
            time.sleep(0.01)
        assert child.poll() is None, "the child ended by itself"
        time.sleep(wait_s)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        appended = struct.unpack_from("<QQ", mm, 0)[0]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    return ledger, appended


def _complete_rows(ledger: Path) -> list[int]:
    """Indexes of the complete lines; at most the last line may be torn (no newline: an interrupted write)."""
    data = ledger.read_bytes()
    body = data[:data.rfind(b"\n") + 1]
    indexes = [json.loads(line)["index"] for line in body.splitlines()]
    assert indexes == list(range(1, len(indexes) + 1))  # in order, no holes
    return indexes


def test_sigkill_mid_stream_loses_at_most_batch_rows(tmp_path: Path) -> None:
    ledger, appended = _kill_child(tmp_path, pause_after=0, wait_s=0.2)
    rows = _complete_rows(ledger)
    # The append in progress at the kill may have been counted or not: at most one more than `appended`.
    assert appended >= 5000 and len(rows) <= appended + 1
    assert appended - len(rows) <= BATCH_ROWS, (appended, len(rows))
    load = read_ledger(ledger)  # the reader takes what is there, a torn last line reported, never a crash
    assert len(load.frame) == len(rows)
    assert all("torn last line" in bad.reason for bad in load.bad_lines) and len(load.bad_lines) <= 1


def test_sigkill_after_batch_s_of_quiet_loses_nothing(tmp_path: Path) -> None:
    # 1234 rows: a partial batch is left for the timer. A second is 20x BATCH_S: the bound is not timed tightly.
    ledger, appended = _kill_child(tmp_path, pause_after=1234, wait_s=max(1.0, 20 * BATCH_S))
    assert appended == 1234
    assert _complete_rows(ledger) == list(range(1, 1235))
    assert ledger.read_bytes().endswith(b"\n")
