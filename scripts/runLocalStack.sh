#!/usr/bin/env bash
# The whole stack on this machine: set up, train on the built-in data if no model exists, start the
# engine, wait until it is SERVING, stream the producer's vectors, stop the engine cleanly.
# Env: MODELS_DIR (models/), ENGINE_PORT (9000); producer flags pass through ("$@").
source "$(dirname "$0")/lib/setup.sh"
ensure_venv trainer,engine,producer

export MODELS_DIR="${MODELS_DIR:-$REPO_ROOT/models}"
export ENGINE_PORT="${ENGINE_PORT:-9000}"
export ENGINE_HOST="${ENGINE_HOST:-localhost}"

if [ ! -f "$MODELS_DIR/config.json" ] || [ ! -f "$MODELS_DIR/model.onnx" ]; then
  echo "== no model in $MODELS_DIR: training on the built-in synthetic data"
  python -m trainer --models-dir "$MODELS_DIR"
else
  echo "== using the model in $MODELS_DIR (delete it to retrain)"
fi

echo "== starting the engine on port $ENGINE_PORT"
python -m engine --models-dir "$MODELS_DIR" --port "$ENGINE_PORT" &
engine_pid=$!
stop_engine() {
  if kill -0 "$engine_pid" 2>/dev/null; then
    kill -TERM "$engine_pid"
    wait "$engine_pid" || true
  fi
}
trap stop_engine EXIT

echo "== streaming to the engine"
status=0
python -m producer --engine-host "$ENGINE_HOST" --engine-port "$ENGINE_PORT" "$@" || status=$?
if ! kill -0 "$engine_pid" 2>/dev/null; then
  wait "$engine_pid" || echo "error: the engine exited early (see its log above)" >&2
  exit $(( status ? status : 1 ))
fi
echo "== stopping the engine"
kill -TERM "$engine_pid"
engine_status=0
wait "$engine_pid" || engine_status=$?
trap - EXIT
if [ "$engine_status" -ne 0 ]; then
  echo "error: the engine exited with status $engine_status" >&2
  exit "$engine_status"
fi
exit "$status"
