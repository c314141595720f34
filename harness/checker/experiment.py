"""Was the experiment what it claims to be? (pure): the faults it scheduled happened, the record is whole.

A verdict under a fault proves something only if the fault was applied; a verdict over a record with holes
proves nothing about what the holes held. Two checks here, both over the ledger alone:

- **fault schedule**: the controller writes the schedule into the ``start`` phase (``faults``: name, type,
  cohort, ``starts_s``, ``duration_s``); every scheduled occurrence must appear as an ``inject`` row and be
  followed by a ``heal`` row, and no ``failed`` / ``skipped`` fault row may exist. Manual faults (the web UI)
  are extra evidence, never a substitute for a scheduled one.
- **fault effects**: for each applied occurrence, what it measurably did (``effects``): bytes through its
  listener just before and while active, and what the clients saw (disconnects and reconnects of the
  cohort, receipts to it during the window against the same length before, median delivery latency of
  messages sent during it against before); for a process fault, the PIDs that changed and how long the
  restart took to be ready. Measured from the ledger, not claimed by the timeline.
- **record integrity**: each node numbers its rows 1, 2, 3, … (``index``); a missing or repeated index means
  rows were lost or written twice after the fact, so that node's observations cannot be trusted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.checker.delivery import column_codes

__all__ = ["FaultCheck", "check_fault_schedule", "fault_effect", "index_damage"]

_PROCESS_GRACE_NS = 10 * 10**9
"""After a process fault heals, messages sent this long after still count as touched by it."""


@dataclass(frozen=True)
class FaultCheck:
    """How the scheduled faults fared."""

    scheduled: int = 0
    """Scheduled occurrences (a repeated fault counts each time)."""
    applied: int = 0
    """Scheduled occurrences that have an ``inject`` row from the timeline."""
    problems: list[str] = field(default_factory=list)
    """Each fault that failed, was skipped, never appeared or never healed, in words a user acts on."""
    effects: list[dict[str, Any]] = field(default_factory=list)
    """What each applied scheduled occurrence measurably did (see ``fault_effect``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"scheduled": self.scheduled, "applied": self.applied, "problems": list(self.problems),
                "effects": [dict(e) for e in self.effects]}


def _phase_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The controller's phase rows (a handful): time and data."""
    return frame.loc[(frame["f"] == "phase").to_numpy(dtype=bool, na_value=False), ["t_ns", "data"]]


def _start_phase(rows: pd.DataFrame) -> tuple[int | None, dict[str, Any]]:
    """The first ``start`` phase row's time and data (None, {} when the run never started sending)."""
    for t_ns, data in zip(rows["t_ns"], rows["data"], strict=True):
        if isinstance(data, dict) and data.get("phase") == "start":
            return int(t_ns), data
    return None, {}


def _schedule(start: dict[str, Any]) -> list[dict[str, Any]]:
    faults = start.get("faults")
    return [f for f in faults if isinstance(f, dict)] if isinstance(faults, list) else []


def _received(traffic: Any) -> int | None:
    """Bytes the listener had received, both directions, from a ``traffic_*`` record (None: not measured)."""
    if not isinstance(traffic, dict) or not isinstance(traffic.get("bytes"), dict):
        return None
    return sum(int(d.get("received", 0)) for d in traffic["bytes"].values() if isinstance(d, dict))


def _messages_touched(messages: pd.DataFrame | None, users: set[str] | None, start: int, end: int) -> int | None:
    """Messages to or from ``users`` (everyone when None) sent during the window or still undelivered at its
    start: what the fault could act on. None when there are no messages to look at."""
    if messages is None or messages.empty:
        return None
    invoked = messages["invoke_ns"].to_numpy(dtype="float64", na_value=np.nan)
    first = messages["first_recv_ns"].to_numpy(dtype="float64", na_value=np.inf)
    live = ((invoked >= start) & (invoked <= end)) | ((invoked < start) & (first > start))
    if users is not None:
        sender = messages["sender"].astype(object).isin(users).to_numpy(dtype=bool)
        recipient = messages["recipient"].astype(object).isin(users).to_numpy(dtype=bool)
        live &= sender | recipient
    return int(live.sum())


def _evidence(name: str, occurrence: int, inject: dict[str, Any], heal: dict[str, Any], t_inject: int,
              t_heal: int, messages: pd.DataFrame | None, cohort_users: dict[str, set[str]]) -> list[str]:
    """Why one applied occurrence proves nothing: it touched no byte, or no message, of its target."""
    problems: list[str] = []
    label = f"fault {name}" + (f" (occurrence {occurrence})" if occurrence > 1 else "")
    before = _received(inject.get("traffic_before")) or _received(inject.get("traffic_at"))
    after = _received(heal.get("traffic_at"))
    if before is not None and after is not None and after - before <= 0:
        port = inject.get("port")
        url = f'self.slot.urls["{port}"]' if isinstance(port, str) else "self.slot.url"
        problems.append(f"{label} touched no traffic: its proxy listener received 0 bytes from just before "
                        f"the fault until it healed (does the driver connect through {url}, and is that "
                        "cohort sending or receiving then?)")
        return problems
    cohort = inject.get("cohort")
    users = cohort_users.get(str(cohort)) if cohort else None
    if cohort and users is None:
        return problems  # no connect rows name the cohort's users: nothing to compare with
    # a process fault disconnects everyone, so nothing is sent while it lasts: what it acts on is what was in
    # flight at the kill and what is sent in the seconds after the restart
    grace = 0 if cohort else _PROCESS_GRACE_NS
    touched = _messages_touched(messages, users, t_inject, t_heal + grace)
    if touched == 0:
        who = f"cohort {cohort}" if cohort else "the target"
        problems.append(f"{label} touched no message: nothing was sent to or from {who} while it was active, "
                        "so the verdict says nothing about it (move at_s into the cohort's traffic)")
    return problems


def _median_ms(values: np.ndarray[Any, Any]) -> float | None:
    return None if values.size == 0 else round(float(np.median(values)) / 1e6, 1)


def fault_effect(name: str, occurrence: int, inject: dict[str, Any], heal: dict[str, Any], t_inject: int,
                 t_heal: int, messages: pd.DataFrame | None, users: set[str] | None, links: pd.DataFrame,
                 margin_ns: int, duration_s: float | None, until_ns: int | None = None) -> dict[str, Any]:
    """What one occurrence measurably did. ``users``: its cohort (None: a process fault, everyone);
    ``links``: connect/disconnect rows (t_ns, process, f); ``margin_ns``: how long after the heal clients
    may still be noticing it (heartbeat + settle); ``duration_s``: the scheduled length; ``until_ns``: the run's
    ``end`` phase, after which the harness itself closes every connection (those disconnects are not the
    fault's)."""
    effect: dict[str, Any] = {"fault": name, "occurrence": occurrence, "type": inject.get("type"),
                              "cohort": inject.get("cohort"), "active_s": round((t_heal - t_inject) / 1e9, 3)}
    before, at = _received(inject.get("traffic_before")), _received(inject.get("traffic_at"))
    after = _received(heal.get("traffic_at"))
    if before is not None and at is not None:
        effect["bytes_before"] = at - before
    if at is not None and after is not None:
        effect["bytes_during"] = after - at
    if isinstance(inject.get("port"), str):
        effect["port"] = inject["port"]
    mine = links if users is None else links[links["process"].astype(object).isin(users).to_numpy(dtype=bool)]
    t = mine["t_ns"].to_numpy(dtype="int64")
    kind = mine["f"].astype(object).to_numpy()
    who = mine["process"].astype(str).to_numpy()
    window_end = t_heal + margin_ns if until_ns is None else min(t_heal + margin_ns, until_ns)
    dropped = (t >= t_inject) & (t <= window_end) & (kind == "disconnect")
    effect["disconnects"] = int(dropped.sum())
    if dropped.any():
        # per user: the first disconnect in the window, then the first connect after it (one pass, grouped)
        table = pd.DataFrame({"who": who, "t": t, "connect": kind == "connect"})
        first_drop = table[dropped].groupby("who")["t"].min()
        connects = table[table["connect"].to_numpy()]
        after = connects.join(first_drop.rename("dropped"), on="who", how="inner")
        back = after[after["t"] > after["dropped"]].groupby("who")["t"].min()
        complete = back.index.size == first_drop.index.size
        effect["back_after_heal_s"] = (round(max(0, int(back.max()) - t_heal) / 1e9, 3) if complete else None)
    if messages is not None and not messages.empty:
        length = max(t_heal - t_inject, 1)
        invoked = messages["invoke_ns"].to_numpy(dtype="float64", na_value=np.nan)
        first = messages["first_recv_ns"].to_numpy(dtype="float64", na_value=np.nan)
        to_them = np.ones(len(messages), dtype=bool) if users is None else \
            messages["recipient"].astype(object).isin(users).to_numpy(dtype=bool)
        effect["receipts_before"] = int((to_them & (first >= t_inject - length) & (first < t_inject)).sum())
        effect["receipts_during"] = int((to_them & (first >= t_inject) & (first <= t_heal)).sum())
        latency = first - invoked
        sent_before = to_them & (invoked >= t_inject - length) & (invoked < t_inject) & ~np.isnan(latency)
        sent_during = to_them & (invoked >= t_inject) & (invoked <= t_heal) & ~np.isnan(latency)
        effect["latency_ms_before"] = _median_ms(latency[sent_before])
        effect["latency_ms_during"] = _median_ms(latency[sent_during])
    if users is None:  # a process fault: which processes were replaced, and how long the restart took
        was, now = inject.get("pids") or {}, heal.get("pids") or {}
        effect["replaced"] = sorted(role for role, pid in was.items() if now.get(role) not in (None, pid))
        if duration_s is not None:
            effect["ready_after_s"] = round(max(0.0, (t_heal - t_inject) / 1e9 - float(duration_s)), 3)
    return effect


LATE_LIMIT_S = 2.0
"""An occurrence injected this much later than scheduled did not test the schedule it was given."""


def _timing(name: str, occurrence: int, effect: dict[str, Any], t_inject: int, start_ns: int | None,
            starts_s: list[Any], duration_s: Any, healed_by: Any) -> list[str]:
    """A scheduled occurrence that came late, or a toxic healed before its duration was up (``late_s`` is
    added to ``effect``)."""
    problems: list[str] = []
    label = f"fault {name}" + (f" (occurrence {occurrence})" if occurrence > 1 else "")
    if start_ns is not None and 0 < occurrence <= len(starts_s):
        late = (t_inject - start_ns) / 1e9 - float(starts_s[occurrence - 1])
        effect["late_s"] = round(late, 3)
        if late > LATE_LIMIT_S:
            problems.append(f"{label} was injected {late:.1f} s later than scheduled (a busy machine?): the run did "
                            "not test the schedule it was given")
    if effect.get("cohort") and isinstance(duration_s, int | float):
        short = float(duration_s) - float(effect["active_s"])
        if short > max(0.5, 0.1 * float(duration_s)):
            who = "from the web UI" if healed_by == "web-ui" else "by the timeline"
            problems.append(f"{label} lasted {effect['active_s']:g} s of its {float(duration_s):g} s (healed early "
                            f"{who}): the run did not test the fault it was given")
    return problems


def check_fault_schedule(frame: pd.DataFrame, messages: pd.DataFrame | None = None,
                         cohort_of: dict[str, str] | None = None) -> FaultCheck:
    """Compare the scheduled faults with the fault rows the run actually wrote, and check each applied
    occurrence touched the traffic it was meant to hit (``messages``: the delivery table; ``cohort_of``:
    user → cohort, from the connect rows)."""
    phases = _phase_rows(frame)
    start_ns, start = _start_phase(phases)
    schedule = _schedule(start)
    rows = frame.loc[(frame["f"] == "fault").to_numpy(dtype=bool, na_value=False), ["t_ns", "index", "data"]]
    rows = rows.sort_values(["t_ns", "index"], kind="stable")
    cohort_users: dict[str, set[str]] = {}
    for user, cohort in (cohort_of or {}).items():
        cohort_users.setdefault(cohort, set()).add(user)
    injects: Counter[str] = Counter()
    open_now: dict[str, bool] = {}
    opened: dict[str, tuple[int, dict[str, Any]]] = {}
    problems: list[str] = []
    scheduled_names = {str(spec.get("fault")) for spec in schedule}
    durations = {str(spec.get("fault")): spec.get("duration_s") for spec in schedule}
    links = frame.loc[frame["f"].isin(["connect", "disconnect"]).to_numpy(dtype=bool, na_value=False),
                      ["t_ns", "process", "f"]]
    starts = {str(spec.get("fault")): spec.get("starts_s") or [] for spec in schedule}
    margin_ns = int(float(start.get("fair_chance_s") or 3.0) * 1e9)
    end_ns = next((int(t) for t, d in zip(phases["t_ns"], phases["data"], strict=True)
                   if isinstance(d, dict) and d.get("phase") == "end"), None)
    effects: list[dict[str, Any]] = []
    for t_ns, data in zip(rows["t_ns"], rows["data"], strict=True):
        if not isinstance(data, dict):
            continue
        name, action = str(data.get("fault")), data.get("action")
        if action == "inject":
            if data.get("source", "timeline") == "timeline":
                injects[name] += 1
            open_now[name] = True
            opened[name] = (int(t_ns), data)
        elif action == "heal":
            open_now[name] = False
            # whoever heals it (the timeline, or a person in the web UI), a scheduled window must show its effect
            if name in opened and name in scheduled_names:
                t_inject, inject = opened.pop(name)
                problems += _evidence(name, injects[name], inject, data, t_inject, int(t_ns), messages, cohort_users)
                hit = inject.get("cohort")
                users = (cohort_users.get(str(hit)) or set()) if hit else None
                effect = fault_effect(name, injects[name], inject, data, t_inject, int(t_ns), messages,
                                      users, links, margin_ns, durations.get(name), end_ns)
                effects.append(effect)
                if inject.get("source", "timeline") == "timeline":  # a person's own window keeps its own times
                    problems += _timing(name, injects[name], effect, t_inject, start_ns, starts.get(name, []),
                                        durations.get(name), data.get("source", "timeline"))
        elif action == "failed":
            step = f" ({data['step']})" if data.get("step") else ""
            problems.append(f"fault {name} could not be applied{step}: {data.get('error') or 'no reason given'}")
        elif action == "skipped":
            problems.append(f"fault {name} was skipped: {data.get('reason') or 'no reason given'}")
    drained = any(isinstance(d, dict) and d.get("phase") in ("drain_start", "drain_end") for d in phases["data"])
    # a run stopped part-way (Ctrl-C, a crash: no drain) never reached the occurrences scheduled after its last
    # row; the verdict is already unknown (incomplete), so those are not counted as faults that failed to apply
    last_ns = None if drained or start_ns is None or frame.empty else int(frame["t_ns"].max())
    scheduled = applied = 0
    for spec in schedule:
        name = str(spec.get("fault"))
        starts_s = spec.get("starts_s") or []
        wanted = len(starts_s) if last_ns is None or start_ns is None else \
            sum(1 for at in starts_s if start_ns + float(at) * 1e9 <= last_ns)
        got = min(injects[name], wanted)
        scheduled += wanted
        applied += got
        if got < wanted:
            problems.append(f"fault {name}: {got} of {wanted} scheduled occurrence(s) applied; the verdict does "
                            "not cover the fault it was meant to test")
    for name, still_open in sorted(open_now.items()):
        if still_open:
            ending = "the drain ran under the fault" if drained else "the run ended under the fault, without a drain"
            problems.append(f"fault {name} was never healed: {ending}")
    problems += _unplanned_exits(frame, start_ns)
    return FaultCheck(scheduled, applied, problems, effects)


_PHASE_WORDS = {"start": "sending", "connecting": "the connect phase", "drain_start": "the drain", "idle": "set-up"}


def _unplanned_exits(frame: pd.DataFrame, start_ns: int | None) -> list[str]:
    """A process of the stack that died without the harness stopping it (``process_exit`` rows: a crash, an
    OOM kill, a ``kill -9`` from outside) is a fault nobody scheduled and nothing healed: whatever the run
    measured after it is not the experiment the scenario describes."""
    rows = frame.loc[(frame["f"] == "process_exit").to_numpy(dtype=bool, na_value=False), ["t_ns", "data"]]
    problems = []
    for t_ns, data in zip(rows["t_ns"], rows["data"], strict=True):
        info = data if isinstance(data, dict) else {}
        code = info.get("code")
        how = f"killed by signal {-int(code)}" if isinstance(code, int) and code < 0 else f"exit code {code}"
        when = f" {(int(t_ns) - start_ns) / 1e9:.1f} s after sending started" if start_ns is not None else ""
        phase = _PHASE_WORDS.get(str(info.get("phase")), info.get("phase", "the run"))
        problems.append(f"the {info.get('role', 'process')} (PID {info.get('pid', '?')}) died on its own ({how})"
                        f"{when}, during {phase}, and was not started again: a crash the scenario did not schedule")
    return problems


def index_damage(frame: pd.DataFrame) -> dict[str, str]:
    """Nodes whose ``index`` sequence has holes or repeats (node → what is wrong).

    One pass over integer codes: each node's indexes in file order are checked first (a whole record
    written in order is 1, 2, 3, … already: no sort); only a node out of order is sorted."""
    damaged: dict[str, str] = {}
    if frame.empty:
        return damaged
    node_code, node_values = column_codes(frame["node"])
    index = frame["index"]
    missing_index = index.isna().to_numpy(dtype=bool)
    values = index.to_numpy(dtype=np.int64, na_value=0)
    single = len(node_values) == 1 and not bool((node_code < 0).any())
    for code in sorted(range(len(node_values)), key=lambda c: str(node_values[c])):
        mine = None if single else node_code == code
        problems: list[str] = []
        absent = int(missing_index.sum() if mine is None else missing_index[mine].sum())
        if absent:
            problems.append(f"{absent} row(s) without an index")
        if mine is None:
            present = values[~missing_index] if absent else values
        else:
            present = values[mine & ~missing_index]
        if present.size:
            step = np.diff(present)
            if not bool((step > 0).all()):  # out of file order (or repeated): compare sorted
                present = np.sort(present)
                step = np.diff(present)
            # sorted: repeats and holes are where consecutive values differ by 0 or > 1
            repeated = np.unique(present[1:][step == 0])
            if repeated.size:
                problems.append("index " + _listing(repeated) + (" appears twice" if repeated.size == 1
                                                                  else " appear twice"))
            missing, total = _holes(present, step)
            if total:
                problems.insert(0, "ledger rows missing: index "
                                + _listing(np.array(missing, dtype=np.int64), total=total))
        if problems:
            damaged[str(node_values[code])] = "; ".join(problems)
    return damaged


def _holes(present: np.ndarray[Any, Any], step: np.ndarray[Any, Any], cap: int = 8) -> tuple[list[int], int]:
    """The first ``cap`` indexes missing from the sorted ``present`` (1, 2, 3, … expected) and how many are
    missing in all, in linear time (a set difference over 10 M indexes took 50 s)."""
    jump = step > 1
    firsts = present[:-1][jump] + 1
    lasts = present[1:][jump] - 1
    if present[0] > 1:  # the hole before the first index: 1 .. present[0] - 1
        firsts = np.concatenate(([1], firsts))
        lasts = np.concatenate(([present[0] - 1], lasts))
    shown: list[int] = []
    for first, last in zip(firsts, lasts, strict=True):
        shown.extend(range(int(first), min(int(last), int(first) + cap - 1) + 1))
        if len(shown) >= cap:
            break
    return shown[:cap], int((lasts - firsts + 1).sum())


def _listing(values: np.ndarray[Any, Any], cap: int = 8, total: int | None = None) -> str:
    shown = ", ".join(str(int(v)) for v in values[:cap])
    count = values.size if total is None else total
    return shown + (f" and {count - cap} more" if count > cap else "")
