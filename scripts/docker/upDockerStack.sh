#!/usr/bin/env bash
# The whole stack in Docker: builds the images, runs the trainer job into the `models` volume,
# starts the engine (healthy = SERVING), runs the producer and prints its report. The engine stays
# up afterwards: ./scripts/docker/downDockerStack.sh stops everything. Args go to `compose up`.
source "$(dirname "$0")/lib.sh"
require_docker
ensure_secrets
build_images trainer engine producer
compose up --detach "$@"
status="$(exit_code producer)"
compose logs --no-log-prefix producer
echo "== producer exited with status ${status:-unknown}; the engine keeps serving on port" \
  "${ENGINE_PUBLISHED_PORT:-9000} (./scripts/docker/downDockerStack.sh stops it)"
exit "${status:-1}"
