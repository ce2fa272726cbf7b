#!/usr/bin/env bash
# Set up a virtualenv with the test extras and run every check CI runs:
# import-layer contracts, ruff, mypy (strict on ir/, engine/, analysis/ and api) and the test suite,
# including the live tests against a real API server.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,live]'
# The browser tests drive the distribution's headless Chromium through its chromedriver.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium and chromium-driver (browser tests)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } \
      >/tmp/kubezt-apt.log 2>&1 || echo "could not install chromium (see /tmp/kubezt-apt.log)"
  fi
fi
# The live tests run against a real kube-apiserver and etcd, built from source with Go once
# and cached (scripts/testenv.sh); without Go they are skipped, with one line saying so.
if command -v go >/dev/null 2>&1; then
  echo "== test API server (kube-apiserver, etcd)"
  binaries="$(bash scripts/testenv.sh)"
  while IFS='=' read -r name value; do
    export "$name=$value"
  done <<<"$binaries"
fi
echo "== import layers"
.venv/bin/lint-imports
echo "== ruff"
.venv/bin/ruff check src tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== tests"
.venv/bin/python -m pytest "$@"
