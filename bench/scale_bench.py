"""How the cost of a run grows with users: CPU and memory of the load process, proxy and target, and the
experiment's own health verdict, for a crowd scenario at several sizes.

Usage: .venv/bin/python bench/scale_bench.py [--users 2,400,2000,5000] [--target ackmap] [--rate 0.5]
                                             [--workers 0] [--json FILE]

Each size is one real ``harness run`` of a crowd shaped like scenarios/crowd-outage.toml (10 % of the users in
a "flaky" cohort blackholed for 5 s past the heartbeat, everyone sending round robin at ``--rate`` msg/s).
The figures come from the run's own ledger: its ``health`` rows (psutil, once a second, per process role)
and its verdict's ``details.health`` (connected share, acknowledged share, saturation problems), so the bench
measures exactly what a user's run reports. Every loop is bounded: one run per size, each with its own
connect, sending and drain limits.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.ledger.format import read_ledger  # noqa: E402

COHORT_MAX = 5_000
"""Users per stable cohort: a cohort is one proxy listener, and one proxy process holds ~7,400 links (two
descriptors each, 20,000 open files): more users than that need several cohorts, spread over proxy processes."""


def _stable_cohorts(users: int) -> str:
    sizes = [min(COHORT_MAX, users - start) for start in range(0, users, COHORT_MAX)]
    names = ["stable"] if len(sizes) == 1 else [f"stable{i + 1}" for i in range(len(sizes))]
    return "\n".join(f'[[cohorts]]\nname = "{name}"\nusers = {size}' for name, size in zip(names, sizes, strict=True))


def _scenario(users: int, rate: float) -> str:
    flaky = max(1, users // 10)
    return f"""
name = "scale-{users}"
targets = ["ackmap"]
seed = 7
[heartbeat]
ping_interval_s = 2.0
ping_timeout_s = 2.0
[load]
duration_s = 20.0
rate_per_user = {rate}
ack_timeout_s = 5.0
connect_timeout_s = 180.0
[drain]
timeout_s = 15.0
{_stable_cohorts(users - flaky)}
[[cohorts]]
name = "flaky"
users = {flaky}
[[faults]]
name = "flaky-blackhole"
type = "timeout"
cohort = "flaky"
at_s = 5.0
duration_s = 5.0
attributes = {{ timeout = 0 }}
"""


def _summary(folder: Path, wall_s: float, users: int) -> dict[str, Any]:
    doc = json.loads((folder / "verdict.json").read_text())
    frame = read_ledger(folder).frame
    health_rows = [d for f, d in zip(frame["f"], frame["data"], strict=True) if f == "health" and isinstance(d, dict)]
    per_role: dict[str, dict[str, float]] = {}
    for row in health_rows:
        for role, cpu in (row.get("cpu") or {}).items():
            entry = per_role.setdefault(role, {"cpu_mean": 0.0, "cpu_max": 0.0, "rss_max_mb": 0.0, "n": 0})
            entry["cpu_mean"] += cpu
            entry["cpu_max"] = max(entry["cpu_max"], cpu)
            entry["n"] += 1
        for role, rss in (row.get("rss_mb") or {}).items():
            per_role.setdefault(role, {"cpu_mean": 0.0, "cpu_max": 0.0, "rss_max_mb": 0.0, "n": 0})
            per_role[role]["rss_max_mb"] = max(per_role[role]["rss_max_mb"], rss)
    for entry in per_role.values():
        entry["cpu_mean"] = round(entry["cpu_mean"] / max(1, entry["n"]), 1)
    health = doc.get("details", {}).get("health", {})
    return {"users": users, "wall_s": round(wall_s, 1), "valid": doc.get("valid"), "reason": doc.get("reason"),
            "counts": {k: doc["counts"].get(k) for k in ("attempted", "acknowledged", "delivered", "lost", "unseen")}
            if doc.get("counts") else {}, "health": health, "processes": per_role}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="2,400,2000,5000")
    parser.add_argument("--target", default="ackmap")
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="keep each run's folder under this directory")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as scratch:
        tmp = str(args.keep) if args.keep else scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for users in [int(u) for u in args.users.split(",")]:
            path = Path(tmp) / f"scale-{users}.toml"
            path.write_text(_scenario(users, args.rate))
            out = Path(tmp) / f"run-{users}"
            began = time.monotonic()
            cmd = [sys.executable, "-m", "harness", "run", str(path), "--target", args.target, "--out", str(out)]
            if args.workers:
                cmd += ["--workers", str(args.workers)]
            run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
            if not (out / "verdict.json").exists():
                results.append({"users": users, "error": run.stderr[-2000:]})
                print(json.dumps(results[-1]), flush=True)
                continue
            results.append(_summary(out, time.monotonic() - began, users))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
