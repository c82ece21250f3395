# Sourced by scripts/check and scripts/demo: makes sure .venv exists and holds
# the project with its dev extras, reinstalling only when pyproject.toml changed.
# pip's own output (progress, build-backend warnings such as setuptools'
# "Editable installation" notice) goes to a log file; it is shown only if pip
# fails, so the scripts print the project's progress and results only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

# ensure_venv DIR LABEL PIP_INSTALL_ARGS...: create DIR if needed and run
# `pip install PIP_INSTALL_ARGS` in it when pyproject.toml changed since the last
# successful install there.
ensure_venv() {
  local dir="$1" label="$2"; shift 2
  local stamp="$dir/.frequenz-dispatch-installed" log="$dir/pip.log"
  local want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  if [ ! -x "$dir/bin/python" ]; then
    echo ">> creating virtual environment in $dir"
    "$PYTHON" -m venv "$dir"
  fi
  echo ">> installing $label into $dir"
  if ! { "$dir/bin/python" -m pip install --disable-pip-version-check --upgrade pip \
         && "$dir/bin/python" -m pip install --disable-pip-version-check "$@"; } \
       >"$log" 2>&1; then
    echo "!! pip failed; its log ($log):" >&2
    cat "$log" >&2
    return 1
  fi
  echo "$want" > "$stamp"
}

ensure_venv "$VENV" "frequenz-dispatch[dev]" -e "$ROOT[dev]"
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
