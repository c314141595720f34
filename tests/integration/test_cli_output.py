"""What `harness run` prints, from the real command (a real Locust subprocess, real targets and proxy): the
verdict once with its expectation beside it, progress as it goes, a final table with each report's path,
no Locust tables unless asked; and a reader that goes away (`| head`) does not turn the exit code into 1
("violated"). Help pages keep their text and show examples."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, STORY, harness

COMMANDS = ["run", "check", "gate", "compare", "matrix", "proxy", "schema", "worker"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_page_has_an_example(command: str) -> None:
    done = harness(command, "--help", timeout=180)  # slow only on a loaded machine
    assert done.returncode == 0, done.stderr
    assert "Examples:" in done.stdout and f"harness {command} " in done.stdout


def test_gate_help_keeps_its_bracketed_words() -> None:
    assert "[gate]" in harness("gate", "--help", timeout=180).stdout
    assert "[expect]" in harness("run", "--help", timeout=180).stdout


@pytest.mark.integration
def test_run_prints_progress_then_the_verdict_once_with_its_expectation(tmp_path: Path) -> None:
    out = tmp_path / "ackmap"
    run = harness("run", str(STORY), "--target", "ackmap", "--out", str(out), timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    verdicts = [line for line in lines if line.startswith("[PASS] ackmap")]
    assert len(verdicts) == 1, run.stdout  # once
    assert verdicts[0].endswith("· expected PASS, lost <= 0: as expected"), verdicts[0]  # beside it
    assert run.stdout.count("as expected") == 1
    # progress, sparse (not a terminal): phase changes and fault events in words, in order
    progress = [line for line in lines if line.startswith("ackmap: ")]
    phases = [p.split(" (")[0] for p in progress if "fault" not in p]
    assert [p for p in phases if p != "ackmap: connecting"] == ["ackmap: sending", "ackmap: draining",
                                                                 "ackmap: judging"], phases
    # scheduled at 2.0 s; the line says when it really happened (later on a busy machine)
    assert any(re.search(r"fault u1-blackhole injected \(timeout on u1\) at \d+\.\d s", p) for p in progress)
    assert any("fault u1-blackhole healed" in p for p in progress)
    assert not any(line.startswith("@@harness-progress") for line in lines)  # the channel never leaks
    # the final table: one row per target, with the report's path
    table = [line for line in lines if "ackmap" in line and "PASS exit 0" in line]
    assert len(table) == 1 and str(out / "report.html") in table[0], run.stdout
    # Locust's own tables are off by default, kept in the run folder
    assert "Aggregated" not in run.stdout + run.stderr
    stats = json.loads((out / "locust-stats.json").read_text())
    assert not [row for row in stats if row.get("name") == "lost"]  # nothing lost, no 'lost' failures


@pytest.mark.integration
def test_a_closed_pipe_ends_the_output_not_the_run(tmp_path: Path) -> None:
    """`harness run … | head -1`: the run still reaches its verdict and exits with its code (0 here), not 1;
    ``--locust-stats`` brings Locust's tables back (on stderr, which the pipe does not touch)."""
    out = tmp_path / "ackmap"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(STORY), "--target", "ackmap", "--out",
                             str(out), "--locust-stats"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    stderr = proc.stderr.read()
    code = proc.wait(timeout=240)
    assert first.startswith("== heartbeat-timeout on ackmap")
    assert code == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert "Aggregated" in stderr  # --locust-stats: Locust's tables are back
    assert json.loads((out / "verdict.json").read_text())["valid"] is True
