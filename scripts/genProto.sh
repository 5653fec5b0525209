#!/usr/bin/env bash
# Regenerates the Python gRPC code from proto/datasentinel/v1/*.proto (commit the result).
source "$(dirname "$0")/lib/setup.sh"
ensure_venv dev
exec python "$REPO_ROOT/proto/codegen.py" "$@"
