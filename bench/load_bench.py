"""Load generator capacity: verified messages per load-generator CPU-second, the ledger's cost, ack latency,
connections held, and Artillery's Socket.IO engine side by side on the same target.

Parts (each prints its figures and adds them to the JSON written with --json):
  throughput   `harness`'s locustfile, 50 users on the naive target through the fault proxy, ledger on,
               then the same with the ledger's send/receive rows not written (bench/ledger_off_locustfile.py)
  artillery    npm artillery 2.0.21 (installed into bench/.artillery on first use), 50 VUs emitting with an
               ack to the same kind of target behind the same proxy
  artillery-paced  the same, each VU pausing 1/rate − 3 ms after each ack: about the rate our users offer, so
               both tools are compared per CPU-second at the same load (Artillery alone runs flat out)
  lean         the same as throughput's ledger-on run with the experimental lean driver (socketio-lean)
  connections  how many Socket.IO connections one Locust process holds with light traffic
               (bench/connections_locustfile.py; users connect to the target directly)

"Verified message" = a message whose send, ack and receipt were all recorded (ledger on) or tracked
(ledger off), counted from Locust's per-second `deliver` totals inside the steady sending window (from 2 s
after the `start` phase to 0.5 s before `drain_start`). CPU = user + system time of the Locust process
alone (not the proxy or the target), sampled every 0.25 s and interpolated at the window's edges. Wake-ups =
the Locust process's voluntary context switches per second in that window (each costs ~40 us of CPU on the
project's VMs).

Run: .venv/bin/python bench/load_bench.py [throughput artillery connections] [--users 50] [--rate 60]
     [--duration 25] [--connections 15000] [--repeat N] [--json bench/results/load.json]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.config import load_scenario, resolve_target  # noqa: E402
from harness.run.stack import Stack  # noqa: E402
from targets.auth import sign  # noqa: E402

PYTHON = sys.executable
ARTILLERY_DIR = ROOT / "bench" / ".artillery"
PACED_ACK_S = 0.003
"""Artillery's ack round trip at our rate (p50 2.9 ms at 3,468 emits/s): a paced VU thinks 1/rate minus this."""
ARTILLERY_VERSION = "2.0.21"


# -- sampling ----------------------------------------------------------------------------------------------------
def _interp(xs: list[float], ys: list[int] | list[float], x: float) -> float:
    """ys at x, linearly interpolated between samples (clamped at the ends)."""
    i = bisect.bisect_left(xs, x)
    if i <= 0:
        return float(ys[0])
    if i >= len(xs):
        return float(ys[-1])
    if xs[i] <= xs[i - 1]:
        return float(ys[i])
    return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1])


@dataclass
class Samples:
    """(wall time, CPU seconds, voluntary context switches) of a process tree, taken by a background thread."""

    times: list[float]
    cpu: list[float]
    peak_rss_mib: float = 0.0
    switches: list[int] = field(default_factory=list)
    """Voluntary context switches so far: each is the process blocking (an idle event loop) and being woken."""

    def at(self, t: float) -> float:
        """CPU seconds at wall time t, linearly interpolated."""
        return _interp(self.times, self.cpu, t)

    def wakeups_per_s(self, t0: float, t1: float) -> float | None:
        if len(self.switches) != len(self.times) or t1 <= t0:
            return None
        return (_interp(self.times, self.switches, t1) - _interp(self.times, self.switches, t0)) / (t1 - t0)


def sample_cpu(pid: int, tree: bool, every_s: float = 0.25) -> tuple[Samples, threading.Thread]:
    samples = Samples([], [])
    root = psutil.Process(pid)
    seen: dict[int, float] = {}

    switched: dict[int, int] = {}

    def total() -> float:
        procs = [root] + (root.children(recursive=True) if tree else [])
        rss = 0
        for proc in procs:
            try:
                t = proc.cpu_times()
                seen[proc.pid] = t.user + t.system
                switched[proc.pid] = proc.num_ctx_switches().voluntary
                rss += proc.memory_info().rss
            except psutil.Error:
                pass  # gone: keep its last figure
        samples.peak_rss_mib = max(samples.peak_rss_mib, rss / 2**20)
        return sum(seen.values())

    def loop() -> None:
        while True:
            try:
                if root.status() == psutil.STATUS_ZOMBIE:
                    return
                value = total()
            except psutil.Error:
                return
            samples.times.append(time.time())
            samples.cpu.append(value)
            samples.switches.append(sum(switched.values()))
            time.sleep(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return samples, thread


def children_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's children by a short name (proxy, target)."""
    out: dict[str, float] = {}
    try:
        for child in psutil.Process(pid).children(recursive=True):
            line = " ".join(child.cmdline())
            name = "proxy" if " proxy " in f"{line} " else "target" if "targets" in line else child.name()
            t = child.cpu_times()
            out[name] = out.get(name, 0.0) + t.user + t.system
    except psutil.Error:
        pass
    return out


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


# -- our load generator ------------------------------------------------------------------------------------------
def write_scenario(folder: Path, users: int, rate: float, duration: float) -> Path:
    half = users // 2
    path = folder / "bench-throughput.toml"
    path.write_text(f"""# bench: steady load, no faults
name = "bench-throughput"
targets = ["naive"]
seed = 1
[heartbeat]
ping_interval_s = 25.0
ping_timeout_s = 20.0
[load]
duration_s = {duration}
rate_per_user = {rate}
max_messages_per_user = 1000000
ack_timeout_s = 5.0
connect_timeout_s = 30.0
[drain]
timeout_s = 10.0
settle_s = 0.5
[[cohorts]]
name = "a"
users = {half}
[[cohorts]]
name = "b"
users = {users - half}
[expect.naive]
valid = true
""")
    return path


def _phases(ledger: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in ledger.read_text().splitlines():
        if '"f":"phase"' in line:
            row = json.loads(line)
            found[row["data"]["phase"]] = row["t_ns"] / 1e9
    return found


def _deliveries(history: Path) -> tuple[list[float], list[int]]:
    times, counts = [], []
    with history.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "deliver":
                times.append(float(row["Timestamp"]))
                counts.append(int(row["Total Request Count"]))
    return times, counts


def _stat(stats: Path, name: str, column: str) -> float | None:
    with stats.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == name:
                value = row.get(column)
                return float(value) if value not in (None, "", "N/A") else None
    return None


def run_ours(ledger_on: bool, users: int, rate: float, duration: float, work: Path,
             driver: str | None = None) -> dict[str, Any]:
    out = work / (("ledger-on" if ledger_on else "ledger-off") + (f"-{driver}" if driver else ""))
    out.mkdir(parents=True)
    scenario = write_scenario(work, users, rate, duration)
    locustfile = ROOT / "harness" / "locustfile.py" if ledger_on else ROOT / "bench" / "ledger_off_locustfile.py"
    argv = [PYTHON, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
            "--scenario", str(scenario), "--target", "naive", "--out", str(out), "--only-summary",
            "--loglevel", "WARNING", "--csv", str(out / "locust"), "--csv-full-history"]
    if driver:
        argv += ["--driver", driver]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (out / "locust.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        samples, _ = sample_cpu(proc.pid, tree=False)
        side: dict[str, float] = {}
        while proc.poll() is None:  # the children's CPU, read while they are alive
            time.sleep(0.5)
            side = {k: max(v, side.get(k, 0.0)) for k, v in {**side, **children_cpu(proc.pid)}.items()}
        proc.wait(timeout=duration + 120)
    phases = _phases(out / "ledger.jsonl")
    t0, t1 = phases["start"] + 2.0, phases["drain_start"] - 0.5
    times, counts = _deliveries(out / "locust_stats_history.csv")
    delivered = _interp(times, counts, t1) - _interp(times, counts, t0)
    cpu = samples.at(t1) - samples.at(t0)
    wall = t1 - t0
    result: dict[str, Any] = {
        "ledger": "on" if ledger_on else "off", "driver": driver or "socketio", "users": users,
        "offered_per_s": users * rate,
        "window_s": round(wall, 2), "verified_per_s": round(delivered / wall), "cpu_pct": round(100 * cpu / wall),
        "verified_per_cpu_s": round(delivered / cpu) if cpu > 0 else None,
        "ack_p50_ms": _stat(out / "locust_stats.csv", "send→ack", "50%"),
        "ack_p99_ms": _stat(out / "locust_stats.csv", "send→ack", "99%"),
        "deliver_p99_ms": _stat(out / "locust_stats.csv", "deliver", "99%"),
        "wakeups_per_s": _round(samples.wakeups_per_s(t0, t1)),
        "peak_rss_mib": round(samples.peak_rss_mib), "proxy_cpu_s": round(side.get("proxy", 0.0), 1),
        "target_cpu_s": round(side.get("target", 0.0), 1),
    }
    if ledger_on:
        verdict = json.loads((out / "verdict.json").read_text())
        result["verdict"] = {"valid": verdict["valid"], **{k: verdict["counts"][k] for k in
                                                           ("acknowledged", "delivered", "lost", "unseen")}}
    return result


# -- Artillery ---------------------------------------------------------------------------------------------------
def artillery_bin() -> Path:
    binary = ARTILLERY_DIR / "node_modules" / ".bin" / "artillery"
    if not binary.exists():
        print(f"installing artillery {ARTILLERY_VERSION} into {ARTILLERY_DIR} (once, ~1 min)", flush=True)
        ARTILLERY_DIR.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                        f"artillery@{ARTILLERY_VERSION}"], cwd=ARTILLERY_DIR, env=env, check=True, timeout=900)
    return binary


def run_artillery(users: int, duration: float, work: Path, think_s: float | None = None) -> dict[str, Any]:
    """Artillery's VUs emitting as fast as acks come back, or (``think_s``) pausing that long after each ack."""
    binary = artillery_bin()
    out = work / ("artillery" if think_s is None else "artillery-paced")
    out.mkdir(parents=True)
    scenario = load_scenario(write_scenario(work, users, 1.0, duration))
    secret = secrets.token_hex(16)
    stack = Stack(scenario, resolve_target("naive", {}), out, "bench", secret)
    stack.start()
    try:
        token = sign("art-0", secret)
        # One VU = one socket emitting "send" with an ack, one in flight at a time, to a user that exists, so
        # the server does the same work as for our users (validate, route, emit, ack). Bounded by count.
        per_vu = int(os.environ.get("BENCH_ARTILLERY_COUNT", duration * 150))
        emit = {"emit": {"channel": "send", "data": {"id": "bench", "to": "art-0", "seq": 1}}, "acknowledge": {}}
        flow: list[dict[str, Any]] = [{"loop": [emit], "count": per_vu}]
        if think_s is not None:  # paced: about as many emits per second as our users offer. The flow is unrolled:
            # its top level is where the Socket.IO engine takes think steps itself (a think inside a loop: not tried)
            per_vu = int(duration / (think_s + PACED_ACK_S))
            flow = [emit, {"think": f"{think_s * 1000:.2f}ms"}] * per_vu  # a bare fraction would be milliseconds
        script = {
            "config": {"target": stack.cohort_url("a"), "socketio": {"transports": ["websocket"],
                                                                      "auth": {"token": token}},
                       "phases": [{"duration": 1, "arrivalCount": users}]},
            "scenarios": [{"engine": "socketio", "flow": flow}],
        }
        (out / "script.json").write_text(json.dumps(script, indent=2))
        with (out / "artillery.log").open("wb") as log:
            proc = subprocess.Popen([str(binary), "run", "--output", str(out / "report.json"),
                                     str(out / "script.json")], stdout=log, stderr=subprocess.STDOUT, cwd=out)
            samples, _ = sample_cpu(proc.pid, tree=True)
            try:
                proc.wait(timeout=duration + 180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not (out / "report.json").exists():
            raise RuntimeError("artillery wrote no report:\n" + (out / "artillery.log").read_text()[-3000:])
        report = json.loads((out / "report.json").read_text())
    finally:
        stack.stop()
    periods = [p for p in report["intermediate"] if p["counters"].get("socketio.emit")]
    full = periods[1:-1] if len(periods) > 2 else periods  # the first and last periods are partial
    emits = sum(p["counters"]["socketio.emit"] for p in full)
    t0 = min(p["firstMetricAt"] for p in full) / 1000
    t1 = max(p["lastMetricAt"] for p in full) / 1000
    cpu = samples.at(t1) - samples.at(t0)
    summary = report["aggregate"]["summaries"].get("socketio.response_time", {})
    return {"tool": f"artillery {ARTILLERY_VERSION}", "users": users, "think_s": think_s, "window_s": round(t1 - t0, 2),
            "emits_per_s": round(emits / (t1 - t0)), "cpu_pct": round(100 * cpu / (t1 - t0)),
            "emits_per_cpu_s": round(emits / cpu) if cpu > 0 else None,
            "ack_p50_ms": summary.get("median"), "ack_p99_ms": summary.get("p99"),
            "peak_rss_mib": round(samples.peak_rss_mib),
            "errors": {k: v for k, v in report["aggregate"]["counters"].items() if k.startswith("errors.")}}


# -- connections held --------------------------------------------------------------------------------------------
def run_connections(users: int, hold_s: float, work: Path) -> dict[str, Any]:
    out = work / "connections"
    out.mkdir(parents=True)
    scenario = load_scenario(write_scenario(work, 2, 1.0, 10))
    secret = secrets.token_hex(16)
    stack = Stack(scenario, resolve_target("naive", {}), out, "bench", secret)
    stack.start()  # the target's proxy listeners are unused: users connect straight to the target
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_USERS": str(users), "BENCH_OUT": str(out),
               "BENCH_URL": f"http://{stack.address(0)}", "BENCH_SECRET": secret, "BENCH_PERIOD_S": "30"}
        spawn_rate = 250
        run_time = int(users / spawn_rate + hold_s + 5)
        argv = [PYTHON, "-m", "locust", "-f", str(ROOT / "bench" / "connections_locustfile.py"), "--headless",
                "-u", str(users), "-r", str(spawn_rate), "-t", f"{run_time}s", "--only-summary", "--loglevel",
                "WARNING", "--stop-timeout", "5"]
        target_pid = stack.instances[0].pid if stack.instances[0] else None
        peak_target_rss = 0.0
        with (out / "locust.log").open("wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
            while proc.poll() is None:
                time.sleep(1)
                if target_pid:
                    try:
                        peak_target_rss = max(peak_target_rss, psutil.Process(target_pid).memory_info().rss / 2**20)
                    except psutil.Error:
                        pass
            proc.wait()
    finally:
        stack.stop()
    progress = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    peak = max(progress, key=lambda p: p["connected"])
    held = [p for p in progress if p["connected"] >= peak["connected"] * 0.99]
    cpu_pct = (100 * (held[-1]["cpu_s"] - held[0]["cpu_s"]) / (held[-1]["t"] - held[0]["t"])
               if len(held) > 1 else None)
    log_text = (out / "locust.log").read_text(errors="replace")
    return {"users": users, "connected_peak": peak["connected"], "rss_mib_at_peak": round(peak["rss_mib"]),
            "rss_mib_max": round(max(p["rss_mib"] for p in progress)),
            "held_for_s": round(held[-1]["t"] - held[0]["t"]),
            "cpu_pct_while_held": round(cpu_pct, 1) if cpu_pct is not None else None,
            "target_rss_mib_max": round(peak_target_rss), "messages_acked": progress[-1]["acked"],
            "messages_received": progress[-1]["received"],
            "too_many_open_files": "Too many open files" in log_text}


# -- main --------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", default=["throughput", "artillery", "connections"])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rate", type=float, default=60.0, help="messages per second per user (ours)")
    parser.add_argument("--duration", type=float, default=25.0)
    parser.add_argument("--connections", type=int, default=15000)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold the connections")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of all parts, back to back; prints each ratio's median and range")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count()}
    try:
        if args.repeat <= 1:
            results.update(one_round(args, work))
        else:  # rounds back to back: each ratio compares runs minutes apart, the spread shows the machine's drift
            rounds: list[dict[str, Any]] = []
            results["rounds"] = rounds  # an interrupted repeat still writes the rounds it finished
            for k in range(args.repeat):
                print(f"-- round {k + 1} of {args.repeat}", flush=True)
                rounds.append(one_round(args, work / f"round-{k + 1}"))
                results["ratios"] = summarize_ratios(rounds)
            print(json.dumps({"ratios": results["ratios"]}), flush=True)
    finally:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        shutil.rmtree(work, ignore_errors=True)


def one_round(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Each asked-for part once, in order, with the ratios of ours to Artillery per CPU-second."""
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if "throughput" in args.parts:
        on = run_ours(True, args.users, args.rate, args.duration, work)
        print(json.dumps(on), flush=True)
        off = run_ours(False, args.users, args.rate, args.duration, work)
        print(json.dumps(off), flush=True)
        overhead = None
        if on["verified_per_cpu_s"] and off["verified_per_cpu_s"]:
            overhead = round(100 * (off["verified_per_cpu_s"] / on["verified_per_cpu_s"] - 1), 1)
        results["throughput"] = {"ledger_on": on, "ledger_off": off, "ledger_cpu_overhead_pct": overhead}
        print(f"ledger overhead: {overhead} % more CPU per verified message", flush=True)
    if "lean" in args.parts:  # the experimental hand-framed client, ledger on
        lean = run_ours(True, args.users, args.rate, args.duration, work, driver="socketio-lean")
        results["lean"] = lean
        print(json.dumps(lean), flush=True)
    if "artillery" in args.parts:
        art = run_artillery(args.users, args.duration, work)
        results["artillery"] = art
        print(json.dumps(art), flush=True)
        add_ratios(results, art, "artillery")
    if "artillery-paced" in args.parts:  # the same offered rate as ours: per CPU-second at equal load
        paced = run_artillery(args.users, args.duration, work, think_s=max(0.0, 1 / args.rate - PACED_ACK_S))
        results["artillery_paced"] = paced
        print(json.dumps(paced), flush=True)
        add_ratios(results, paced, "paced_artillery")
    if "connections" in args.parts:
        held = run_connections(args.connections, args.hold, work)
        results["connections"] = held
        print(json.dumps(held), flush=True)
    return results


def add_ratios(results: dict[str, Any], artillery: dict[str, Any], name: str) -> None:
    """``ratio_ours_to_<name>`` and ``ratio_lean_to_<name>``: our verified messages per CPU-second over Artillery's
    emits per CPU-second, for the runs of ours this round has."""
    for key, ours in ((f"ratio_ours_to_{name}", results.get("throughput", {}).get("ledger_on", {})),
                      (f"ratio_lean_to_{name}", results.get("lean", {}))):
        if ours.get("verified_per_cpu_s") and artillery["emits_per_cpu_s"]:
            results[key] = round(ours["verified_per_cpu_s"] / artillery["emits_per_cpu_s"], 2)
            print(f"{key}: {results[key]}", flush=True)


def summarize_ratios(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median, lowest and highest of each ratio over the rounds that measured it."""
    summary = {}
    for key in sorted({key for r in rounds for key in r if key.startswith("ratio_")}):  # as add_ratios named them
        values = sorted(r[key] for r in rounds if r.get(key) is not None)
        if values:
            summary[key] = {"median": round(statistics.median(values), 2), "min": values[0], "max": values[-1],
                            "rounds": len(values)}
    return summary


if __name__ == "__main__":
    main()
