#!/usr/bin/env bash
# Trains the autoencoder and writes models/model.onnx + models/config.json (and plots).
# Flags: python -m trainer --help (e.g. --data F.csv --label-column label --models-dir DIR).
source "$(dirname "$0")/lib/setup.sh"
ensure_venv trainer
exec python -m trainer "$@"
