#!/usr/bin/env bash
# Serves the model in $MODELS_DIR or --models-dir (default: the repository's models/) on
# $ENGINE_PORT (default 9000). Relative paths are from the current folder.
# Flags: python -m datasentinel.engine --help.
source "$(dirname "$0")/lib/setup.sh"
ensure_venv engine
if [ -z "${MODELS_DIR:-}${ENGINE_MODELS_DIR:-}" ]; then
  export MODELS_DIR="$REPO_ROOT/models"
fi
exec python -m datasentinel.engine "$@"
