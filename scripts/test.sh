#!/usr/bin/env bash
# Set up a virtualenv with the test extras and run every check CI runs:
# import-layer contracts, ruff, mypy (strict on ir/, engine/, analysis/ and api) and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
echo "== import layers"
.venv/bin/lint-imports
echo "== ruff"
.venv/bin/ruff check src tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== tests"
.venv/bin/python -m pytest "$@"
