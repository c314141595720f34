#!/usr/bin/env bash
# Fast static checks (the same ones the suite runs): ruff and mypy strict. Run before every commit.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check harness targets tests bench examples
.venv/bin/mypy harness targets
