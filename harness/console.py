"""The terminal of ``harness run``: a live progress line per target, the verdict once with what the scenario
expected beside it, and a final table of every target with the path of its report.

On a terminal the progress line redraws in place (rich) and fault events and phase changes stay above it;
anywhere else (CI logs, a pipe) it prints plain lines, sparsely: one per phase change or fault event and
one every ``PLAIN_EVERY_S``. Colour only on a terminal (rich decides). A closed stdout (``harness run … |
head``) is not an error: output stops, the run goes on to its verdict, and the exit code stays the
verdict's (``Terminal.broken`` says it happened).

Progress comes from the load process as lines ``PROGRESS_MARK`` + JSON (``harness.locust_ext.live``
writes them; this module only reads plain dicts and never imports Locust).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["PROGRESS_MARK", "PLAIN_EVERY_S", "PipeSafeConsole", "Terminal", "ProgressView", "progress_text",
           "event_lines", "final_table", "STYLE"]

PROGRESS_MARK = "@@harness-progress "
"""Must equal ``harness.locust_ext.plugin.PROGRESS_MARK`` (tests check both)."""
PLAIN_EVERY_S = 10.0
"""Without a terminal, a progress line at most this often (besides phase changes and fault events)."""
STYLE = {"PASS": "bold green", "FAIL": "bold red", "UNKNOWN": "bold yellow"}


class PipeSafeConsole(Console):
    """A rich Console that, when its reader goes away, goes quiet instead of exiting: rich's default
    ``on_broken_pipe`` raises ``SystemExit(1)``, which would read as "violated"."""

    broken = False

    def on_broken_pipe(self) -> None:
        self.quiet = True
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


class Terminal:
    """Where ``harness run`` writes: stdout and stderr through rich, surviving a reader that went away."""

    def __init__(self, out: Console | None = None, err: Console | None = None) -> None:
        if out is None:
            out = PipeSafeConsole(highlight=False, soft_wrap=True)
            if not out.is_terminal:  # a CI log has no width: do not fold the final table's paths at 80
                out = PipeSafeConsole(highlight=False, soft_wrap=True, width=max(out.width, 200))
        self.out = out
        self.err_console = err or PipeSafeConsole(stderr=True, highlight=False, soft_wrap=True)
        self._broken = False

    @property
    def broken(self) -> bool:
        """stdout's reader went away (output stops; the run does not)."""
        return self._broken or bool(getattr(self.out, "broken", False))

    @property
    def is_terminal(self) -> bool:
        return self.out.is_terminal

    def line(self, text: str, style: str | None = None) -> None:
        """One line on stdout, printed as it is (no markup: verdict labels look like ``[FAIL]``)."""
        if self.broken:
            return
        try:
            self.out.print(Text(text, style=style or ""), soft_wrap=True)
        except BrokenPipeError:
            self._stdout_gone()

    def err(self, text: str) -> None:
        try:
            self.err_console.print(Text(text), soft_wrap=True)
        except (BrokenPipeError, ValueError):
            pass

    def render(self, renderable: Any) -> None:
        if self.broken:
            return
        try:
            self.out.print(renderable)
        except BrokenPipeError:
            self._stdout_gone()

    def _stdout_gone(self) -> None:
        """The reader closed the pipe: send the rest to /dev/null (also what Python flushes at exit)."""
        self._broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


def _next_fault(state: dict[str, Any]) -> str | None:
    upcoming = [row for row in state.get("schedule") or [] if row.get("state") == "next"]
    if not upcoming:
        return None
    first = min(upcoming, key=lambda row: row.get("start_s") or 0)
    return f"next {first['fault']} at {first['start_s']:.1f} s"


def progress_text(state: dict[str, Any]) -> str:
    """One line: target, phase, elapsed, the four numbers, active or next fault. E.g.
    ``naive · sending 4.0 s · elapsed 4.1 s · sent 80 · acked 78 · received 60 · unseen 18 · active u1-blackhole``."""
    t = state.get("totals") or {}
    parts = [str(state.get("target")), f"{state.get('phase')} {state.get('phase_elapsed_s', 0):.1f} s",
             f"elapsed {state.get('elapsed_s', 0):.1f} s",
             f"sent {t.get('sent', 0)}", f"acked {t.get('acked', 0)}", f"received {t.get('received', 0)}",
             f"unseen {t.get('unseen_now', 0)}"]
    active = sorted({row["fault"] for row in state.get("schedule") or [] if row.get("state") == "active"})
    if active:
        parts.append("active " + ", ".join(active))
    else:
        upcoming = _next_fault(state)
        if upcoming:
            parts.append(upcoming)
    return " · ".join(parts)


def event_lines(previous: dict[str, Any] | None, state: dict[str, Any]) -> list[str]:
    """What happened since ``previous``: a phase change, new fault events (in words), for permanent lines."""
    lines: list[str] = []
    target = state.get("target")
    if (previous or {}).get("phase") != state.get("phase") and state.get("ledger_phase") != "idle":
        lines.append(f"{target}: {state.get('phase')} (elapsed {state.get('elapsed_s', 0):.1f} s)")
    seen = (previous or {}).get("event_count", 0)
    count = state.get("event_count", 0)
    events = state.get("events") or []
    if count > seen:
        for text in events[-min(count - seen, len(events)):]:
            lines.append(f"{target}: fault {text}")
    return lines


class ProgressView:
    """The progress of one target: a redrawn line on a terminal, sparse plain lines elsewhere."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.state: dict[str, Any] | None = None
        self._live: Live | None = None
        self._last_plain = -PLAIN_EVERY_S

    def __enter__(self) -> ProgressView:
        if self.terminal.is_terminal and not self.terminal.broken:
            self._live = Live(Text(""), console=self.terminal.out, refresh_per_second=4, transient=True)
            self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._live is not None:
            try:
                self._live.stop()
            except BrokenPipeError:
                self.terminal._stdout_gone()
            self._live = None

    def update(self, state: dict[str, Any]) -> None:
        for line in event_lines(self.state, state):
            self.terminal.line(line, style="bold" if " fault " not in line else "cyan")
        self.state = state
        if self._live is not None:
            try:
                self._live.update(Text(progress_text(state)))
            except BrokenPipeError:
                self.terminal._stdout_gone()
            return
        elapsed = float(state.get("elapsed_s") or 0)
        if elapsed - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = elapsed
            self.terminal.line(progress_text(state))


def _delivered_of_acked(c: dict[str, Any]) -> str:
    """Acknowledged messages that arrived / acknowledged ("delivered" also counts recovered sends whose ack
    never came, which made 284/276 read as more delivered than sent)."""
    acked = c.get("acknowledged")
    if not isinstance(acked, int):
        return "-"
    return f"{acked - int(c.get('lost', 0)) - int(c.get('unseen', 0))}/{acked}"


def final_table(rows: list[dict[str, Any]], cwd: Path | None = None) -> Table:
    """Every target: verdict (coloured), lost, delivered / acknowledged, expectation, report.html path."""
    here = cwd or Path.cwd()
    table = Table(title="Verdicts", title_justify="left", show_lines=False)
    for name, justify in (("target", "left"), ("verdict", "left"), ("lost", "right"), ("delivered/acked", "right"),
                          ("unseen", "right"), ("expected", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("report", overflow="fold")  # the one column that may fold, on a narrow terminal
    for row in rows:
        doc = row["doc"]
        c = doc.get("counts") or {}
        label = row["label"]
        report = Path(row["report"])
        try:
            shown = str(report.resolve().relative_to(here.resolve()))
        except ValueError:
            shown = str(report)
        table.add_row(row["target"], Text(f"{label} exit {doc.get('exit_code')}", style=STYLE.get(label, "")),
                      str(c.get("lost", "-")), _delivered_of_acked(c),
                      str(c.get("unseen", "-")), row.get("expectation") or "-",
                      shown if report.exists() else f"{shown} (not written)")
    return table
