"""Locust event listeners that turn a Locust run into a verified delivery run.

Flags (also shown in the web UI's start form): ``--scenario``, ``--target``, ``--out``, ``--seed``.
``init`` resolves the scenario and starts the stack (fault proxy, target, one listener per cohort);
``test_start`` spawns the run controller; ``quitting`` closes the ledger, writes the verdict and sets
Locust's exit code (0 held, 1 violated, 3 unknown/incomplete). A startup failure exits 2.

Once judged, every lost message is one failed request named ``lost`` in Locust's statistics, so the
Failures in Locust's header (and its CSV and HTML report) mean loss. ``--harness-progress`` (what
``harness run`` passes) prints a progress line (``PROGRESS_MARK`` + JSON, see ``harness.locust_ext.live``)
about once a second and at every phase change or fault event, instead of the verdict: ``harness run``
prints the verdict itself, once.

Distributed (``--processes N`` or ``--master`` + ``--worker``): the master does all of the above; workers
only run users, and write their ledger shards into the run folder or ship their rows to the master
(``harness.locust_ext.distributed``); the master waits for every worker's flush before the verdict.

Nothing listens beyond loopback unless a flag says so: the web UI and the master's worker port default to
127.0.0.1 (an explicit ``--web-host`` / ``--master-bind-host`` still wins), and with ``--processes`` the
master's port is a free one chosen before Locust forks (unless ``--master-bind-port`` is given). Forked
workers die with the master (``PR_SET_PDEATHSIG`` plus a parent watch).
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.config import Scenario, load_scenario, resolve_target
from harness.drivers.base import DeliveryUser
from harness.drivers.registry import load_driver
from harness.errors import HarnessError
from harness.ledger.recorder import LedgerWriter
from harness.locust_ext.distributed import WORKER_LIVENESS_S, start_master, start_worker
from harness.locust_ext.live import RunProgress, snapshot
from harness.locust_ext.web_ui import install as install_delivery_tab
from harness.paths import DEFAULT_SCENARIO, REPORTS_DIR
from harness.report import finalize, summary_lines
from harness.run.context import RunContext, Slot
from harness.run.controller import RunController
from harness.run.distributed import Master
from harness.run.folder import claim_run_folder, clear_previous_run, held_by_parent
from harness.run.health import ProcessSampler, proxy_api_probe
from harness.run.process import SECRET_ENV, die_with_parent, free_port, is_wildcard, listen_hosts
from harness.run.stack import Stack
from harness.run.targets import TargetSpec
from harness.run.timeline import build_faults
from targets.auth import sign

__all__ = ["PROGRESS_MARK", "LOST_NAME"]

PROGRESS_MARK = "@@harness-progress "
"""Prefix of a progress line on stdout (``harness run`` reads them; everything else it passes through)."""
LOST_NAME = "lost"
"""The Locust statistics row whose failures are the lost messages."""

log = logging.getLogger(__name__)


@dataclass
class _Run:
    scenario: Scenario
    target: TargetSpec
    run_dir: Path
    stack: Stack
    ctx: RunContext
    controller: RunController
    started: bool = False
    verdict: dict[str, Any] | None = None
    master: Master | None = None
    progress: RunProgress | None = None


_RUN: _Run | None = None

LOOPBACK = "127.0.0.1"
_LOCUST_MASTER_PORT = 5557


class _DefaultPort(int):
    """Locust's default master port, marked so that a port the user gave (even 5557) is told apart."""


_FORK_PARENT: int | None = None
"""The PID that ran ``--processes`` (the master, or ``--worker --processes N``'s parent); forked workers
inherit it and watch it."""


def _with_free_master_port(parse: Any) -> Any:
    """Wrap ``parser.parse_args``: Locust forks ``--processes`` workers right after parsing, so the master's
    port must be chosen here, free, for the master to bind and the workers to connect to."""

    def parse_args(*args: Any, **kwargs: Any) -> Any:
        global _FORK_PARENT
        options = parse(*args, **kwargs)
        if getattr(options, "processes", None):
            # forked workers watch this PID: the master, or on a worker machine the parent that waits for them
            _FORK_PARENT = os.getpid()
        if getattr(options, "processes", None) and not getattr(options, "worker", False):
            if isinstance(options.master_bind_port, _DefaultPort) and isinstance(options.master_port, _DefaultPort):
                options.master_bind_port = options.master_port = free_port()
        return options

    return parse_args


@events.init_command_line_parser.add_listener
def _add_flags(parser: Any, **_: Any) -> None:
    default_port = _DefaultPort(_LOCUST_MASTER_PORT)
    parser.set_defaults(web_host=LOOPBACK, master_bind_host=LOOPBACK, master_bind_port=default_port,
                        master_port=default_port)
    parser.parse_args = _with_free_master_port(parser.parse_args)
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO), include_in_web_ui=True,
                        help="Scenario TOML file (delivery harness)")
    parser.add_argument("--target", default="", include_in_web_ui=True,
                        help="Target name; default: the scenario's first target")
    parser.add_argument("--out", default="", help="Run folder for ledger, verdict and reports")
    parser.add_argument("--seed", type=int, default=None, help="Override the scenario's seed")
    parser.add_argument("--driver", default="", help="Client driver instead of the target's own (e.g. socketio-lean)")
    parser.add_argument("--proxy-bind-host", default=LOOPBACK,
                        help="Interface the fault proxy's cohort listeners bind (workers on other machines "
                             "connect to them); default 127.0.0.1")
    parser.add_argument("--proxy-advertise-host", default="",
                        help="Host name or address workers reach the proxy listeners at (default: the bind host)")
    parser.add_argument("--allow-all-interfaces", action="store_true", default=False,
                        help="Allow 0.0.0.0 / * as --proxy-bind-host or --master-bind-host (refused otherwise)")
    parser.add_argument("--links-per-proxy", type=int, default=0,
                        help="Links one embedded proxy process is planned to hold before cohorts go to another "
                             "(default 0: from the open-file limit, about 7,400 at 20,000 open files)")
    parser.add_argument("--ship-ledger", action="store_true", default=False,
                        help="Master: workers ship every ledger row to the master even when they share its run "
                             "folder (by default such workers write their own ledger-<node>.jsonl there)")
    parser.add_argument("--worker-liveness-s", type=float, default=WORKER_LIVENESS_S,
                        help="Master: seconds a worker may miss heartbeats before it counts as gone (Locust's own "
                             "is 3 s, which a starved but healthy worker misses on a busy machine)")
    parser.add_argument("--worker-wait-s", type=float, default=0.0,
                        help="Master: give up (verdict unknown, exit 3) if the run has not started this long after "
                             "the stack is up, because --expect-workers did not all join (0: wait forever)")
    parser.add_argument("--harness-progress", action="store_true", default=False,
                        help="Print progress lines for `harness run` instead of the verdict (harness run sets it)")


def _watch_fork_parent(parent: int) -> None:
    """A forked worker ends when its master is gone (PDEATHSIG does it at once on Linux; this is the fallback)."""
    die_with_parent(parent)

    def watch() -> None:
        while os.getppid() == parent:
            gevent.sleep(0.5)
        log.error("master %s is gone; this worker exits", parent)
        os._exit(3)

    gevent.spawn(watch)


def _redacted(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved scenario for manifest.json, every target's ``secret`` replaced by "***"."""
    targets = {name: {**definition, "secret": "***"} if definition.get("secret") is not None else definition
               for name, definition in (config.get("target") or {}).items()}
    return {**config, "target": targets} if "target" in config else config


def _secret_for(target: TargetSpec) -> str:
    """The token secret: the target's own, else for a URL target the harness's HARNESS_TARGET_SECRET, else
    (a target the harness starts) a random one per run. Raises HarnessError for a URL target with neither."""
    if target.secret:
        return target.secret
    if target.url:
        secret = os.environ.get(SECRET_ENV, "")
        if not secret:
            raise HarnessError(f"target '{target.name}' is given by URL and has no token secret: set "
                               f"'secret' under [target.{target.name}] in the scenario, or the environment "
                               f"variable {SECRET_ENV} of the harness process, to the secret your server uses")
        return secret
    return secrets.token_hex(16)


def _hosts(options: Any, is_master: bool) -> tuple[str, str]:
    """(bind, advertise) host of the proxy listeners; a master's own bind host is held to the same rule
    (every interface only when asked for). Raises HarnessError. A host other than loopback is logged: what
    listens there is open to whoever reaches it (see docs/distributed.md)."""
    allow = bool(getattr(options, "allow_all_interfaces", False))
    bind, advertise = listen_hosts(options.proxy_bind_host, options.proxy_advertise_host or None, allow)
    master_host = str(getattr(options, "master_bind_host", LOOPBACK))
    if is_master and is_wildcard(master_host) and not allow:
        raise HarnessError(f"--master-bind-host '{master_host}' listens on every interface, and the master hands "
                           "each worker that connects the users' tokens: give one interface's address, or add "
                           "--allow-all-interfaces")
    for what, host in (("proxy listeners", bind), ("master", master_host if is_master else LOOPBACK)):
        if host != LOOPBACK:
            log.warning("%s listen on %s, not loopback: anyone who reaches it can connect (keep it on a "
                        "private network or behind a firewall)", what, host)
    return bind, advertise


def _fail_startup(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _versions() -> dict[str, str]:
    names = ("locust", "python-socketio", "python-engineio", "pandas", "pyarrow", "delivery-harness")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _user_class(driver: str) -> type[DeliveryUser]:
    """The concrete User class for a driver: built-in ones from the locustfile, others by import path."""
    cls = load_driver(driver)
    if not (isinstance(cls, type) and issubclass(cls, DeliveryUser)):
        raise ValueError(f"{cls!r} is not a harness.drivers.base.DeliveryUser subclass")
    if cls.abstract:  # make a concrete subclass Locust can spawn
        cls = type(cls.__name__, (cls,), {"abstract": False, "__module__": __name__})
    return cls


def _health_probes(environment: Environment, stack: Stack) -> list[Callable[[], dict[str, Any]]]:
    """Figures for every health row besides CPU and memory: each fault-proxy process's API round trip (its
    event loop's lag; not for a real Toxiproxy, which is not ours to judge) and Locust's own high-CPU warning."""
    probes: list[Callable[[], dict[str, Any]]] = []
    client = stack.proxy_client
    if client is not None and not os.environ.get("TOXIPROXY_URL"):
        members = getattr(client, "members", None) or [client]
        probes.append(proxy_api_probe({("proxy" if i == 0 else f"proxy-{i}"): m.url for i, m in enumerate(members)}))

    def locust_warning() -> dict[str, Any]:
        runner = environment.runner
        return {"locust_cpu_warning": bool(getattr(runner, "cpu_warning_emitted", False))} if runner else {}

    probes.append(locust_warning)
    return probes


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _RUN
    if environment.parsed_options is None:
        return
    runner = environment.runner
    master = start_master(environment) if isinstance(runner, MasterRunner) else None
    options = environment.parsed_options
    overrides = {"seed": options.seed} if options.seed is not None else {}
    try:
        scenario = load_scenario(options.scenario, overrides)
    except HarnessError as exc:
        _fail_startup(str(exc))
        return
    target_name = options.target or scenario.targets[0]
    try:
        target = resolve_target(target_name, scenario.target)
    except KeyError:
        _fail_startup(f"{options.scenario}: field 'targets': unknown target '{target_name}'")
        return
    driver_name = options.driver or target.driver
    try:
        driver = _user_class(driver_name)
    except (ImportError, AttributeError, ValueError) as exc:
        _fail_startup(f"target '{target_name}': driver '{driver_name}': {exc}")
        return
    random.seed(scenario.seed)  # client-side randomness (reconnect jitter); the proxy gets the same seed
    if isinstance(runner, WorkerRunner):
        if _FORK_PARENT is not None:  # forked by --processes: our parent is the master or a worker's parent
            _watch_fork_parent(_FORK_PARENT)
        start_worker(environment, scenario, target_name, driver)
        return
    try:
        secret = _secret_for(target)
        bind_host, advertise_host = _hosts(options, master is not None)
    except HarnessError as exc:
        _fail_startup(str(exc))
        return
    run_id = uuid.uuid4().hex[:8]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(options.out) if options.out else REPORTS_DIR / f"{stamp}-{scenario.name}-{target_name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        if not held_by_parent():
            claim_run_folder(run_dir)
    except HarnessError as exc:
        _fail_startup(str(exc))
        return
    if clear_previous_run(run_dir):
        log.warning("%s held an earlier run: its ledger and reports were replaced", run_dir)
    stack = Stack(scenario, target, run_dir, run_id, secret, os.environ.get("TOXIPROXY_URL"),
                  listen_host=bind_host, advertise_host=advertise_host,
                  links_per_proxy=int(getattr(options, "links_per_proxy", 0) or 0) or None)
    try:
        stack.start()
    except Exception as exc:  # any startup failure must stop the run with exit code 2, not be logged and ignored
        stack.stop()
        _fail_startup(str(exc) if isinstance(exc, HarnessError) else f"starting the stack failed: {exc!r}")
        return
    slots = [Slot(uid, cohort, str(stack.cohort_url(cohort)), sign(uid, secret), urls=stack.cohort_urls(cohort))
             for uid, cohort in scenario.user_ids()]
    writer = LedgerWriter(run_dir / "ledger.jsonl", run_id, node="master" if master else "local")
    ctx = RunContext(scenario, target_name, run_id, writer, slots)
    if master is not None:
        master.attach(ctx, run_dir)
    manifest = {
        "run_id": run_id, "scenario": scenario.name, "scenario_file": str(Path(options.scenario).resolve()),
        "target": target_name, "claims": {"delivery": target.claims.delivery, "ordered": target.claims.ordered,
                                          "survives_restart": target.claims.survives_restart},
        "seed": scenario.seed, "driver": driver_name, "config": _redacted(scenario.model_dump(mode="json")),
        "versions": _versions(),
        "proxy": stack.proxy_client.url if stack.proxy_client else None, "listeners": stack.listeners,
        "proxy_processes": len(set(stack.proxy_members.values())), "proxy_members": stack.proxy_members,
        "bind_host": bind_host, "advertise_host": advertise_host,
        "port_listeners": stack.port_listeners,
        "target_addresses": [stack.address(i) for i in range(len(stack.instances))],
        "python": sys.version.split()[0],
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    faults = build_faults(list(scenario.faults), stack, writer)
    headless = bool(getattr(options, "headless", False))

    def when_done() -> None:
        """Headless: quit (the verdict is written in ``quitting``). Web UI: write the verdict now, stop the
        users, and keep the UI up so the Delivery tab shows it. Distributed: every worker's ledger first."""
        if master is not None:
            master.barrier()
        if headless or runner is None:
            if runner is not None:
                runner.quit()
            return
        _finish(environment)
        runner.stop()

    controller = RunController(ctx, faults, quit_runner=when_done,
                               sampler=ProcessSampler(stack.pids, probes=_health_probes(environment, stack)),
                               exits=stack.unexpected_exits)
    driver.run_context = ctx
    environment.user_classes = [driver]
    progress = RunProgress()
    writer.observers.append(progress.observe)
    _RUN = _Run(scenario, target, run_dir, stack, ctx, controller, master=master, progress=progress)
    install_delivery_tab(environment, ctx, faults, progress, verdict=lambda: _RUN.verdict if _RUN else None,
                         run_dir=run_dir)
    wait_s = float(getattr(options, "worker_wait_s", 0) or 0)
    if master is not None and wait_s > 0:
        gevent.spawn(_give_up_waiting, environment, wait_s)
    if getattr(options, "harness_progress", False):
        gevent.spawn(_emit_progress, ctx, progress, faults)
    else:
        print(f"run {run_id}: scenario {scenario.name}, target {target_name}, folder {run_dir}", flush=True)


def _give_up_waiting(environment: Environment, wait_s: float) -> None:
    """End the run with a verdict that says why (unknown, exit 3) if the workers have not all joined in time;
    Locust's ``--expect-workers-max-wait`` exits 1 ("violated") without one. Locust's main greenlet is still
    in its wait loop, where neither ``runner.quit()`` nor SIGTERM (its handler comes later) reaches
    ``quitting``: so the verdict is written and the stack stopped here, then the process exits."""
    gevent.sleep(wait_s)
    if _RUN is None or _RUN.started or environment.runner is None:
        return
    log.error("the run has not started %.0f s after the stack was up: not every expected worker joined", wait_s)
    _on_quitting(environment)
    environment.runner.quit()  # tells the workers that did join to leave
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(environment.process_exit_code if environment.process_exit_code is not None else 3)


def _emit_progress(ctx: RunContext, progress: RunProgress, faults: list[Any]) -> None:
    """A progress line at every phase change or fault event, and once a second, until stdout goes away."""
    seen, last = -1, 0.0
    while True:
        now = time.monotonic()
        if progress.changes != seen or now - last >= 1.0:
            seen, last = progress.changes, now
            active = [(f.spec.name, f.spec.cohort) for f in faults if getattr(f, "active", False)]
            state = snapshot(ctx, progress, active, None, None, None)
            state["event_count"] = len(progress.events)
            state.pop("cohorts", None)
            try:
                sys.stdout.write(PROGRESS_MARK + json.dumps(state, separators=(",", ":")) + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):  # the reader is gone (broken pipe): the run goes on, silently
                return
        gevent.sleep(0.2)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if _RUN is None or _RUN.started:
        return
    _RUN.started = True
    gevent.spawn(_RUN.controller.run)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    try:
        _finish(environment)
    finally:
        if _RUN is not None:
            _RUN.stack.stop()


def _finish(environment: Environment) -> None:
    """Close the ledger and write the verdict, once (at the end of the run, or at quit if it never ended)."""
    run = _RUN
    if run is None:
        return
    if run.verdict is not None:  # already written when the run ended in the web UI
        environment.process_exit_code = int(run.verdict["exit_code"])
        return
    run.ctx.set_flags(stopped=True)
    reasons = []
    if not run.controller.finished:
        run.ctx.writer.append(process="controller", type="event", f="phase",
                              data={"phase": "interrupted", "during": run.controller.phase})
        reasons.append(f"interrupted during phase '{run.controller.phase}'")
        expected = int(getattr(environment.parsed_options, "expect_workers", 0) or 0)
        if run.master is not None and not run.started and len(run.master.nodes) < expected:
            reasons.append(f"only {len(run.master.nodes)} of {expected} workers joined, so the run never started")
    if run.master is not None:
        run.master.close()  # a worker that never flushed is reported incomplete: its streams are unseen
    run.ctx.writer.close()
    doc = finalize(run.run_dir, target=run.ctx.target, scenario=run.scenario.name,
                   ordered=run.target.claims.ordered, extra_reasons=reasons)
    _count_loss_as_failures(environment, int((doc.get("counts") or {}).get("lost") or 0))
    run.verdict = doc
    if not getattr(environment.parsed_options, "harness_progress", False):
        for line in summary_lines(doc, report=str(run.run_dir / "report.html")):
            print(line, flush=True)
    environment.process_exit_code = int(doc["exit_code"])


def _count_loss_as_failures(environment: Environment, lost: int) -> None:
    """One failed request named ``lost`` per lost message, so Locust's Failures count is the loss. Fired only
    once the verdict is known: while the run goes, nothing is lost yet (unseen messages may still arrive)."""
    error = RuntimeError("acknowledged, never received by the end of the drain (see report.html)")
    request: Any = environment.events.request  # Locust's EventHook.fire is untyped
    for _ in range(lost):
        request.fire(request_type="DLV", name=LOST_NAME, response_time=0, response_length=0,
                                        exception=error, context={})
