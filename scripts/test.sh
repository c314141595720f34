#!/usr/bin/env bash
# Set up, then run the test suite. `--slow` adds the soak/load tests (marked slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
args=()
for a in "$@"; do
  if [ "$a" = "--slow" ]; then args+=(-m ""); else args+=("$a"); fi
done
exec .venv/bin/python -m pytest "${args[@]}"
