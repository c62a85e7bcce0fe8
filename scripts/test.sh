#!/usr/bin/env bash
# The whole test suite: lint, types, then unit, integration and acceptance tests.
# Installs what it needs into .venv first. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" test
cd "$ROOT"
echo "== slurm"; eval "$(bash scripts/slurm.sh up)"  # the Slurm tests run for real
echo "== chromium"; bash scripts/chromium.sh >/dev/null  # the dashboard's browser tests run for real
echo "== ruff"; ruff check src tests bench examples
echo "== ruff format"; ruff format --check src tests bench examples
echo "== mypy"; mypy
echo "== pytest"
# one test process per core, at most 4 (pytest-xdist): most tests wait on the processes they
# start. The files tests/conftest.py names in ONE_PROCESS keep their tests in one process.
exec pytest -q -n auto --maxprocesses 4 --durations 15 "$@"
