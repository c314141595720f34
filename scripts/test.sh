#!/usr/bin/env bash
# Set up, then run the test suite. `--slow` adds the soak/load tests (marked slow).
# The suite runs on two pytest workers (pytest-xdist): its integration tests mostly wait on scenario clocks
# (load average ~0.7 when run one at a time), so two at once halve the wall time on 2 cores. Tests sharing
# one expensive module fixture stay on one worker (xdist_group). HARNESS_TEST_WORKERS=0 runs serially.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
args=()
for a in "$@"; do
  if [ "$a" = "--slow" ]; then args+=(-m ""); else args+=("$a"); fi
done
workers="${HARNESS_TEST_WORKERS:-2}"
parallel=()
if [ "$workers" != "0" ]; then parallel=(-n "$workers" --dist loadgroup); fi
exec .venv/bin/python -m pytest "${parallel[@]}" "${args[@]}"
