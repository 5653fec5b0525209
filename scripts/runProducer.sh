#!/usr/bin/env bash
# Streams vectors (synthetic by default, or --csv FILE) to the engine at $ENGINE_HOST:$ENGINE_PORT.
# Relative paths (--csv, --output, ...) are from the current folder. Flags: python -m datasentinel.producer --help.
source "$(dirname "$0")/lib/setup.sh"
ensure_venv producer
exec python -m datasentinel.producer "$@"
