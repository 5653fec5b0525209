#!/usr/bin/env bash
# Serves the model in $MODELS_DIR (default models/) on $ENGINE_PORT (default 9000).
# Flags: python -m engine --help.
source "$(dirname "$0")/lib/setup.sh"
ensure_venv engine
exec python -m engine "$@"
