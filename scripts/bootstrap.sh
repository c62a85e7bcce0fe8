# Sourced by the other scripts: a virtual environment in .venv with herd and the given extras.
# Installs only when pyproject.toml changed since the last install, so re-runs start at once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
fi
STAMP="$VENV/.herd-installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
# Compiled bytecode kept in the venv: every herd subprocess of the tests (thousands) would
# otherwise compile herd's modules anew when the environment sets PYTHONDONTWRITEBYTECODE.
export PYTHONPYCACHEPREFIX="$VENV/pycache"
unset PYTHONDONTWRITEBYTECODE
