#!/usr/bin/env bash
# Set up, then run the main job: the heartbeat-timeout story against the naive and the ack-map target.
# Exit 0 when both verdicts are what the scenario expects (naive loses messages, ackmap loses none).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/harness run scenarios/heartbeat-timeout.toml --expect "$@"
