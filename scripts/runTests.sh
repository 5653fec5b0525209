#!/usr/bin/env bash
# Sets up everything (all extras + test tools) and runs the whole test suite; pytest args pass on.
source "$(dirname "$0")/lib/setup.sh"
ensure_venv dev
cd "$REPO_ROOT" # the suite and its settings live there: test paths are given from the repo root
exec python -m pytest "$@"
