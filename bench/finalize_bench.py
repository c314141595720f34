"""`harness check` end to end (verdict and every report) on synthetic ledgers, stage by stage, beside DuckDB.

For each size the script writes (or reuses, with --keep) one Parquet ledger (bench/synthetic_ledger.py), then,
each in a fresh process so its peak RSS (VmHWM) is its own:
  checker   read_ledger + analyse + judge (what bench/checker_bench.py calls ``ours``)
  finalize  harness.report.finalize.finalize: verdict.json, report.md, junit.xml, anomalies.json, over_time.csv,
            report.html and the charts, timed per stage (each stage's wall seconds, by wrapping the functions
            finalize and render_html call)
  checker-parts  the checker forced into partitions (split, one partition at a time, merge, judge once), at any
            size (``checker`` and ``finalize`` are partitioned by themselves from PARTITION_ROWS rows, as
            `harness check` is)
  duckdb    the five counts as one SQL query over the same file (bench/checker_bench.py's reference), with
            --duckdb-memory-limit (and a spill folder) when given
Every engine must report exactly the injected counts (the bench fails otherwise).
Run: .venv/bin/pip install duckdb && .venv/bin/python bench/finalize_bench.py [--sizes 1000000,10000000,100000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from checker_bench import DUCKDB, OURS, PEAK  # noqa: E402

FINALIZE = PEAK + r"""
import json, sys, time, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import harness.report.finalize, harness.report.html, harness.checker
fin = sys.modules["harness.report.finalize"]  # the package re-exports a function of the same name
html = sys.modules["harness.report.html"]
checker = sys.modules["harness.checker"]
stages = {}
peaks = {}

def timed(module, name, label=None):
    real = getattr(module, name)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            key = label or name
            stages[key] = stages.get(key, 0.0) + time.perf_counter() - start
            peaks[key] = round(peak_mb())  # the process's peak so far, when this stage ended
    setattr(module, name, wrapper)

for name in ("read_ledger", "analyse", "judge", "render_markdown", "render_junit", "render_html", "write_parquet",
             "gate"):
    timed(fin, name)
for name in ("forensics_for", "charts_for", "per_message_chart", "over_time_chart", "latency_cdf_chart",
             "per_cohort_chart", "run_marks", "message_points", "per_cohort"):
    timed(html, name)
for name in ("run_state", "index_damage", "expand_rooms", "analyse_delivery", "analyse_order", "classify_replayed",
             "check_health", "check_fault_schedule", "catch_up", "judge_rooms"):
    timed(checker, name, "analyse." + name)
for name in ("analyse_partitioned", "split_ledger", "read_partition", "analyse_part", "merge_parts", "analyse_merged",
             "rows_with_ids", "index_damage"):
    if hasattr(fin, name):
        timed(fin, name, "partitioned." + name)
start = time.perf_counter()
out = Path(tempfile.mkdtemp(prefix="finalize-bench-"))
doc = fin.finalize(Path(sys.argv[1]), out_dir=out)
done = time.perf_counter()
names = ("lost", "duplicated", "unexpected", "recovered", "reordered")
print(json.dumps({"seconds": done - start, "rss_mb": peak_mb(), "stages": stages, "peak_after_mb": peaks,
                  "files": sorted(p.name for p in out.iterdir()),
                  "counts": {k: doc["counts"][k] for k in names}}))
"""


def run(code: str, path: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code, str(path), str(ROOT)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode:
        raise SystemExit(done.stderr)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--folder", default=None, help="where the ledgers go (kept and reused when given)")
    parser.add_argument("--engines", default="checker,finalize,duckdb")
    parser.add_argument("--parts", type=int, default=4, help="partitions for the checker-parts engine")
    parser.add_argument("--duckdb-memory-limit", default=None, help="e.g. 6GB (DuckDB's default: 80 %% of RAM)")
    parser.add_argument("--duckdb-temp-directory", default=None, help="where DuckDB spills beyond its limit")
    args = parser.parse_args()
    from synthetic_ledger import make_ledger

    folder = Path(args.folder or tempfile.mkdtemp(prefix="finalize-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    engines = {"checker": OURS, "checker-parts": OURS, "finalize": FINALIZE, "duckdb": DUCKDB}
    envs = {"checker-parts": {"CHECK_PARTS": str(args.parts)}}
    if args.duckdb_memory_limit:
        envs["duckdb"] = {"DUCKDB_MEMORY_LIMIT": args.duckdb_memory_limit,
                          "DUCKDB_TEMP_DIRECTORY": args.duckdb_temp_directory or str(folder / "duckdb-spill")}
    for size in (int(s) for s in args.sizes.split(",")):
        path = folder / f"ledger-{size}.parquet"
        facts = folder / f"ledger-{size}.json"
        if args.folder and path.exists() and facts.exists():
            expected = json.loads(facts.read_text())
        else:
            expected = make_ledger(size, str(path))
            facts.write_text(json.dumps(expected))
        want = {k: expected[k] for k in ("lost", "duplicated", "unexpected", "recovered", "reordered")}
        for name in args.engines.split(","):
            load = os.getloadavg()[0]
            result = run(engines[name], path, envs.get(name))
            assert result["counts"] == want, (name, result["counts"], want)
            print(json.dumps({"events": expected["events"], "engine": name, "load_1m": round(load, 2),
                              **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()
                                 if k != "stages"},
                              "stages": {k: round(v, 3) for k, v in dict(result.get("stages") or {}).items()}}),
                  flush=True)


if __name__ == "__main__":
    main()
