# Sourced by scripts/check and scripts/demo: makes sure .venv exists and holds
# the project with its dev extras, reinstalling only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo ">> creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.frequenz-dispatch-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo ">> installing frequenz-dispatch[dev] into $VENV"
  # This machine's pip config names local indexes that may not exist; pip
  # warns about each for every package. Those lines are noise; errors stay.
  "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 \
    | { grep -v "^WARNING: Location 'file://" || true; }
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]" 2>&1 \
    | { grep -v "^WARNING: Location 'file://" || true; }
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
