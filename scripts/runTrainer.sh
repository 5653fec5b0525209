#!/usr/bin/env bash
# Trains the autoencoder and writes model.onnx + config.json (and plots) into $MODELS_DIR or
# --models-dir (default: the repository's models/). Relative paths are from the current folder.
# Flags: python -m datasentinel.trainer --help (e.g. --data F.csv --label-column label --models-dir DIR).
source "$(dirname "$0")/lib/setup.sh"
ensure_venv trainer
export MODELS_DIR="${MODELS_DIR:-$REPO_ROOT/models}"
exec python -m datasentinel.trainer "$@"
