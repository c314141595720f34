"""Was the experiment healthy enough to support a verdict? (pure, over the ledger alone)

A load test that saturates its own load generator, or a target that acknowledges almost nothing, produces a
ledger in which "0 lost" covers a sliver of the traffic and "lost" may be a recipient that never had a chance.
The controller writes what it measured into the ledger: the ``start`` phase holds the users connected and the
limits in force (``health_limits``, from the scenario's ``[health]``), ``health`` rows sample CPU and memory of
every process of the run once a second, and ``drain_end`` says whether deliveries were still progressing.
This module turns those facts into problems in words a user acts on; any problem makes a passing verdict
``unknown`` (it never turns a violation into a pass: real loss stays ``false``).

Rules (each limit documented on ``harness.config.Health``):

- **connect**: fewer than ``min_connected_share`` of the users connected when sending started;
- **offered share**: the load generator made fewer than ``min_offered_share`` of the planned sends. Named
  "load generator saturated" when a load process was CPU-saturated (or none was measured), else "load not
  offered" (the users were disconnected or blocked on the target: a redis-store flash crowd whose crowd never
  came back made 28 % of its sends at 37 % load CPU, and had been blamed on the load generator);
- **acknowledged share**: of the sends invoked away from every fault, fewer than ``min_ack_share`` were
  acknowledged (the target, the proxy or the load generator could not keep up). "Away from a fault" excludes
  each fault window widened by a margin taken from the fault schedule's own settings (the ``start`` phase):
  ``ack_timeout_s`` before the inject (a send invoked then may still be waiting for its ack when the fault
  bites) and ``fair_chance_s`` after the heal (heartbeat + settle + 1 s: the time clients need to notice the
  dead link, reconnect and replay, during which their sends fail for the fault's sake, not the target's);
- **load generator CPU**: a load process (role ``load``, or ``load-<node>`` for each worker of a distributed
  run) was at or above ``max_cpu_pct`` for more than ``max_cpu_saturated_share`` of the sending window,
  time-weighted (each sample covers the interval since the previous one of the same process, so a starved
  sampler's late samples are not under-counted); a worker the master reported that has no sample in a sending
  window of at least ``_MIN_WINDOW_FOR_SAMPLES_S`` could not be judged, which is a problem too;
- **drain**: the drain ended at its limit while deliveries were still arriving.

A warning, not a problem (the verdict stands): a load process **starved** — its run-queue wait (below) at or
above ``max_wait_pct`` for more than ``max_cpu_saturated_share`` of the sending window. Measured on this project's
2-core machine kind: quiet runs of 2 to 5,000 users read a load-process wait of 0.1–15.7 % mean (31.9 % peak, at
5,000 users where the run's own processes filled both cores); the same 400-user run beside three busy loops read
62.9 % mean (86.4 % peak) at 15–18 % CPU. A starved client still records every receipt it reads, and the drain
waits while deliveries progress, so loss and duplicates are judged as usual; its latencies are not the target's.

Two more warnings: the **fault proxy lagging** (its API, served on the same event loop as every link, took
``PROXY_LAG_MS`` or more for more than ``max_cpu_saturated_share`` of the window: latencies include its backlog),
and the **acknowledged share not judged** (fewer than ``min_ack_share`` of all sends were acknowledged but every
one fell inside a widened fault window, so the rule above had nothing calm to look at: silent until now, a
15,000-user run with a 91 s fair chance was called healthy with 83 % of its sends timing out).

Also facts: ``ack_timeouts`` (sends whose ack did not come within ``ack_timeout_s``, and their share),
``proxy_api_ms`` (median and peak per proxy process) and ``locust_cpu_warning`` (Locust's own "CPU usage above
90 %" warning was raised during sending).

Facts without a rule: ``run_queue_wait_pct`` (per role, mean and peak share of the sending window its main thread
was runnable but waiting for a core: the signal that other work starved it), ``machine`` (the whole host's CPU in
percent of one core, its ``cores``, and the share of the sending window with every core at least ``max_cpu_pct``
busy). On a shared machine a starved process reads a low CPU figure (it gets a fifth of the core it wants), so per-
process figures alone cannot show that other jobs took the machine; the run's own processes count towards it too, so
it is not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.checker.base import RowTotals

__all__ = ["HealthCheck", "DEFAULT_LIMITS", "check_health", "start_data"]

DEFAULT_LIMITS: dict[str, float] = {
    "min_connected_share": 1.0,
    "min_ack_share": 0.5,
    "min_offered_share": 0.4,
    "max_cpu_pct": 90.0,
    "max_cpu_saturated_share": 0.25,
    "max_wait_pct": 50.0,
}
"""Used when a ledger carries no ``health_limits`` (mirrors ``harness.config.Health``'s defaults)."""

_MIN_WINDOW_FOR_SAMPLES_S = 5.0
"""A sending window this long holds several once-a-second samples of every live load process: a worker with
none was not measured (its sampler never ran, or the process was starved throughout)."""


@dataclass(frozen=True)
class HealthCheck:
    """The experiment's health: what was measured and what was wrong with it."""

    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    """Measured figures (connected share, acknowledged share, peak CPU per process, drain progress)."""
    warnings: list[str] = field(default_factory=list)
    """What weakens the figures but not the verdict (a starved load process: its latencies include the wait)."""

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": not self.problems, "problems": list(self.problems), "warnings": list(self.warnings),
                **self.facts}


def start_data(frame: pd.DataFrame) -> dict[str, Any]:
    """The ``start`` phase's data (empty if the run never started sending)."""
    return _last_phase(frame, "start")


def _last_phase(frame: pd.DataFrame, name: str) -> dict[str, Any]:
    rows = frame.loc[(frame["f"] == "phase").to_numpy(dtype=bool, na_value=False), "data"]
    found: dict[str, Any] = {}
    for data in rows:
        if isinstance(data, dict) and data.get("phase") == name:
            found = data
    return found


def _phase_time(frame: pd.DataFrame, name: str) -> int | None:
    rows = frame.loc[(frame["f"] == "phase").to_numpy(dtype=bool, na_value=False), ["t_ns", "data"]]
    times = [int(t) for t, d in zip(rows["t_ns"], rows["data"], strict=True)
             if isinstance(d, dict) and d.get("phase") == name]
    return times[-1] if times else None


def _phases_seen(frame: pd.DataFrame) -> set[str]:
    """The names of every phase the ledger records (one scan of the ``f`` column)."""
    rows = frame.loc[(frame["f"] == "phase").to_numpy(dtype=bool, na_value=False), "data"]
    return {str(d.get("phase")) for d in rows if isinstance(d, dict)}


def _limits(start: dict[str, Any]) -> dict[str, float]:
    given = start.get("health_limits")
    if not isinstance(given, dict):
        given = {}
    return {k: float(given.get(k, v)) for k, v in DEFAULT_LIMITS.items()}


def _in_any_window(times: np.ndarray[Any, Any], windows: list[tuple[int, int]]) -> np.ndarray[Any, Any]:
    inside = np.zeros(len(times), dtype=bool)
    for start, end in windows:
        inside |= (times >= start) & (times <= end)
    return inside


def _margins_s(start: dict[str, Any]) -> tuple[float, float]:
    """(before inject, after heal) in seconds: ``ack_timeout_s`` and ``fair_chance_s`` from the ``start`` phase
    (0 for a ledger that does not record them: then only the fault windows themselves are excluded)."""
    def seconds(key: str) -> float:
        value = start.get(key)
        return float(value) if isinstance(value, int | float) and np.isfinite(value) and value > 0 else 0.0
    return seconds("ack_timeout_s"), seconds("fair_chance_s")


def _ack_share(messages: pd.DataFrame, windows: list[tuple[int, int]]) -> tuple[int, int, int]:
    """(acknowledged, attempted, excluded) over sends invoked outside ``windows`` (already widened)."""
    if messages.empty or "invoke_ns" not in messages:
        return 0, 0, 0
    invoked = messages["invoke_ns"].to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(invoked)
    near = known & _in_any_window(np.nan_to_num(invoked).astype(np.int64), windows)
    calm = known & ~near
    acked = (messages["outcome"] == "ok").to_numpy(dtype=bool, na_value=False)
    return int((acked & calm).sum()), int(calm.sum()), int(near.sum())


@dataclass(frozen=True)
class _Samples:
    """One process role's CPU samples in the sending window: times (ns) and values (percent of one core)."""

    t_ns: np.ndarray[Any, Any]
    cpu: np.ndarray[Any, Any]

    def saturated_share(self, limit: float) -> float:
        """Share of the sampled time at or above ``limit``. Each sample covers the interval since the previous
        one (psutil's reading); the first one in the window is given the median interval."""
        if len(self.cpu) == 1:
            return float(self.cpu[0] >= limit)
        gaps = np.diff(self.t_ns).astype("float64")
        weights = np.concatenate([[np.median(gaps)], gaps])
        if not weights.sum() > 0:
            weights = np.ones(len(self.cpu))
        return float(weights[self.cpu >= limit].sum() / weights.sum())


def _cpu(frame: pd.DataFrame, since_ns: int | None, until_ns: int | None, key: str = "cpu") -> dict[str, _Samples]:
    """CPU samples (or another per-role figure, ``key``) per process role, within the sending window, in time
    order."""
    rows = frame.loc[(frame["f"] == "health").to_numpy(dtype=bool, na_value=False), ["t_ns", "data"]]
    samples: dict[str, list[tuple[int, float]]] = {}
    for t_ns, data in zip(rows["t_ns"], rows["data"], strict=True):
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            continue
        if (since_ns is not None and t_ns < since_ns) or (until_ns is not None and t_ns > until_ns):
            continue
        for role, value in data[key].items():
            if isinstance(value, int | float) and np.isfinite(value):
                samples.setdefault(str(role), []).append((int(t_ns), float(value)))
    out: dict[str, _Samples] = {}
    for role, pairs in samples.items():
        pairs.sort()
        out[role] = _Samples(np.array([t for t, _ in pairs], dtype="int64"), np.array([v for _, v in pairs]))
    return out


STALL_S = 5.0
"""A load process samples itself once a second: a longer silence than this while sending means its event loop
did not run (SIGSTOP, a frozen VM, extreme starvation). Its users were silent that long, past the heartbeat
timeouts scenarios use, so the server may drop them: losses then come from the harness, not the fault."""


def _stalls(cpu: dict[str, _Samples], since_ns: int | None, until_ns: int | None) -> dict[str, float]:
    """The longest silence in seconds of each load role between its health samples in the sending window,
    the window's edges included (a process that never sampled is judged elsewhere)."""
    gaps: dict[str, float] = {}
    for role, samples in cpu.items():
        if not role.startswith("load") or since_ns is None or until_ns is None or not len(samples.t_ns):
            continue
        edges = np.concatenate([[since_ns], samples.t_ns, [until_ns]]).astype("int64")
        gaps[role] = round(float(np.diff(edges).max()) / 1e9, 1)
    return gaps


DOWN = frozenset({"kill_target", "restart_target", "kill_store", "restart_store"})
"""Process faults during which nobody can send (a rolling restart keeps an instance up)."""


def _planned_after_real_downtime(start: dict[str, Any], planned: int, window: tuple[int, int],
                                 downtime: list[tuple[int, int]], facts: dict[str, Any]) -> int:
    """``planned_sends`` leaves out each process fault's *scheduled* downtime; a restart that took longer to be
    ready (a busy machine, a slow server) kept everyone from sending longer still: scale the plan down by the
    extra (recorded as the fact ``extra_downtime_s``), so the offered-share rule judges the load generator,
    not the target's restart time (which the fault's effect reports). ``downtime``: (inject, heal) of each
    healed process fault that stops sending (run_state's fault windows)."""
    begin, end = window
    scheduled = sum(float(f.get("duration_s") or 0) * len(f.get("starts_s") or [])
                    for f in start.get("faults") or [] if isinstance(f, dict) and f.get("type") in DOWN)
    actual = sum(max(0, min(heal, end) - max(inject, begin)) for inject, heal in downtime) / 1e9
    window_s = (end - begin) / 1e9
    extra = actual - scheduled
    if extra <= 0.5 or window_s - scheduled <= 0:
        return planned
    facts["extra_downtime_s"] = round(extra, 2)
    return max(1, int(planned * max(0.0, window_s - scheduled - extra) / (window_s - scheduled)))


def _cores(frame: pd.DataFrame) -> int | None:
    """The host's core count, as the sampler recorded it (``cores`` in ``health`` rows)."""
    rows = frame.loc[(frame["f"] == "health").to_numpy(dtype=bool, na_value=False), "data"]
    found = [int(d["cores"]) for d in rows
             if isinstance(d, dict) and isinstance(d.get("cores"), int) and d["cores"] > 0]
    return max(found) if found else None


def _sends_made(frame: pd.DataFrame) -> int:
    """Sends the load generator invoked (``invoke`` rows of ``send``), however many recipients each had."""
    return int(((frame["f"] == "send") & (frame["type"] == "invoke")).to_numpy(dtype=bool, na_value=False).sum())


def _acked(messages: pd.DataFrame) -> int | None:
    """Acknowledged sends (None without an outcome column)."""
    if messages.empty or "outcome" not in messages:
        return None
    return int((messages["outcome"] == "ok").to_numpy(dtype=bool, na_value=False).sum())


def _flags(frame: pd.DataFrame, since_ns: int | None, until_ns: int | None, key: str) -> bool | None:
    """Whether any ``health`` row in the window set the boolean ``key`` (None: no row recorded it)."""
    rows = frame.loc[(frame["f"] == "health").to_numpy(dtype=bool, na_value=False), ["t_ns", "data"]]
    seen: list[bool] = [bool(d[key]) for t, d in zip(rows["t_ns"], rows["data"], strict=True)
                        if isinstance(d, dict) and isinstance(d.get(key), bool)
                        and (since_ns is None or t >= since_ns) and (until_ns is None or t <= until_ns)]
    return any(seen) if seen else None


PROXY_LAG_MS = 200.0
"""A fault-proxy API round trip this slow means its event loop was behind (on this machine kind it answers in
1-3 ms while carrying 5,000 links at 0.5 msg/s each)."""


def _acks_timed_out(frame: pd.DataFrame) -> int:
    """Sends whose ack did not come within ``ack_timeout_s`` (the driver's ``info`` with that reason)."""
    if "error" not in frame:
        return 0
    rows = ((frame["f"] == "send") & (frame["type"] == "info")).to_numpy(dtype=bool, na_value=False)
    errors = frame.loc[rows, "error"].astype("string")
    return int(errors.str.startswith("no ack within", na=False).sum())


def _reported_workers(frame: pd.DataFrame) -> list[str]:
    """Workers a distributed master reported complete (``node`` rows): each should have sampled itself."""
    rows = frame.loc[(frame["f"] == "node").to_numpy(dtype=bool, na_value=False), "data"]
    return sorted({str(d["node"]) for d in rows if isinstance(d, dict) and d.get("complete") is True
                   and d.get("node") is not None})


def check_health(frame: pd.DataFrame, messages: pd.DataFrame, windows: list[tuple[int, int]],
                 sending_ns: tuple[int | None, int | None],
                 downtime: list[tuple[int, int]] | None = None, totals: RowTotals | None = None) -> HealthCheck:
    """Every documented health rule over one ledger; ``windows`` are the fault windows (inject, heal) in ns.
    ``totals``: the send rows' counts, for a frame without them (a partitioned check)."""
    start = start_data(frame)
    limits = _limits(start)
    problems: list[str] = []
    facts: dict[str, Any] = {"limits": limits}

    users, connected = start.get("users"), start.get("connected")
    if isinstance(users, int) and isinstance(connected, int) and users > 0:
        facts["connected_at_start"] = {"connected": connected, "users": users}
        # the controller's decision (``sending``) is the rule; the share is checked for ledgers without it
        if start.get("sending") is False or connected / users < limits["min_connected_share"]:
            skipped = " and sending never started" if start.get("sending") is False else ""
            problems.append(f"connect phase reached {connected:,} of {users:,} users{skipped}: the run is not the "
                            "one the scenario describes (raise [load] connect_timeout_s, use fewer users or more "
                            "load processes, or relax [health] min_connected_share)")

    before_s, after_s = _margins_s(start)
    widened = [(begin - int(before_s * 1e9), end + int(after_s * 1e9)) for begin, end in windows]
    acked, calm, near = _ack_share(messages, widened)
    if calm:
        share = acked / calm
        facts["acknowledged_share"] = {"acknowledged": acked, "attempted": calm, "share": round(share, 4),
                                       "excluded_near_faults": near,
                                       "margin_s": {"before_inject": before_s, "after_heal": after_s}}
        if share < limits["min_ack_share"]:
            problems.append(f"target saturated: {acked:,} of {calm:,} sends made while no fault was active were "
                            f"acknowledged ({share:.1%}); the verdict would cover only those: lower the rate or "
                            "add capacity (or relax [health] min_ack_share)")

    drain_start = _phase_time(frame, "drain_start")
    until = drain_start if drain_start is not None else sending_ns[1]
    cpu = _cpu(frame, sending_ns[0], until)
    if cpu:
        facts["cpu_peak_pct"] = {role: round(float(v.cpu.max()), 1) for role, v in sorted(cpu.items())}
    saturated: dict[str, float] = {}
    for role, samples in sorted(cpu.items()):
        if not role.startswith("load"):
            continue  # the target's own CPU is a fact, not a fault of the experiment
        hot = samples.saturated_share(limits["max_cpu_pct"])
        saturated[role] = round(hot, 4)
        if hot > limits["max_cpu_saturated_share"]:
            worker = f" (the load process of {role.removeprefix('load-')})" if role.startswith("load-") else ""
            problems.append(f"load generator saturated: {role}{worker} at or above {limits['max_cpu_pct']:g} % CPU "
                            f"in {hot:.0%} of the sending window; its timings and acks are its own backlog, not "
                            "the target's (use --workers N, fewer users, or a lower rate)")
    if saturated:
        facts["load_cpu_saturated_share"] = saturated
    stalls = _stalls(cpu, sending_ns[0], until)
    if stalls:
        facts["load_sample_gap_s"] = stalls
    for role, gap in sorted(stalls.items()):
        if gap > STALL_S:
            problems.append(f"load process stalled: {role} took no health sample for {gap:.1f} s while sending (it "
                            "was stopped, frozen, starved or killed): its users did not run as the scenario says, so a "
                            "server may have dropped them for silence; what they lost then is the harness's outage, "
                            "not the scenario's")
    waits = _cpu(frame, sending_ns[0], until, key="wait_pct")
    warnings: list[str] = []
    if waits:  # how long each process was runnable but waiting for a core
        facts["run_queue_wait_pct"] = {role: {"mean": round(float(v.cpu.mean()), 1),
                                              "peak": round(float(v.cpu.max()), 1)}
                                       for role, v in sorted(waits.items())}
        for role, samples in sorted(waits.items()):
            starved = samples.saturated_share(limits["max_wait_pct"])
            if role.startswith("load") and starved > limits["max_cpu_saturated_share"]:
                warnings.append(f"load process starved: {role} waited for a core at least {limits['max_wait_pct']:g} % "
                                f"of the time in {starved:.0%} of the sending window (mean "
                                f"{float(samples.cpu.mean()):.0f} %): other work on this machine delayed it, so its "
                                "latencies and ack timeouts include that wait (run on a quieter machine, or fewer "
                                "jobs at once)")
    lags = _cpu(frame, sending_ns[0], until, key="proxy_api_ms")
    if lags:  # the fault proxy's API round trip: its event loop's lag (it carries every link on that loop)
        facts["proxy_api_ms"] = {role: {"median": round(float(np.median(v.cpu)), 1),
                                        "peak": round(float(v.cpu.max()), 1)} for role, v in sorted(lags.items())}
        for role, samples in sorted(lags.items()):
            behind = samples.saturated_share(PROXY_LAG_MS)
            if behind > limits["max_cpu_saturated_share"]:
                warnings.append(f"fault proxy lagging: {role}'s API took {PROXY_LAG_MS:g} ms or more in {behind:.0%} "
                                f"of the sending window (median {float(np.median(samples.cpu)):.0f} ms): its event "
                                "loop was behind, so latencies include the proxy's own backlog (fewer users per proxy "
                                "process: more cohorts, or --links-per-proxy)")
    warned = _flags(frame, sending_ns[0], until, "locust_cpu_warning")
    if warned is not None:
        facts["locust_cpu_warning"] = warned
    overall = acked_all / near if not calm and near and (acked_all := _acked(messages)) is not None else None
    if overall is not None and overall < limits["min_ack_share"]:
        warnings.append(f"acknowledged share not judged: {overall:.0%} of the sends were acknowledged, but all "
                        f"{near:,} were made within a fault's window widened by {before_s:g} s before and "
                        f"{after_s:g} s after (ack timeout, fair chance), so whether the target kept up away from "
                        "faults cannot be told; shorten the faults or lengthen the run")
    timed_out = totals.acks_timed_out if totals is not None else _acks_timed_out(frame)
    if timed_out:
        made_now = totals.sends_made if totals is not None else _sends_made(frame)
        facts["ack_timeouts"] = {"timed_out": timed_out, "sent": made_now,
                                 "share": round(timed_out / made_now, 4) if made_now else None}
    cores = _cores(frame)
    if "machine" in cpu and cores:  # a fact, not a rule: the run's own processes count towards it too
        busy = cpu["machine"].saturated_share(limits["max_cpu_pct"] * cores)
        facts["machine"] = {"cores": cores, "peak_pct": round(float(cpu["machine"].cpu.max()), 1),
                            "busy_share": round(busy, 4)}

    planned = start.get("planned_sends")
    if isinstance(planned, int) and planned > 0 and sending_ns[0] is not None and until is not None:
        planned = _planned_after_real_downtime(start, planned, (sending_ns[0], until), downtime or [], facts)
    if isinstance(planned, int) and planned > 0 and start.get("sending") is not False and not messages.empty:
        # the ledger's own send rows: a room send counts once, not once per member
        made = totals.sends_made if totals is not None else _sends_made(frame)
        facts["offered_share"] = {"sent": made, "planned": planned, "share": round(made / planned, 4)}
        if not _phases_seen(frame) & {"drain_start", "drain_end", "end"}:
            # stopped part-way (Ctrl-C, a crash): the plan covers sending time the run never had, so the share is
            # not judged; the verdict is unknown as incomplete anyway, and the target is not blamed for it
            facts["offered_share"]["cut_short"] = True
        elif made / planned < limits["min_offered_share"]:
            cool = bool(saturated) and max(saturated.values()) <= limits["max_cpu_saturated_share"]
            if cool:  # measured: no load process was CPU-bound, so the shortfall is not the load generator's
                peak = max(float(cpu[r].cpu.max()) for r in saturated)
                problems.append(f"load not offered: the users made {made:,} of the {planned:,} sends the scenario "
                                f"plans ({made / planned:.0%}) although no load process was CPU-saturated (peak "
                                f"{peak:g} %): they were disconnected or kept waiting by the target (target "
                                "saturated or down? see the connects and disconnects in report.html; or relax "
                                "[health] min_offered_share)")
            else:
                problems.append(f"load generator saturated: it made {made:,} of the {planned:,} sends the scenario "
                                f"plans ({made / planned:.0%}); the load described was never offered (use --workers "
                                "N, fewer users, or a lower rate; or relax [health] min_offered_share)")
    window_s = (until - sending_ns[0]) / 1e9 if until is not None and sending_ns[0] is not None else 0.0
    if start.get("sending") is not False and window_s >= _MIN_WINDOW_FOR_SAMPLES_S:
        unmeasured = [f"load-{node}" for node in _reported_workers(frame) if f"load-{node}" not in cpu]
        if unmeasured:
            problems.append(f"load process(es) {', '.join(unmeasured)} sent no CPU sample during the "
                            f"{window_s:.0f} s sending window: whether they were saturated cannot be told "
                            "(a worker from an older harness, or starved throughout)")

    drain = _last_phase(frame, "drain_end")
    if drain.get("quiescent") is False and drain.get("progressing") is True:
        outstanding = drain.get("outstanding")
        rate = drain.get("delivering_per_s")
        problems.append(f"still delivering at the drain limit: {outstanding} outstanding, falling "
                        f"{rate}/s; undelivered messages may still arrive (raise [drain] max_s)")
        facts["drain"] = {"outstanding": outstanding, "delivering_per_s": rate}
    return HealthCheck(problems, facts, warnings)
