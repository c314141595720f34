#!/usr/bin/env bash
# Regenerate the committed design comparison (reports/comparison/) and the README's table from it:
# every scenario on every target it applies to. About 95 minutes on 2 cores (the soak alone is
# 6 x 10 minutes). Usage: bash scripts/matrix.sh [OUT_DIR]   (default reports/comparison)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out="${1:-reports/comparison}"
py=.venv/bin/python
network="beyond-window,blip,flapping,half-open,heartbeat-timeout,latency-jitter,reconnect-storm"
network="$network,rolling-deploy,sender-loss,server-restart,slow-consumer"
$py -m harness matrix --scenarios "$network" --targets all --out "$out"
$py -m harness matrix --scenarios store-crash,store-crash-aof --out "$out"   # the targets with a store
$py -m harness matrix --scenarios soak --targets all --out "$out"
$py -m harness matrix --scenarios crowd-outage,crowd-storm,flash-crowd,saturation --targets all --out "$out"   # at load
$py -m harness matrix --scenarios room-flapping,room-churn,room-slow-member,room-rolling-deploy --out "$out"   # rooms: their targets
$py -m harness matrix --from-saved --targets all --out "$out"                # one matrix.md over all
if [ "$out" = "reports/comparison" ]; then $py scripts/readme_table.py; fi
