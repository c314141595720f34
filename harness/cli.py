"""``harness`` command line. Exit codes: 0 guarantees held, 1 violated, 2 usage/config error, 3 unknown.

Only this module reads argv and the environment.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from harness.checker import exit_code
from harness.config import Expectation, Scenario, load_scenario
from harness.errors import HarnessError
from harness.paths import DEFAULT_SCENARIO, LOCUSTFILE, REPORTS_DIR
from harness.report import finalize, summary_lines

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Prove whether a realtime server delivers every message across faults.")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run_budget_s(scenario: Scenario) -> float:
    """Wall-clock cap for one load process: every phase's own bound plus start/stop slack."""
    return scenario.load.connect_timeout_s + scenario.load.duration_s + scenario.drain.timeout_s + 60


def _run_one(scenario_path: Path, scenario: Scenario, target: str, out: Path, seed: int | None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    users = str(scenario.total_users)
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", users, "-r", users,
            "--scenario", str(scenario_path), "--target", target, "--out", str(out), "--only-summary",
            "--loglevel", "WARNING"]
    if seed is not None:
        argv += ["--seed", str(seed)]
    proc = subprocess.Popen(argv)
    interrupted = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            proc.wait(timeout=_run_budget_s(scenario))
        except subprocess.TimeoutExpired:
            typer.echo(f"load process for {target} exceeded its time budget; stopping it", err=True)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    verdict_path = out / "verdict.json"
    if not (out / "ledger.jsonl").exists():  # never got as far as recording: a startup failure
        return {"startup_error": True, "exit_code": 2, "interrupted": interrupted}
    if not verdict_path.exists():
        verdict = finalize(out, target=target, scenario=scenario.name,
                           extra_reasons=[f"load process ended (code {proc.returncode}) before writing a verdict"])
        for line in summary_lines(verdict):
            typer.echo(line)
    doc: dict[str, Any] = json.loads(verdict_path.read_text())
    doc["interrupted"] = interrupted
    return doc


def _meets(expect: Expectation, doc: dict[str, Any]) -> bool:
    lost = doc["counts"]["lost"]
    return (doc["valid"] == expect.valid
            and (expect.min_lost is None or lost >= expect.min_lost)
            and (expect.max_lost is None or lost <= expect.max_lost))


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file")] = DEFAULT_SCENARIO,
    target: Annotated[str | None, typer.Option(help="Run this target only (default: the scenario's list)")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (per-target subfolders when several)")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed")] = None,
    expect: Annotated[bool, typer.Option("--expect", help="Exit 0 iff every verdict matches the scenario's "
                                                             "[expect] table")] = False,
) -> None:
    """Run a scenario against one or more targets and print the verdicts."""
    try:
        loaded = load_scenario(scenario)
    except HarnessError as exc:
        _fail(str(exc))
        return
    names = [target] if target else loaded.targets
    known = set(loaded.targets) | set(loaded.target)
    from harness.target_specs import builtin_targets

    for name in names:
        if name not in known and name not in builtin_targets():
            _fail(f"unknown target '{name}'; known: {', '.join(sorted(known | set(builtin_targets())))}")
    base = out or REPORTS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{loaded.name}"
    codes: list[int] = []
    matches: list[bool] = []
    for name in names:
        folder = base if len(names) == 1 else base / name
        typer.echo(f"== {loaded.name} on {name} (folder {folder})")
        doc = _run_one(scenario, loaded, name, folder, seed)
        if doc.get("startup_error"):
            raise typer.Exit(2)
        codes.append(int(doc["exit_code"]))
        if name in loaded.expect:
            ok = _meets(loaded.expect[name], doc)
            matches.append(ok)
            typer.echo(f"   expected valid={json.dumps(loaded.expect[name].valid)}: "
                       f"{'as expected' if ok else 'NOT as expected'}")
        if doc.get("interrupted"):
            typer.echo("interrupted: remaining targets skipped", err=True)
            raise typer.Exit(3)
    if expect:
        raise typer.Exit(0 if matches and all(matches) and len(matches) == len(names) else 1)
    worst = 1 if 1 in codes else (3 if 3 in codes else 0)
    raise typer.Exit(worst)


@app.command()
def check(
    ledger: Annotated[Path, typer.Argument(help="ledger.jsonl, ledger.parquet or a run folder")],
    out: Annotated[Path | None, typer.Option(help="Where to write verdict.json and report.md")] = None,
    target: Annotated[str | None, typer.Option(help="Target name for the report")] = None,
    ordered: Annotated[bool, typer.Option(help="Judge per-stream order (when no manifest says so)")] = False,
) -> None:
    """Recompute the verdict from a ledger alone; the same ledger always gives the same verdict."""
    try:
        verdict = finalize(ledger, target=target, ordered=ordered, out_dir=out)
    except HarnessError as exc:
        _fail(str(exc))
        return
    for line in summary_lines(verdict):
        typer.echo(line)
    raise typer.Exit(exit_code(verdict))


@app.command()
def proxy(
    host: Annotated[str, typer.Option(help="API listen host")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port (0 = any free port)")] = 8474,
    config: Annotated[Path | None, typer.Option(help="JSON list of proxies to create at start")] = None,
    ready_file: Annotated[Path | None, typer.Option(help="Write the API URL here once listening")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for toxicity draws and jitter (reproducible runs)")] = None,
    metrics: Annotated[bool, typer.Option("--metrics", help="Serve /metrics in Prometheus text")] = False,
    plugin: Annotated[list[str] | None, typer.Option(help="Import this module first (it registers your own "
                                                          "toxics); repeatable")] = None,
) -> None:
    """Run the embedded Toxiproxy-compatible fault proxy on its own (like toxiproxy-server)."""
    import importlib

    from harness.faults.server import serve

    for module in plugin or []:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            _fail(f"--plugin {module}: cannot import it: {exc}")

    serve(host, port, config, ready_file, seed, metrics)


def main() -> None:
    """Console-script entry point."""
    app()
