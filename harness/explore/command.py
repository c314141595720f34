"""`harness explore`: the command line of the search (options, progress, final table, exit code)."""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.config import Scenario, load_scenario, resolve_target
from harness.errors import ScenarioError
from harness.explore.record import ExploreRecord
from harness.explore.search import SearchSettings
from harness.explore.search import explore as run_search
from harness.explore.vocabulary import DEFAULT_BASE, Bounds, Capabilities
from harness.paths import REPORTS_DIR
from harness.run.targets import builtin_targets

__all__ = ["explore", "parse_budget"]

_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """``90s`` / ``20m`` / ``1h`` / ``1h30m`` / a plain number of seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise typer.BadParameter(f"'{text}' is not a duration (e.g. 90s, 20m, 1h30m)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _base(path: Path | None, target: str) -> dict[str, Any]:
    if path is None:
        return dict(DEFAULT_BASE)
    try:
        load_scenario(path)  # the same clear error as `harness run` for a bad file
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    raw.pop("expect", None)
    raw.pop("faults", None)  # explore draws its own
    raw.setdefault("name", path.stem)
    return raw


def _capabilities(base: dict[str, Any], target: str) -> Capabilities:
    """What the target can undergo (the generator draws only those moves, so no fault needs refusing)."""
    scenario = Scenario.model_validate({**base, "targets": base.get("targets") or ["naive"], "faults": []})
    known = set(builtin_targets()) | set(scenario.target)
    if target not in known:
        typer.echo(f"error: unknown target '{target}'; known: {', '.join(sorted(known))}", err=True)
        raise typer.Exit(2)
    spec = resolve_target(target, scenario.target)
    return Capabilities(process=spec.command is not None, store=spec.needs_store,
                        instances=scenario.deploy.instances)


def _printer(console: Console, plain: bool) -> Any:
    def progress(event: str, info: dict[str, Any]) -> None:
        if event == "trial":
            r = info["result"]
            console.print(f"trial {info['index']:>3}  {', '.join(info['moves']):<34} {r.outcome:<17} "
                          f"{r.seconds:>5.1f} s  {(r.reason or '')[:70]}", markup=False, highlight=False)
        elif event == "found":
            console.print(f"violation in trial {info['index']}: {info['result'].reason}; shrinking",
                          style=None if plain else "bold red", markup=False)
        elif event == "shrink":
            console.print(f"  shrink {info['step']:>3}  {info['change']:<48} "
                          f"{'kept (still fails)' if info['kept'] else 'no (passes)'}", markup=False,
                          highlight=False)
        elif event == "confirm":
            r = info["result"]
            console.print(f"  confirm {info['attempt'] + 1}: {r.outcome}", markup=False, highlight=False)

    return progress


def _summary(console: Console, record: ExploreRecord) -> None:
    doc = record.as_dict()
    table = Table(title=f"explore {record.target}: {doc['status']}, {doc['runs']} runs in {doc['elapsed_s']:g} s")
    table.add_column("trials")
    table.add_column("outcomes")
    table.add_column("reproducer")
    repro = doc["reproducer"]
    table.add_row(str(len(doc["trials"])), ", ".join(f"{n} {k}" for k, n in sorted(doc["outcomes"].items())),
                  ("; ".join(repro["faults"]) + f" ({repro['confirmed']})") if repro else "none")
    console.print(table)
    if repro:
        console.print(f"reproduce: harness run {repro['path']} --target {record.target}", markup=False)
    console.print(f"record: {record.out / 'explore.md'}", markup=False)


def explore(
    target: Annotated[str, typer.Option(help="Target to explore (built-in or defined in --base)")],
    budget: Annotated[str, typer.Option(help="Time to search for a first violation, e.g. 90s, 20m, 1h "
                                              "(shrinking: at most 40 runs more; then --confirm runs)")] = "20m",
    trials: Annotated[int | None, typer.Option(min=1, help="Stop after this many trials")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator: the same seed draws the same trials")] = 1,
    base: Annotated[Path | None, typer.Option(help="Scenario whose heartbeat, cohorts, store, deploy and "
                                                   "\\[target.*] tables the trials use (its faults are "
                                                   "ignored)")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default reports/explore-<time>-<target>)")] = None,
    shrink: Annotated[bool, typer.Option(help="Shrink a violating trial to a minimal reproducer")] = True,
    retries: Annotated[int, typer.Option(min=1, help="Runs of each shrink candidate before it is thrown away")] = 2,
    confirm: Annotated[int, typer.Option(min=1, help="Runs that confirm the reproducer")] = 5,
    max_moves: Annotated[int, typer.Option(min=1, max=4, help="Fault moves per trial (a move is 1-2 faults)")] = 2,
) -> None:
    """Search fault schedules for one that breaks the target's claims, then shrink it to a minimal
    scenario that `harness run` reproduces.

    Example: harness explore --target redis-store --budget 10m --seed 3

    Exit 0: no trial violated the claims; 1: a violation was found (minimal.toml in the output folder);
    2: bad input, or the trials' runs never start (a setup problem, said once, not retried for the whole
    budget); 3: interrupted before finding anything, or no trial gave a judgeable verdict.
    """
    seconds = parse_budget(budget)
    raw = _base(base, target)
    caps = _capabilities(raw, target)
    folder = out or REPORTS_DIR / f"explore-{time.strftime('%Y%m%d-%H%M%S')}-{target}"
    console = Console(soft_wrap=True)
    plain = not console.is_terminal
    cohorts = raw.get("cohorts") or []
    bounds = Bounds(max_moves=max_moves, users_per_cohort=(1, 2) if len(cohorts) > 1 else (2, 3))
    settings = SearchSettings(target=target, base=raw, caps=caps, out=folder, seed=seed, budget_s=seconds,
                              trials=trials, bounds=bounds, shrink=shrink, retries=retries, confirm=confirm)
    console.print(f"explore {target}: seed {seed}, budget {seconds:g} s, output {folder}", markup=False)
    record = run_search(settings, _printer(console, plain))
    _summary(console, record)
    if record.status.startswith("error"):
        typer.echo(record.status + " (the trials' runs never started; see trials/000/harness.log)", err=True)
        raise typer.Exit(2)
    if record.found:
        raise typer.Exit(1)
    judged = sum(record.as_dict()["outcomes"].get(k, 0) for k in ("pass", "loss-within-claim"))
    raise typer.Exit(3 if record.status == "interrupted" or judged == 0 else 0)
