#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian 12 machine: system packages, the venv and the Python deps.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: redis-server (the store target and its faults), chromium (browser tests of the reports
# and of Locust's web UI; headless, never downloaded at run time).
APT_PACKAGES=(redis-server chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python virtual environment with the project installed in editable mode.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python dependencies (about a minute on a fresh machine)"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -c "import harness, locust, socketio, pandas" # fail loudly if the install did not work
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# npm packages of the Node target (a real socket.io server), pinned by its package-lock.json.
if [ ! -d targets/node_csr/node_modules/socket.io ]; then
  echo "setup: installing the Node target's npm packages"
  (cd targets/node_csr && npm ci --no-audit --no-fund --silent)
fi
echo "setup: ready"
