#!/usr/bin/env bash
# Sets up the engine's environment (no torch) and checks that it imports.
source "$(dirname "$0")/lib/setup.sh"
ensure_venv engine
python -c "import engine.server, onnxruntime as ort; print('engine ready; onnxruntime', ort.__version__, 'providers:', ', '.join(ort.get_available_providers()))"
