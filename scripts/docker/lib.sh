# Sourced by the Docker scripts: runs `docker compose` on our stack from the repo root.
#   COMPOSE_FILE   compose files, colon-separated as docker compose reads them (default
#                  docker/compose.yaml); layer another file over ours with
#                  COMPOSE_FILE=docker/compose.yaml:my-override.yaml
#   COMPOSE_ARGS   extra global compose arguments, e.g. "--env-file my.env"
#   COMPOSE_PROJECT_NAME  project name (default datasentinel): every container carries it as a label
#   TORCH_WHEEL    a local torch wheel for the trainer image (see torch_wheel below)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# A path the user gave is relative to where the user is, not to the repository.
if [ -n "${TORCH_WHEEL:-}" ]; then TORCH_WHEEL="$(realpath -m "$TORCH_WHEEL")"; fi
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

# torch for the trainer image. With a local wheel the build downloads no torch: TORCH_WHEEL names
# one (a torch-*-cp311-*.whl for Linux: the image runs Python 3.11), else the first torch CPU wheel
# in pip's find-links folders (`pip config list`, PIP_FIND_LINKS) is used. Without one, the image
# downloads torch's CPU build from PyTorch's index (TORCH_INDEX_URL in trainer.Dockerfile).
TORCH_CPU_WHEEL_GLOB="torch-2.13.0+cpu-cp311-*.whl"
WHEEL_STAGING="$REPO_ROOT/docker/wheels"

# torch_wheel: prints the local torch wheel to build the trainer with, or nothing.
torch_wheel() {
  if [ -n "${TORCH_WHEEL:-}" ]; then
    case "$(basename "$TORCH_WHEEL")" in
      torch-*-cp311-*linux*.whl) ;;
      *) echo "error: TORCH_WHEEL=$TORCH_WHEEL is not a torch wheel for Python 3.11 on Linux" \
        "(torch-VERSION-cp311-cp311-manylinux_*.whl), which the trainer image needs" >&2; return 1 ;;
    esac
    [ -f "$TORCH_WHEEL" ] || { echo "error: TORCH_WHEEL=$TORCH_WHEEL: no such file" >&2; return 1; }
    echo "$TORCH_WHEEL"
    return 0
  fi
  local folder wheel
  for folder in $(pip_find_links); do
    # shellcheck disable=SC2086  # the glob is meant to expand
    wheel="$(ls "$folder"/$TORCH_CPU_WHEEL_GLOB 2>/dev/null | head -1 || true)"
    if [ -n "$wheel" ]; then
      echo "$wheel"
      return 0
    fi
  done
}

# pip_find_links: the local folders pip is configured to find wheels in, one per line.
pip_find_links() {
  local pip
  for pip in pip3 pip "python3 -m pip"; do
    # shellcheck disable=SC2086  # "python3 -m pip" is three words
    if command -v "${pip%% *}" >/dev/null && $pip config list >/dev/null 2>&1; then
      $pip config list 2>/dev/null | sed -n "s/.*find-links='\(.*\)'/\1/p" | tr ' ' '\n' \
        | sed -n 's|^file://||; /^\//p' | sort -u
      return 0
    fi
  done
}

# build_images SERVICE...: builds these images. The trainer goes first and alone, with the local
# torch wheel (if any) linked into docker/wheels for its build only: a trap removes it however the
# build ends, so the wheel (about 190 MB) is never sent in the engine's or producer's build context.
build_images() {
  local service others=()
  for service in "$@"; do
    if [ "$service" = trainer ]; then build_trainer; else others+=("$service"); fi
  done
  if [ "${#others[@]}" -gt 0 ]; then
    compose build "${others[@]}"
  fi
}

build_trainer() {
  local wheel
  wheel="$(torch_wheel)" || exit 1
  warn_stray_wheels
  if [ -z "$wheel" ]; then
    echo "torch: no local wheel (set TORCH_WHEEL=/path/to/torch-*.whl to use one); the trainer" \
      "image downloads torch's CPU build from download.pytorch.org" >&2
    compose build trainer
    return
  fi
  echo "torch: from the local wheel $wheel" >&2
  (
    staged="$WHEEL_STAGING/$(basename "$wheel")"
    if [ "$(realpath "$wheel")" != "$(realpath -m "$staged")" ]; then
      trap 'rm -f "$staged"' EXIT
      ln -f "$wheel" "$staged" 2>/dev/null || cp -f "$wheel" "$staged"
    fi
    compose build trainer
  )
}

# warn_stray_wheels: a wheel left in docker/wheels by hand goes into every image's build context.
warn_stray_wheels() {
  local stray
  stray="$(ls "$WHEEL_STAGING"/*.whl 2>/dev/null || true)"
  if [ -n "$stray" ]; then
    echo "warning: $(echo "$stray" | tr '\n' ' ')is in docker/wheels, so every image's build" \
      "context carries it: move it out and set TORCH_WHEEL=/its/new/path" >&2
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
