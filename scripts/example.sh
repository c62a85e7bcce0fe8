#!/usr/bin/env bash
# Runs the example workflow end to end on the embedded SQLite store, in ./work-example,
# then shows its status and statistics. Installs herd into .venv first.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
rm -rf work-example && mkdir -p work-example
herd validate examples/quickstart.yaml
herd run examples/quickstart.yaml -C work-example --cpu-limit 2
echo; echo "== run it again: everything is up to date"
herd run examples/quickstart.yaml -C work-example --cpu-limit 2
echo; herd status -C work-example
