# Sourced by the scripts: finds the repo, and sets up its virtualenv once for what they need.
# Env: DATASENTINEL_VENV (default <repo>/.venv), PYTHON (default python3.11, else python3).
# The scripts stay in the caller's folder, so relative paths in flags and env vars mean what the
# user typed; the packages import from anywhere (editable install).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${DATASENTINEL_VENV:-$REPO_ROOT/.venv}"
# What the venv holds: line 1 the digest of pyproject.toml + constraints, then one extra a line
# (implied extras included: "dev" brings the three services).
SETUP_STAMP="$VENV/.datasentinel-setup"

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

setup_digest() {
  cat "$REPO_ROOT/pyproject.toml" "$REPO_ROOT/scripts/constraints.txt" | sha256sum | cut -c1-16
}

# Succeeds when the stamp says the venv holds every extra in the comma list $1 for digest $2.
venv_has() {
  local extra
  [ -f "$SETUP_STAMP" ] && [ "$(head -n 1 "$SETUP_STAMP")" = "$2" ] || return 1
  for extra in ${1//,/ }; do
    tail -n +2 "$SETUP_STAMP" | grep -qxF "$extra" || return 1
  done
}

# ensure_venv EXTRAS: e.g. ensure_venv "engine" or ensure_venv "trainer,engine,producer".
# Runs pip only when the venv lacks one of EXTRAS, or pyproject.toml or the constraints changed
# since it was set up (then it reinstalls what it had too).
ensure_venv() {
  local extras="$1" digest python wanted install=yes
  if [ ! -x "$VENV/bin/python" ]; then
    python="$(find_python)"
    echo "setting up $VENV ($("$python" --version))" >&2
    "$python" -m venv "$VENV"
  fi
  digest="$(setup_digest)"
  if ! venv_has "$extras" "$digest"; then
    wanted="$extras"
    if [ -f "$SETUP_STAMP" ]; then
      wanted="$(tail -n +2 "$SETUP_STAMP" | paste -sd, -),$extras"
    elif [ -f "$VENV/.datasentinel-dev-$digest" ]; then
      wanted="dev,$extras" # set up for everything by an older version of this file
      install=no
    fi
    wanted="$(printf '%s\n' ${wanted//,/ } | sort -u | paste -sd, -)"
    if [ "$install" = yes ]; then
      echo "installing datasentinel[$wanted] into $VENV (once)" >&2
      "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$REPO_ROOT/scripts/constraints.txt" -e "$REPO_ROOT[$wanted]" >&2
    fi
    {
      echo "$digest"
      "$VENV/bin/python" "$REPO_ROOT/scripts/lib/extras.py" "$REPO_ROOT/pyproject.toml" "$wanted"
    } >"$SETUP_STAMP.tmp"
    mv "$SETUP_STAMP.tmp" "$SETUP_STAMP"
  fi
  export PATH="$VENV/bin:$PATH"
}
