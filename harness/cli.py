"""``harness`` command line. Exit codes: 0 guarantees held, 1 violated, 2 usage/config error, 3 unknown.

Only this module reads argv and the environment. What ``harness run`` shows while it runs (a progress line
per target, each verdict once with its expectation, a final table) is ``harness.console``'s job. A closed
stdout (``harness run … | head``) stops the output, not the run: the exit code stays the verdict's, never
a made-up 1 (which would read "violated").
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any

import typer

from harness.config import Expectation, GatePolicy, Scenario, check_target_fits, load_scenario, resolve_target
from harness.console import PROGRESS_MARK, STYLE, ProgressView, Terminal, final_table
from harness.errors import HarnessError, LedgerDamaged
from harness.gate import gate as apply_gate
from harness.ledger.fingerprint import changed
from harness.paths import DEFAULT_SCENARIO, LOCUSTFILE, REPORTS_DIR, SCENARIOS_DIR
from harness.report import finalize, label, read_manifest, summary_lines
from harness.report.compare import RunCell, drift_from_saved, load_cell, matrix_markdown, write_comparison
from harness.run.folder import HELD_BY_PARENT_ENV, claim_run_folder
from harness.run.process import LOOPBACK, child_dies_with_parent, free_port, is_wildcard, listen_hosts, worker_count
from harness.run.targets import builtin_targets

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Prove whether a realtime server delivers every message across faults.",
                  epilog="Example: harness run scenarios/heartbeat-timeout.toml --expect")
# Help texts go through rich markup: a literal "[word]" must be written "\\[word]" or rich swallows it.


def _examples(*lines: str) -> str:
    """A help page's epilog: each example (command, then what it does) as its own paragraph."""
    return "Examples:\n\n" + "\n\n".join(lines)


MaxLost = Annotated[int | None, typer.Option("--max-lost", help="Gate: most lost messages allowed")]
MaxUnexpected = Annotated[int | None, typer.Option("--max-unexpected", help="Gate: most unexpected receipts")]
MaxDupRatio = Annotated[float | None, typer.Option("--max-duplicated-ratio", help="Gate: extra receipts / delivered")]
MaxReordered = Annotated[int | None, typer.Option("--max-reordered", help="Gate: most reordered messages")]
MaxP99 = Annotated[float | None, typer.Option("--max-p99-delivery-ms", help="Gate: p99 delivery latency")]
MaxP99Re = Annotated[float | None, typer.Option("--max-p99-redelivery-ms", help="Gate: p99 redelivery latency")]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _overrides(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _load(path: Path) -> Scenario:
    try:
        return load_scenario(path)
    except HarnessError as exc:
        _fail(str(exc))
        raise  # unreachable


def _check_targets(scenario: Scenario, names: list[str], path: Path) -> None:
    """Unknown targets, and process faults a target cannot undergo, are refused before anything starts."""
    known = set(builtin_targets()) | set(scenario.target)
    for name in names:
        if name not in known:
            _fail(f"unknown target '{name}'; known: {', '.join(sorted(known))}")
        try:
            check_target_fits(scenario, resolve_target(name, scenario.target), str(path))
        except HarnessError as exc:
            _fail(str(exc))


@dataclass(frozen=True)
class Network:
    """Where one run listens and who joins it: local workers forked by the master, or workers started on
    other machines (``harness worker``) that connect to ``bind_host:master_port``."""

    bind_host: str = LOOPBACK
    """Interface of the proxy's cohort listeners and of the Locust master's port."""
    advertise_host: str = LOOPBACK
    """The address in the listener URLs the users get (what the workers' machines reach this one at)."""
    remote_workers: int = 0
    """Workers the master waits for, started elsewhere (0: none; local ones are ``_run_one``'s ``workers``)."""
    master_port: int | None = None
    """The master's port (None: a free one, or Locust's 5557 when remote workers must be told it)."""
    worker_wait_s: float = 0.0
    """How long the run may wait for its remote workers (added to the load process's time budget)."""
    allow_all_interfaces: bool = False
    links_per_proxy: int | None = None
    """Links one embedded proxy process holds before cohorts go to another (None: from the open-file limit)."""
    ship_ledger: bool = False
    """Workers ship every ledger row to the master even when they share its run folder."""

    def locust_args(self, local_workers: int) -> list[str]:
        """The Locust master's flags for this network."""
        argv = ["--proxy-bind-host", self.bind_host, "--proxy-advertise-host", self.advertise_host]
        if self.allow_all_interfaces:
            argv.append("--allow-all-interfaces")
        if self.links_per_proxy:
            argv += ["--links-per-proxy", str(self.links_per_proxy)]
        if self.ship_ledger:
            argv.append("--ship-ledger")
        if self.remote_workers:
            port = str(self.master_port or 5557)
            return [*argv, "--master", "--expect-workers", str(self.remote_workers), "--worker-wait-s",
                    str(self.worker_wait_s), "--master-bind-host", self.bind_host, "--master-bind-port", port]
        if local_workers:  # a port free now (two runs side by side never collide); forked workers dial it
            port = str(self.master_port or free_port())
            dial = LOOPBACK if is_wildcard(self.bind_host) else self.bind_host
            return [*argv, "--processes", str(local_workers), "--master-bind-host", self.bind_host,
                    "--master-bind-port", port, "--master-host", dial, "--master-port", port]
        return argv


def _run_budget_s(scenario: Scenario) -> float:
    """Wall-clock cap for one load process: every phase's own bound plus start/stop slack."""
    return scenario.load.connect_timeout_s + scenario.load.duration_s + scenario.drain.timeout_s + 60


def _pump(stream: IO[str], kind: str, lines: queue.Queue[tuple[str, str | None]]) -> None:
    """Hand a child's output to the main thread line by line (None: the stream ended)."""
    for line in stream:
        lines.put((kind, line.rstrip("\n")))
    lines.put((kind, None))


def _watch(proc: subprocess.Popen[str], budget_s: float, terminal: Terminal, target: str) -> None:
    """Show the load process's progress until it exits (stopping it past its time budget); pass its other
    output through (stderr to stderr)."""
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    for stream, kind in ((proc.stdout, "out"), (proc.stderr, "err")):
        threading.Thread(target=_pump, args=(stream, kind, lines), daemon=True).start()
    open_streams, deadline, stopping, exited = 2, time.monotonic() + budget_s, 0.0, 0.0
    with ProgressView(terminal) as view:
        while open_streams or proc.poll() is None:
            try:
                kind, line = lines.get(timeout=0.5)
            except queue.Empty:
                now = time.monotonic()
                if proc.poll() is not None:  # a leftover grandchild may hold the pipes: do not wait for it
                    exited = exited or now
                    if now - exited > 5:
                        break
                elif now > deadline and not stopping:
                    terminal.err(f"load process for {target} exceeded its time budget; stopping it")
                    proc.send_signal(signal.SIGTERM)
                    stopping = now
                elif stopping and now - stopping > 30 and proc.poll() is None:
                    proc.kill()
                continue
            if line is None:
                open_streams -= 1
            elif kind == "out" and line.startswith(PROGRESS_MARK):
                try:
                    view.update(json.loads(line[len(PROGRESS_MARK):]))
                except ValueError:
                    pass  # a torn line: the next one comes within a second
            elif kind == "out":
                terminal.line(line)
            else:
                terminal.err(line)
    proc.wait()


def _expectation(expect: Expectation | None, doc: dict[str, Any]) -> tuple[str | None, bool | None]:
    """What the scenario expected of this target, in words, and whether the verdict meets it."""
    if expect is None:
        return None, None
    ok = _meets(expect, doc)
    terms = [f"lost >= {expect.min_lost}" if expect.min_lost is not None else "",
             f"lost <= {expect.max_lost}" if expect.max_lost is not None else "",
             f"reason has {expect.reason_contains!r}" if expect.reason_contains else ""]
    wanted = ", ".join([label(expect.valid), *[t for t in terms if t]])
    return f"expected {wanted}: {'as expected' if ok else 'NOT as expected'}", ok


def _run_one(scenario_path: Path, scenario: Scenario, target: str, out: Path, seed: int | None,
             overrides: dict[str, Any], workers: int = 0, driver: str | None = None, *,
             terminal: Terminal | None = None, locust_stats: bool = False,
             network: Network | None = None) -> dict[str, Any]:
    """One target in its own Locust process (a master and ``workers`` worker processes when > 0): its
    progress on the terminal, then its verdict once, with the scenario's expectation beside it. Returns its
    verdict.json (``startup_error`` if it never ran) with ``expectation`` / ``as_expected`` added."""
    terminal = terminal or Terminal()
    network = network or Network()
    out.mkdir(parents=True, exist_ok=True)
    users = str(scenario.total_users)
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", users, "-r", users,
            "--scenario", str(scenario_path), "--target", target, "--out", str(out), "--only-summary",
            "--loglevel", "WARNING", "--harness-progress"]
    if not locust_stats:  # Locust's tables go to a file instead of the terminal (Locust adds ".json")
        argv += ["--json-file", str(out / "locust-stats")]
    if seed is not None:
        argv += ["--seed", str(seed)]
    argv += network.locust_args(workers)
    if driver:
        argv += ["--driver", driver]
    try:  # before anything is started or judged: a folder another live run uses is not ours to touch
        claim_run_folder(out)
    except HarnessError as exc:
        terminal.line(f"error: {exc}", style="bold red")
        return {"startup_error": True, "exit_code": 2, "interrupted": False}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            env={**os.environ, HELD_BY_PARENT_ENV: str(os.getpid())},
                            preexec_fn=child_dies_with_parent())  # a SIGKILLed `harness run` takes it along
    interrupted = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _watch(proc, _run_budget_s(scenario) + network.worker_wait_s, terminal, target)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not (out / "ledger.jsonl").exists():  # never got as far as recording: a startup failure
        return {"startup_error": True, "exit_code": 2, "interrupted": interrupted}
    if not (out / "verdict.json").exists() or overrides:
        reasons = [] if (out / "verdict.json").exists() else [
            f"load process ended (code {proc.returncode}) before writing a verdict"]
        finalize(out, target=target, scenario=scenario.name, extra_reasons=reasons, gate_overrides=overrides)
    doc: dict[str, Any] = json.loads((out / "verdict.json").read_text())
    expected, ok = _expectation(scenario.expect.get(target), doc)
    for i, line in enumerate(summary_lines(doc, expected=expected, report=str(out / "report.html"))):
        terminal.line(line, style=STYLE.get(label(doc.get("valid"))) if i == 0 else None)
    doc["interrupted"] = interrupted
    doc["expectation"], doc["as_expected"] = expected, ok
    return doc


def _meets(expect: Expectation, doc: dict[str, Any]) -> bool:
    lost = (doc.get("counts") or {}).get("lost", 0)
    return (doc.get("valid") == expect.valid
            and (expect.min_lost is None or lost >= expect.min_lost)
            and (expect.max_lost is None or lost <= expect.max_lost)
            and (expect.reason_contains is None or expect.reason_contains in (doc.get("reason") or "")))


def _worst(codes: list[int]) -> int:
    return 1 if 1 in codes else 3 if 3 in codes else 2 if 2 in codes else 0


@app.command(epilog=_examples(
    "harness run   (the heartbeat-timeout story on both of its targets)",
    "harness run scenarios/blip.toml --target ackmap --out /tmp/blip",
    "harness run --expect | tee run.log   (CI: exit 0 iff every verdict is what the scenario's \\[expect] says)"))
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file")] = DEFAULT_SCENARIO,
    target: Annotated[str | None, typer.Option(help="Run this target only (default: the scenario's list)")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (per-target subfolders when several)")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed")] = None,
    expect: Annotated[bool, typer.Option("--expect", help="Exit 0 iff every verdict matches the scenario's "
                                                             "\\[expect] table")] = False,
    workers: Annotated[str, typer.Option(help="Distributed: a Locust master plus this many worker processes "
                                              "(0: one process; auto: one per core this process may use)")] = "0",
    driver: Annotated[str | None, typer.Option(help="Client driver instead of each target's own "
                                                    "(e.g. socketio-lean, the experimental lean client)")] = None,
    locust_stats: Annotated[bool, typer.Option("--locust-stats", help="Also print Locust's statistics tables "
                                                                      "(default: saved to locust-stats.json)")] = False,
    remote_workers: Annotated[int, typer.Option(min=0, help="Distributed over machines: wait for this many workers "
                                                           "started elsewhere with `harness worker` (instead of "
                                                           "--workers)")] = 0,
    bind_host: Annotated[str, typer.Option(help="Interface the proxy's cohort listeners and the Locust master bind "
                                                "(workers on other machines must reach it)")] = LOOPBACK,
    advertise_host: Annotated[str | None, typer.Option(help="Address the workers reach the proxy listeners at "
                                                            "(default: --bind-host)")] = None,
    master_port: Annotated[int | None, typer.Option(min=1, max=65535, help="The Locust master's port (default: "
                                                                          "5557 with --remote-workers, else a free "
                                                                          "one)")] = None,
    worker_wait_s: Annotated[float, typer.Option(min=0, help="With --remote-workers: how long the run may wait "
                                                             "for them to join")] = 120.0,
    links_per_proxy: Annotated[int | None, typer.Option(min=1, help="Links one embedded proxy process holds "
                                                                    "before cohorts go to another (default: "
                                                                    "from the open-file limit)")] = None,
    allow_all_interfaces: Annotated[bool, typer.Option("--allow-all-interfaces", help="Allow --bind-host 0.0.0.0 "
                                                                                     "(every interface; refused "
                                                                                     "otherwise)")] = False,
    ship_ledger: Annotated[bool, typer.Option("--ship-ledger", help="Workers ship every ledger row to this "
                                                                    "process even when they share its run folder "
                                                                    "(default: such workers write their own "
                                                                    "ledger-worker-N.jsonl there)")] = False,
    max_lost: MaxLost = None, max_unexpected: MaxUnexpected = None, max_duplicated_ratio: MaxDupRatio = None,
    max_reordered: MaxReordered = None, max_p99_delivery_ms: MaxP99 = None, max_p99_redelivery_ms: MaxP99Re = None,
) -> None:
    """Run a scenario against one or more targets, print the verdicts, exit with the gate's decision.

    While each target runs, one progress line (phase, elapsed, sent / acked / received / unseen, faults);
    then its verdict once, with the scenario's expectation beside it; at the end a table of every target
    with the path of its report.html.

    Workers on other machines (docs/distributed.md): --bind-host ADDR --remote-workers N here, then
    `harness worker SCENARIO --target T --master-host ADDR` on each of them.
    """
    try:
        local_workers = worker_count(workers)
        bind, advertise = listen_hosts(bind_host, advertise_host, allow_all_interfaces)
    except (ValueError, HarnessError) as exc:
        _fail(str(exc))
        return
    if remote_workers and local_workers:
        _fail("--workers and --remote-workers do not combine (Locust's forked workers are all a master waits "
              "for): start this machine's workers with `harness worker` too")
    loaded = _load(scenario)
    names = [target] if target else loaded.targets
    if remote_workers and len(names) > 1:
        _fail(f"--remote-workers needs one --target (workers leave when their master's run ends; the scenario "
              f"lists {', '.join(names)})")
    _check_targets(loaded, names, scenario)
    network = Network(bind, advertise, remote_workers, master_port, worker_wait_s if remote_workers else 0.0,
                      allow_all_interfaces, links_per_proxy, ship_ledger)
    overrides = _overrides(max_lost=max_lost, max_unexpected=max_unexpected,
                           max_duplicated_ratio=max_duplicated_ratio, max_reordered=max_reordered,
                           max_p99_delivery_ms=max_p99_delivery_ms, max_p99_redelivery_ms=max_p99_redelivery_ms)
    base = out or REPORTS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{loaded.name}"
    terminal = Terminal()
    codes: list[int] = []
    matches: list[bool] = []
    rows: list[dict[str, Any]] = []
    for name in names:
        folder = base if len(names) == 1 else base / name
        terminal.line(f"== {loaded.name} on {name} (folder {folder})", style="bold")
        doc = _run_one(scenario, loaded, name, folder, seed, overrides, local_workers, driver, terminal=terminal,
                       locust_stats=locust_stats, network=network)
        if doc.get("startup_error"):
            raise typer.Exit(2)
        codes.append(int(doc["exit_code"]))
        if doc.get("as_expected") is not None:
            matches.append(bool(doc["as_expected"]))
        rows.append({"target": name, "doc": doc, "label": label(doc.get("valid")), "report": folder / "report.html",
                     "expectation": None if doc.get("as_expected") is None
                     else "met" if doc["as_expected"] else "NOT met"})
        if doc.get("interrupted"):
            terminal.err("interrupted: remaining targets skipped")
            terminal.render(final_table(rows))
            raise typer.Exit(3)
    terminal.render(final_table(rows))
    if len(names) > 1:
        write_comparison(base, loaded.name, [load_cell(loaded.name, n, base / n) for n in names])
        terminal.line(f"comparison: {base / 'comparison.html'}")
    if expect:
        raise typer.Exit(0 if matches and all(matches) and len(matches) == len(names) else 1)
    raise typer.Exit(_worst(codes))


@app.command(epilog=_examples(
    "harness worker scenarios/blip.toml --target ackmap --master-host 10.0.0.5 --processes auto",
    "on 10.0.0.5 first: harness run scenarios/blip.toml --target ackmap --bind-host 10.0.0.5 --remote-workers 2"))
def worker(
    scenario: Annotated[Path, typer.Argument(help="The scenario file the master runs (the same file)")],
    master_host: Annotated[str, typer.Option(help="The master's --bind-host (or a name for it)")],
    target: Annotated[str | None, typer.Option(help="The master's target (default: the scenario's first)")] = None,
    master_port: Annotated[int, typer.Option(min=1, max=65535, help="The master's port")] = 5557,
    processes: Annotated[str, typer.Option(help="Worker processes on this machine: a number or auto (one per "
                                                "core)")] = "1",
    driver: Annotated[str | None, typer.Option(help="The master's --driver, if it was given one")] = None,
) -> None:
    """Join a `harness run --remote-workers N` from this machine: Locust workers that run the users and ship
    every ledger row to the master (it keeps the ledger and judges). Each process counts as one of the N.

    This is `locust -f harness/locustfile.py --worker --master-host H --master-port P --scenario S --target
    T`; it ends when the master's run does.
    """
    try:
        count = worker_count(processes)
    except ValueError as exc:
        _fail(str(exc).replace("--workers", "--processes"))
        return
    if count < 1:
        _fail("--processes must be at least 1")
    _load(scenario)  # a bad file stops here, not in every worker
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
            "--master-port", str(master_port), "--scenario", str(scenario), "--loglevel", "WARNING"]
    argv += ["--target", target] if target else []
    argv += ["--driver", driver] if driver else []
    argv += ["--processes", str(count)] if count > 1 else []
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # Locust itself from here: its signals, its exit code, no process left behind


@app.command(epilog=_examples("harness check reports/20260101-120000-heartbeat-timeout/naive --out /tmp/recheck",
                             "harness check ledger.parquet --max-lost 5"))
def check(
    ledger: Annotated[Path, typer.Argument(help="ledger.jsonl, ledger.parquet or a run folder")],
    out: Annotated[Path | None, typer.Option(help="Where to write verdict.json and the reports")] = None,
    target: Annotated[str | None, typer.Option(help="Target name for the report")] = None,
    ordered: Annotated[bool, typer.Option(help="Judge per-stream order (when no manifest says so)")] = False,
    max_lost: MaxLost = None, max_unexpected: MaxUnexpected = None, max_duplicated_ratio: MaxDupRatio = None,
    max_reordered: MaxReordered = None, max_p99_delivery_ms: MaxP99 = None, max_p99_redelivery_ms: MaxP99Re = None,
    partition: Annotated[str, typer.Option(
        help="Check a Parquet ledger in partitions: auto (from 40 M rows), always, never; the verdict is the same "
             "(docs/checking-at-scale.md)")] = "auto",
    parts: Annotated[int | None, typer.Option(min=1, help="How many partitions (default: one per 5 M rows)")] = None,
) -> None:
    """Recompute the verdict from a ledger alone; the same ledger always gives the same verdict."""
    if partition not in ("auto", "always", "never"):
        _fail(f"--partition must be auto, always or never, got {partition!r}")
        return
    overrides = _overrides(max_lost=max_lost, max_unexpected=max_unexpected,
                           max_duplicated_ratio=max_duplicated_ratio, max_reordered=max_reordered,
                           max_p99_delivery_ms=max_p99_delivery_ms, max_p99_redelivery_ms=max_p99_redelivery_ms)
    try:
        doc = finalize(ledger, target=target, ordered=ordered, out_dir=out, gate_overrides=overrides,
                       partition=partition, parts=parts)  # type: ignore[arg-type]  # checked above
    except LedgerDamaged as exc:  # the run happened but its record is unreadable: unknown, not a usage error
        _fail(f"verdict unknown: {exc}", 3)
        return
    except HarnessError as exc:
        _fail(str(exc))
        return
    for line in summary_lines(doc):
        typer.echo(line)
    raise typer.Exit(int(doc["exit_code"]))


@app.command("gate", epilog=_examples("harness gate reports/my-run/verdict.json",
                                     "harness gate reports/my-run --max-lost 10 --max-p99-delivery-ms 250"))
def gate_command(
    verdict: Annotated[Path, typer.Argument(help="verdict.json or a run folder")],
    max_lost: MaxLost = None, max_unexpected: MaxUnexpected = None, max_duplicated_ratio: MaxDupRatio = None,
    max_reordered: MaxReordered = None, max_p99_delivery_ms: MaxP99 = None, max_p99_redelivery_ms: MaxP99Re = None,
) -> None:
    """Apply the gate (the scenario's \\[gate] table, overridden by these flags) to a saved verdict."""
    path = verdict / "verdict.json" if verdict.is_dir() else verdict
    if not path.exists():
        _fail(f"{path}: no such verdict file")
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict):
            raise ValueError(f"a JSON {type(doc).__name__}, not an object")
    except (OSError, ValueError) as exc:  # a kill mid-write, a hand edit: no verdict to gate
        _fail(f"verdict unknown: {path} cannot be read ({exc}); run `harness check` on the ledger again", 3)
        return
    moved = changed(doc.get("ledger_files"), path.parent)
    if moved:
        _fail(f"verdict unknown: the ledger changed since {path} was written ({', '.join(moved)}); run "
              f"`harness check` on it again", 3)
    base = ((read_manifest(path.parent) or {}).get("config") or {}).get("gate") or {}
    policy = GatePolicy.model_validate({**base, **_overrides(
        max_lost=max_lost, max_unexpected=max_unexpected, max_duplicated_ratio=max_duplicated_ratio,
        max_reordered=max_reordered, max_p99_delivery_ms=max_p99_delivery_ms,
        max_p99_redelivery_ms=max_p99_redelivery_ms)})
    try:
        result = apply_gate(doc, policy)
    except (AttributeError, TypeError, ValueError) as exc:  # counts, latency or details of the wrong shape
        _fail(f"verdict unknown: {path} is not a verdict harness check wrote ({type(exc).__name__}: {exc}); run "
              "`harness check` on the ledger again", 3)
        return
    for check_ in result.checks:
        typer.echo(f"{'ok  ' if check_.passed else 'FAIL'} {check_.name}: {check_.observed} (limit {check_.limit})")
    typer.echo(f"gate: exit {result.exit_code}" + (f" — {'; '.join(result.reasons)}" if result.reasons else ""))
    raise typer.Exit(result.exit_code)


@app.command(epilog=_examples("harness compare scenarios/heartbeat-timeout.toml --targets naive,ackmap,sse "
                             "--out /tmp/cmp   (then open /tmp/cmp/comparison.html)"))
def compare(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file")],
    targets: Annotated[str, typer.Option(help="Comma-separated target names")],
    out: Annotated[Path | None, typer.Option(help="Folder for the runs and comparison.html/.md")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed")] = None,
) -> None:
    """Run one scenario against several targets and write a side-by-side comparison."""
    loaded = _load(scenario)
    names = [t.strip() for t in targets.split(",") if t.strip()]
    _check_targets(loaded, names, scenario)
    base = out or REPORTS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-compare-{loaded.name}"
    codes = []
    for name in names:
        typer.echo(f"== {loaded.name} on {name}")
        doc = _run_one(scenario, loaded, name, base / name, seed, {})
        codes.append(int(doc["exit_code"]))
        if doc.get("interrupted"):
            raise typer.Exit(3)
    cells = [load_cell(loaded.name, n, base / n) for n in names]
    write_comparison(base, loaded.name, cells)
    typer.echo((base / "comparison.md").read_text())
    typer.echo(f"comparison: {base / 'comparison.html'}")
    raise typer.Exit(_worst(codes))


@app.command(epilog=_examples("harness matrix --scenarios blip,flapping --targets naive,ackmap --out /tmp/m",
                             "harness matrix --from-saved --out reports/comparison",
                             "harness matrix --out /tmp/m --against reports/comparison   (exit 1 on any drift)"))
def matrix(
    scenarios: Annotated[str | None, typer.Option(help="Comma-separated scenario files or names "
                                                        "(default: every scenarios/*.toml)")] = None,
    targets: Annotated[str | None, typer.Option(
        help="Comma-separated targets, or 'all' (every built-in target plus each scenario's own); "
             "default: each scenario's list")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the runs and matrix.md/.html")] = REPORTS_DIR / "matrix",
    seed: Annotated[int | None, typer.Option(help="Override every scenario's seed")] = None,
    from_saved: Annotated[bool, typer.Option(
        "--from-saved", help="Run nothing: re-judge the saved run folders under --out and rewrite the pages")] = False,
    against: Annotated[Path | None, typer.Option(
        help="A saved comparison (e.g. reports/comparison): exit 1 if any cell's outcome differs from it "
             "(verdict, claim check, any loss, anything unexpected)")] = None,
) -> None:
    """Run scenarios × targets and write matrix.md (cells: lost / duplicated / reordered / p99 redelivery)."""
    if scenarios:
        paths = [Path(s) if s.endswith(".toml") else SCENARIOS_DIR / f"{s}.toml" for s in scenarios.split(",")]
    else:
        paths = sorted(SCENARIOS_DIR.glob("*.toml"))
    loaded = [(p, _load(p)) for p in paths]
    wanted = [t.strip() for t in targets.split(",")] if targets else None
    all_targets: list[str] = []
    cells: dict[tuple[str, str], RunCell] = {}
    for path, scenario in loaded:
        if wanted == ["all"]:
            names = list(dict.fromkeys([*builtin_targets(), *scenario.targets]))
        else:
            names = [t for t in scenario.targets if wanted is None or t in wanted]
        for name in names:
            if name not in all_targets:
                all_targets.append(name)
            folder = out / scenario.name / name
            if from_saved:
                if not (folder / "ledger.jsonl").exists():
                    continue
                finalize(folder)  # the current checker over the saved ledger
            else:
                typer.echo(f"== {scenario.name} on {name}")
                doc = _run_one(path, scenario, name, folder, seed, {})
                if doc.get("interrupted"):
                    raise typer.Exit(3)
            cells[(scenario.name, name)] = load_cell(scenario.name, name, folder)
        ran = [cells[(scenario.name, n)] for n in names if (scenario.name, n) in cells]
        if ran:
            write_comparison(out / scenario.name, scenario.name, ran)
    table = matrix_markdown([s.name for _, s in loaded if any(k[0] == s.name for k in cells)], all_targets, cells)
    (out / "matrix.md").write_text("# Which design survives what\n\nEach cell: lost / duplicated / reordered / "
                                   "p99 redelivery ms · claim check.\n\n" + table)
    typer.echo(table)
    if against is not None:
        differences = []
        for (scenario_name, target_name), cell in sorted(cells.items()):
            for line in drift_from_saved(against, scenario_name, target_name, cell.doc):
                differences.append(f"{scenario_name} × {target_name}: {line}")
        for line in differences:
            typer.echo(f"DRIFT {line}")
        typer.echo(f"{len(cells)} cells, {len(differences)} difference(s) from {against}")
        raise typer.Exit(1 if differences else 0)


@app.command(epilog=_examples("harness proxy --port 8474   (then TOXIPROXY_URL=http://127.0.0.1:8474)",
                             "harness proxy --port 0 --ready-file /tmp/proxy.url --metrics"))
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


@app.command(epilog=_examples("harness schema > scenario.schema.json",
                             "harness schema --markdown > docs/scenario.md"))
def schema(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the scenario file reference "
                                                             "(docs/scenario.md) instead of the JSON Schema")] = False,
) -> None:
    """Print the JSON Schema of a scenario file, so editors can validate and complete scenarios.

    Example: harness schema > scenario.schema.json, then start a scenario with
    #:schema ./scenario.schema.json (Taplo / Even Better TOML).

    Regenerate the reference: harness schema --markdown > docs/scenario.md
    """
    from harness.scenario_reference import render_reference, scenario_json_schema

    typer.echo(render_reference() if markdown else json.dumps(scenario_json_schema(), indent=2, ensure_ascii=False),
               nl=not markdown)


# Commands that live in their own modules register here, one line each (``app.command(...)(function)``).
# -- registered commands --
from harness.explore.command import explore as _explore  # noqa: E402

app.command("explore")(_explore)
app.command("new-target")(__import__("harness.scaffold", fromlist=["new_target"]).new_target)

CRASHED = 3
"""The exit code of a crash nobody raised on purpose (a bug, the machine out of memory): no verdict, like any
other unknown. Never 1, which says the target broke a guarantee (Python's own code for an uncaught exception)."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except Exception as exc:  # typer re-raises what no command caught: its traceback, then exit 3
        traceback.print_exc()
        typer.echo(f"error: the harness crashed ({type(exc).__name__}): no verdict (exit {CRASHED})", err=True)
        sys.exit(CRASHED)
