# Sourced by the Docker scripts: runs `docker compose` on our stack from the repo root.
#   COMPOSE_FILE   compose files, colon-separated as docker compose reads them (default
#                  docker/compose.yaml); layer another file over ours with
#                  COMPOSE_FILE=docker/compose.yaml:my-override.yaml
#   COMPOSE_ARGS   extra global compose arguments, e.g. "--env-file my.env"
#   COMPOSE_PROJECT_NAME  project name (default datasentinel): every container carries it as a label
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
export COMPOSE_FILE="${COMPOSE_FILE:-docker/compose.yaml}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-datasentinel}"

compose() {
  # shellcheck disable=SC2086  # COMPOSE_ARGS is a list of words on purpose
  docker compose ${COMPOSE_ARGS:-} "$@"
}

require_docker() {
  if ! docker info >/dev/null 2>&1; then
    echo "error: no Docker daemon reachable (DOCKER_HOST=${DOCKER_HOST:-unset}); start Docker," \
      "or on a machine without one: eval \"\$(../shared/tools/docker-host.sh up)\"" >&2
    exit 1
  fi
}

# ensure_secrets: the TLS certificates and token the stack runs with (made once, kept after).
ensure_secrets() {
  "$REPO_ROOT/scripts/docker/makeSecrets.sh" >&2
}

# exit_code SERVICE: waits for a one-off service's container to stop, prints its exit code
# (read from the container: `compose wait` output differs between Compose versions).
exit_code() {
  compose wait "$1" >/dev/null 2>&1 || true
  docker inspect --format '{{.State.ExitCode}}' "$(compose ps --all --quiet "$1")"
}
