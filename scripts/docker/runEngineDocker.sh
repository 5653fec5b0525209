#!/usr/bin/env bash
# Starts the engine alone on the model already in the `models` volume and waits until it is
# SERVING (run ./scripts/docker/runTrainerDocker.sh first). Args go to `compose up`.
source "$(dirname "$0")/lib.sh"
require_docker
ensure_secrets
build_images engine
if ! compose up --detach --no-deps --wait "$@" engine; then
  compose logs --tail 20 engine >&2
  echo "error: the engine did not become healthy; if the log says 'run the trainer first'," \
    "the volume has no model: ./scripts/docker/runTrainerDocker.sh" >&2
  exit 1
fi
echo "engine SERVING on port ${ENGINE_PUBLISHED_PORT:-9000}"
