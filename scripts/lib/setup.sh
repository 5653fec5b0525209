# Sourced by the scripts: finds the repo, and sets up its virtualenv once per set of extras.
# Env: DATASENTINEL_VENV (default <repo>/.venv), PYTHON (default python3.11, else python3).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${DATASENTINEL_VENV:-$REPO_ROOT/.venv}"

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

# ensure_venv EXTRAS: e.g. ensure_venv "engine" or ensure_venv "trainer,engine,producer".
# Reinstalls only when pyproject.toml or the constraints change.
ensure_venv() {
  local extras="$1" stamp digest python
  if [ ! -x "$VENV/bin/python" ]; then
    python="$(find_python)"
    echo "setting up $VENV ($("$python" --version))" >&2
    "$python" -m venv "$VENV"
  fi
  digest="$(cat "$REPO_ROOT/pyproject.toml" "$REPO_ROOT/scripts/constraints.txt" | sha256sum | cut -c1-16)"
  stamp="$VENV/.datasentinel-${extras//,/-}-$digest"
  if [ ! -f "$stamp" ]; then
    echo "installing datasentinel[$extras] into $VENV (once)" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -c "$REPO_ROOT/scripts/constraints.txt" -e "$REPO_ROOT[$extras]" >&2
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
  cd "$REPO_ROOT"
}
