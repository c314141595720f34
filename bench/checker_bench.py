"""Checker speed on synthetic ledgers with known anomalies, against a DuckDB SQL reference, in one run.

For each size (default 1M and 10M events) the script writes one Parquet ledger (bench/synthetic_ledger.py),
then, each in a fresh process so peak RSS is its own:
  ours    harness's full checker: read Parquet + every category, ordering, latency quantiles, catch-up
  duckdb  the same lost / duplicated / unexpected / recovered / reordered counts as SQL over the Parquet
Both must report exactly the injected counts (the bench fails otherwise).
Run: .venv/bin/pip install duckdb && .venv/bin/python bench/checker_bench.py [--sizes 1000000,10000000]
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

PEAK = r"""
def peak_mb():
    # VmHWM is this process's own peak (ru_maxrss can carry the parent's peak across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

OURS = PEAK + r"""
import json, math, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
NAMES = ("lost", "duplicated", "unexpected", "recovered", "reordered")
from harness.checker import CheckOptions, analyse, judge
from harness.ledger.format import read_ledger
from harness.ledger.partition import parquet_rows
from harness.report.finalize import PART_ROWS, PARTITION_ROWS, analyse_partitioned
imported = time.perf_counter()
options = CheckOptions()
rows = parquet_rows(Path(sys.argv[1])) or 0
forced = os.environ.get("CHECK_PARTS")  # as `harness check`: partitions from PARTITION_ROWS rows, or when forced
if forced or rows >= PARTITION_ROWS:
    parts = int(forced) if forced else math.ceil(rows / PART_ROWS)
    analysis, _ = analyse_partitioned(Path(sys.argv[1]), options, parts, Path(tempfile.mkdtemp(prefix="parts-")))
    read = imported
else:
    parts = 0
    load = read_ledger(sys.argv[1])
    read = time.perf_counter()
    analysis = analyse(load.frame, options)
verdict = judge(analysis, options)
done = time.perf_counter()
print(json.dumps({"seconds": done - imported, "read_s": read - imported, "check_s": done - read,
                  "rss_mb": peak_mb(), "parts": parts,
                  "counts": {k: verdict.counts[k] for k in NAMES}}))
"""

DUCKDB = PEAK + r"""
import json, os, sys, time
import duckdb
start = time.perf_counter()
con = duckdb.connect()
con.execute("SET threads TO 2")
# a memory limit (and where to spill beyond it) when the bench is given one: DuckDB's default is 80 % of RAM
if os.environ.get("DUCKDB_MEMORY_LIMIT"):
    con.execute(f"SET memory_limit = '{os.environ['DUCKDB_MEMORY_LIMIT']}'")
    con.execute(f"SET temp_directory = '{os.environ.get('DUCKDB_TEMP_DIRECTORY', '/tmp/duckdb-spill')}'")
path = sys.argv[1]
row = con.execute(f'''
WITH l AS (SELECT * FROM read_parquet('{path}')),
inv AS (SELECT msg_id, any_value(sender) s, any_value(recipient) r, any_value(seq) seq, count(*) attempts
        FROM l WHERE f = 'send' AND type = 'invoke' GROUP BY msg_id),
outc AS (SELECT msg_id, min(CASE type WHEN 'ok' THEN 0 WHEN 'fail' THEN 1 ELSE 2 END) rank
         FROM l WHERE f = 'send' AND type IN ('ok', 'fail', 'info') GROUP BY msg_id),
rec AS (SELECT l.msg_id, l.recipient, l.node, l."index", inv.s, inv.seq,
               (inv.msg_id IS NOT NULL AND l.recipient = inv.r) good
        FROM l LEFT JOIN inv USING (msg_id) WHERE l.f = 'recv' AND l.type = 'ok'),
per AS (SELECT msg_id, count(*) receipts FROM rec WHERE good GROUP BY msg_id),
msgs AS (SELECT inv.msg_id, inv.attempts, coalesce(outc.rank, 3) rank, coalesce(per.receipts, 0) receipts
         FROM inv LEFT JOIN outc USING (msg_id) LEFT JOIN per USING (msg_id)),
firsts AS (SELECT s, recipient, seq, node, "index" FROM
           (SELECT *, row_number() OVER (PARTITION BY msg_id ORDER BY node, "index") rn FROM rec WHERE good)
           WHERE rn = 1),
ordered AS (SELECT seq, max(seq) OVER (PARTITION BY s, recipient ORDER BY node, "index"
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) prev FROM firsts)
SELECT
  (SELECT count(*) FROM msgs WHERE rank = 0 AND receipts = 0),
  (SELECT coalesce(sum(greatest(receipts - attempts, 0)), 0) FROM msgs),
  (SELECT count(*) FROM rec WHERE NOT good),
  (SELECT count(*) FROM msgs WHERE rank >= 2 AND receipts > 0),
  (SELECT count(*) FROM ordered WHERE seq < prev)
''').fetchone()
done = time.perf_counter()
names = ("lost", "duplicated", "unexpected", "recovered", "reordered")
print(json.dumps({"seconds": done - start, "rss_mb": peak_mb(),
                  "memory_limit": con.execute("SELECT current_setting('memory_limit')").fetchone()[0],
                  "counts": dict(zip(names, map(int, row)))}))
"""


def run(code: str, path: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code, str(path), str(ROOT)], capture_output=True, text=True,
                          check=True, env={**os.environ, **(env or {})})
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,10000000")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic_ledger import make_ledger

    folder = Path(tempfile.mkdtemp(prefix="checker-bench-"))
    print(f"{'events':>10} {'engine':<7} {'wall s':>7} {'read s':>7} {'check s':>8} {'peak MB':>8} "
          f"{'vs duckdb':>9}  counts")
    for size in (int(s) for s in args.sizes.split(",")):
        path = folder / f"ledger-{size}.parquet"
        expected = make_ledger(size, str(path))
        want = {k: expected[k] for k in ("lost", "duplicated", "unexpected", "recovered", "reordered")}
        ours, ref = run(OURS, path), run(DUCKDB, path)
        for name, result in (("ours", ours), ("duckdb", ref)):
            assert result["counts"] == want, (name, result["counts"], want)
        ratio = float(ours["seconds"]) / float(ref["seconds"])  # type: ignore[arg-type]
        for name, r in (("ours", ours), ("duckdb", ref)):
            print(f"{expected['events']:>10} {name:<7} {r['seconds']:>7.2f} {r.get('read_s', float('nan')):>7.2f} "
                  f"{r.get('check_s', float('nan')):>8.2f} {r['rss_mb']:>8.0f} "
                  f"{ratio if name == 'ours' else 1.0:>9.2f}  {r['counts']}")


if __name__ == "__main__":
    main()
