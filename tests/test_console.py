"""The terminal of `harness run` (pure formatting over progress dicts, and rich consoles on real pipes)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from rich.console import Console

from harness.console import (
    PROGRESS_MARK,
    PipeSafeConsole,
    ProgressView,
    Terminal,
    event_lines,
    final_table,
    progress_text,
)

ROOT = Path(__file__).resolve().parents[1]


def _state(**changes: object) -> dict[str, object]:
    state: dict[str, object] = {
        "target": "naive", "phase": "sending", "ledger_phase": "start", "elapsed_s": 4.1, "phase_elapsed_s": 4.0,
        "totals": {"sent": 80, "acked": 78, "received": 60, "unseen_now": 18},
        "schedule": [{"fault": "u1-blackhole", "start_s": 2.0, "end_s": 7.0, "state": "active"}],
        "events": ["u1-blackhole injected (timeout on u1) at 2.0 s"], "event_count": 1,
    }
    state.update(changes)
    return state


def test_the_progress_line_has_phase_elapsed_numbers_and_faults() -> None:
    assert progress_text(_state()) == ("naive · sending 4.0 s · elapsed 4.1 s · sent 80 · acked 78 · received 60 · "
                                       "unseen 18 · active u1-blackhole")
    nothing_active = _state(schedule=[{"fault": "f", "start_s": 6.0, "end_s": 7.0, "state": "next"}])
    assert progress_text(nothing_active).endswith("unseen 18 · next f at 6.0 s")


def test_only_what_changed_becomes_a_permanent_line() -> None:
    before = _state(event_count=0, events=[])
    assert event_lines(before, _state()) == ["naive: fault u1-blackhole injected (timeout on u1) at 2.0 s"]
    assert event_lines(_state(), _state()) == []
    assert event_lines(_state(), _state(phase="draining", elapsed_s=10.1)) == ["naive: draining (elapsed 10.1 s)"]
    assert event_lines(None, _state(phase="waiting for start", ledger_phase="idle", event_count=0)) == []


def test_without_a_terminal_progress_is_sparse() -> None:
    buffer = io.StringIO()
    terminal = Terminal(Console(file=buffer, width=200, force_terminal=False))
    with ProgressView(terminal) as view:
        for tenth in range(0, 250, 2):  # 25 s of updates, five a second
            view.update(_state(elapsed_s=tenth / 10, event_count=0, events=[]))
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "naive: sending (elapsed 0.0 s)"
    assert [line.split(" · ")[2] for line in lines[1:]] == ["elapsed 0.0 s", "elapsed 10.0 s", "elapsed 20.0 s"]


def test_the_final_table_has_every_target_and_its_report(tmp_path: Path) -> None:
    report = tmp_path / "naive" / "report.html"
    report.parent.mkdir()
    report.write_text("<html>")
    rows = [{"target": "naive", "label": "FAIL", "report": report, "expectation": "met",
             "doc": {"exit_code": 1, "counts": {"lost": 104, "delivered": 177, "acknowledged": 281, "unseen": 0}}},
            {"target": "ackmap", "label": "PASS", "report": tmp_path / "ackmap" / "report.html", "expectation": None,
             "doc": {"exit_code": 0, "counts": {"lost": 0, "delivered": 290, "acknowledged": 282, "unseen": 0}}}]
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(final_table(rows, cwd=tmp_path))
    text = buffer.getvalue()
    assert "│ naive  │ FAIL exit 1 │  104 │         177/281 │      0 │ met      │ naive/report.html" in text
    assert ("│ ackmap │ PASS exit 0 │    0 │         282/282 │      0 │ -        │ ackmap/report.html (not written)"
            in text)


def test_a_closed_pipe_silences_the_console_instead_of_exiting() -> None:
    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, "w")
    console = PipeSafeConsole(file=stream)
    terminal = Terminal(console)
    terminal.line("x" * 100_000)  # more than a pipe buffer: the write fails with EPIPE
    terminal.line("after")
    assert terminal.broken and console.quiet
    stream.close()


def test_the_progress_mark_is_the_plugins() -> None:
    assert f'PROGRESS_MARK = "{PROGRESS_MARK}"' in (ROOT / "harness" / "locust_ext" / "plugin.py").read_text()
