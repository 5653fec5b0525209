#!/usr/bin/env bash
# The whole stack on this machine: set up, train on the built-in data if no model exists, start the
# engine, wait until it is SERVING, stream the producer's vectors, stop the engine cleanly.
# Env: MODELS_DIR (the repository's models/), ENGINE_PORT (default: a free port, so the producer
# can only reach the engine started here), ENGINE_METRICS_PORT (default: a free port),
# ENGINE_START_TIMEOUT (seconds, 300); producer flags pass through ("$@"). Relative paths are from
# the current folder.
source "$(dirname "$0")/lib/setup.sh"
ensure_venv trainer,engine,producer

export MODELS_DIR="${MODELS_DIR:-$REPO_ROOT/models}"
export ENGINE_METRICS_PORT="${ENGINE_METRICS_PORT:-0}"
engine_port="${ENGINE_PORT:-0}"
start_timeout="${ENGINE_START_TIMEOUT:-300}"
# The producer connects where the engine was started, never to a name that might lead elsewhere.
engine_host="${ENGINE_HOST:-127.0.0.1}"

if [ ! -f "$MODELS_DIR/config.json" ] || [ ! -f "$MODELS_DIR/model.onnx" ]; then
  echo "== no model in $MODELS_DIR: training on the built-in synthetic data"
  python -m datasentinel.trainer --models-dir "$MODELS_DIR"
else
  echo "== using the model in $MODELS_DIR (delete it to retrain)"
fi

work="$(mktemp -d)"
port_file="$work/engine.port"
engine_pid=""
stop_engine() {
  if [ -n "$engine_pid" ] && kill -0 "$engine_pid" 2>/dev/null; then
    kill -TERM "$engine_pid"
    wait "$engine_pid" || true
  fi
  rm -rf "$work"
}
trap stop_engine EXIT

if [ "$engine_port" = 0 ]; then
  echo "== starting the engine on a free port"
else
  echo "== starting the engine on port $engine_port"
fi
python -m datasentinel.engine --models-dir "$MODELS_DIR" --port "$engine_port" --port-file "$port_file" &
engine_pid=$!

# The engine writes the port file once it is SERVING. Until then, watch that it is still alive:
# an engine that cannot start (busy port, bad model) ends the script at once, before any vector
# is sent anywhere.
deadline=$(( SECONDS + start_timeout ))
until [ -s "$port_file" ]; do
  if ! kill -0 "$engine_pid" 2>/dev/null; then
    engine_status=0
    wait "$engine_pid" || engine_status=$?
    engine_pid=""
    echo "error: the engine did not start (exit status $engine_status; its log is above);" \
      "nothing was streamed" >&2
    exit $(( engine_status ? engine_status : 1 ))
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "error: the engine was not SERVING after $start_timeout s (ENGINE_START_TIMEOUT);" \
      "nothing was streamed" >&2
    exit 1
  fi
  sleep 0.1
done
engine_port="$(cat "$port_file")"

echo "== streaming to the engine at $engine_host:$engine_port"
status=0
python -m datasentinel.producer --engine-host "$engine_host" --engine-port "$engine_port" "$@" || status=$?
if ! kill -0 "$engine_pid" 2>/dev/null; then
  wait "$engine_pid" || echo "error: the engine exited early (see its log above)" >&2
  engine_pid=""
  exit $(( status ? status : 1 ))
fi
echo "== stopping the engine"
kill -TERM "$engine_pid"
engine_status=0
wait "$engine_pid" || engine_status=$?
engine_pid=""
if [ "$engine_status" -ne 0 ]; then
  echo "error: the engine exited with status $engine_status" >&2
  exit "$engine_status"
fi
exit "$status"
