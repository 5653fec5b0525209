#!/usr/bin/env bash
# Builds and runs the Compose stack for real: static checks (compose config, hadolint), build
# (a local torch wheel in the trainer's build context only), `docker compose run --rm producer`:
# trainer job, engine healthy (TLS health check), producer exits 0 with every vector answered
# over TLS with a token made for this run, plain text / no token / no metrics token refused,
# engine not root.
# Always removes its containers and volume. Skips (exit 0) where no Docker daemon can be had.
# Env: SMOKE_ENGINE_PORT (19000), SMOKE_COUNT (2000), HADOLINT (path to hadolint).
source "$(dirname "$0")/lib.sh"
if ! docker info >/dev/null 2>&1; then
  echo "SKIP docker smoke test: no Docker daemon reachable (DOCKER_HOST=${DOCKER_HOST:-unset})"
  exit 0
fi
started=$SECONDS
export COMPOSE_PROJECT_NAME="${SMOKE_PROJECT:-datasentinel-smoke}"
export ENGINE_PORT="${SMOKE_ENGINE_PORT:-19000}" ENGINE_PUBLISHED_PORT="${SMOKE_ENGINE_PORT:-19000}"
export ENGINE_METRICS_PORT=$((ENGINE_PORT + 1)) ENGINE_METRICS_PUBLISHED_PORT=$((ENGINE_PORT + 1))
export PRODUCER_COUNT="${SMOKE_COUNT:-2000}" PRODUCER_SHOW=none TRAINER_SYNTHETIC_ROWS=8000

# TLS certificates and a token for this run only, outside the repository.
secrets_parent="$(mktemp -d)"
export DATASENTINEL_SECRETS_DIR="$secrets_parent/secrets"

cleanup() {
  compose down --volumes --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$secrets_parent"
}
trap cleanup EXIT

step() { echo "== $* ($((SECONDS - started)) s)"; }

step "static checks, secrets for this run"
scripts/docker/makeSecrets.sh
compose config --quiet
hadolint="${HADOLINT:-$(command -v hadolint || true)}"
if [ -n "$hadolint" ]; then
  "$hadolint" --failure-threshold error docker/*.Dockerfile
else
  echo "hadolint not found: Dockerfile lint skipped (set HADOLINT=/path/to/hadolint)"
fi

step "build (torch from a local wheel when one is found, as the other scripts do)"
# (The classic builder's progress is one line of \r-separated counts: keep its last count.)
build_images trainer 2>&1 | sed 's/.*Sending build context/Sending build context/'
# The wheel went into the trainer's build context only: the others' stay small.
build_log="$(mktemp)"
build_images engine producer 2>&1 | tee "$build_log"
context_mb="$(sed -n 's/.*Sending build context to Docker daemon *\([0-9.]*\)\([kMG]\)B.*/\1 \2/p' "$build_log" \
  | awk '{mb = $1 * ($2 == "G" ? 1024 : ($2 == "M" ? 1 : 1 / 1024)); if (mb > max) max = mb} END {print max + 0}')"
if grep -q "Sending build context" "$build_log"; then
  echo "largest engine/producer build context: $context_mb MB"
  awk -v mb="$context_mb" 'BEGIN {exit !(mb < 50)}' \
    || { echo "FAIL: an engine/producer build context is $context_mb MB (a wheel in it?)" >&2; exit 1; }
else
  echo "this builder does not report build context sizes: context check skipped"
fi
rm -f "$build_log"

step "run: trainer job, engine, producer, as the README gives it: docker compose run --rm producer"
status=0
report="$(compose run --rm producer 2>&1)" || status=$?
echo "$report" | tail -12
if [ "${status:-1}" != 0 ] || ! grep -q "every vector answered" <<<"$report"; then
  compose logs --tail 30 trainer engine >&2
  echo "FAIL: producer exited with status ${status:-unknown}" >&2
  exit 1
fi
grep -q "answered     $PRODUCER_COUNT " <<<"$report" || { echo "FAIL: not all $PRODUCER_COUNT answered" >&2; exit 1; }

step "engine metrics count every vector (with the token; refused without)"
metrics_url="http://127.0.0.1:$ENGINE_METRICS_PUBLISHED_PORT/metrics"
refused="$(curl -s -o /dev/null -w '%{http_code}' "$metrics_url" || true)"
[ "$refused" = 401 ] || { echo "FAIL: metrics without a token got HTTP $refused, not 401" >&2; exit 1; }
scored="$(curl -sf -H "Authorization: Bearer $(cat "$DATASENTINEL_SECRETS_DIR/token")" "$metrics_url" \
  | sed -n 's/^datasentinel_rows_scored_total \([0-9.e+]*\)$/\1/p')"
echo "datasentinel_rows_scored_total $scored (producer sent $PRODUCER_COUNT, plus warm-ups)"
python3 -c "import sys; sys.exit(float('${scored:-0}') < $PRODUCER_COUNT)" \
  || { echo "FAIL: metrics did not count the vectors" >&2; exit 1; }

step "refused: plain text, TLS without a token, a wrong token; health needs no token"
compose run --rm --no-deps --entrypoint python producer -c '
import os, sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from datasentinel.v1 import scoring_pb2, scoring_pb2_grpc
target = os.environ["ENGINE_HOST"] + ":" + os.environ["ENGINE_PORT"]
ca = open(os.environ["PRODUCER_TLS_CA_FILE"], "rb").read()
def info(channel):
    try:
        scoring_pb2_grpc.AnomalyScorerStub(channel).GetModelInfo(scoring_pb2.GetModelInfoRequest(), timeout=10)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name
tls = grpc.ssl_channel_credentials(ca)
wrong = grpc.composite_channel_credentials(tls, grpc.access_token_call_credentials("wrong"))
got = {
    "plain text": info(grpc.insecure_channel(target)),
    "no token": info(grpc.secure_channel(target, tls)),
    "wrong token": info(grpc.secure_channel(target, wrong)),
}
health = health_pb2_grpc.HealthStub(grpc.secure_channel(target, tls)).Check(health_pb2.HealthCheckRequest(), timeout=10)
print(got, "health without a token:", health_pb2.HealthCheckResponse.ServingStatus.Name(health.status))
want = {"plain text": "UNAVAILABLE", "no token": "UNAUTHENTICATED", "wrong token": "UNAUTHENTICATED"}
sys.exit(0 if got == want and health.status == health_pb2.HealthCheckResponse.SERVING else 1)
' || { echo "FAIL: the engine accepted a call it must refuse" >&2; exit 1; }

step "engine runs as a non-root user"
uid="$(compose exec -T engine id -u)"
[ "$uid" != 0 ] || { echo "FAIL: the engine runs as root" >&2; exit 1; }
echo "engine uid $uid"

step "image sizes"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^datasentinel-(trainer|engine|producer):' || true

step "down"
compose down --volumes --remove-orphans
left="$(docker ps --all --quiet --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
[ -z "$left" ] || { echo "FAIL: containers left: $left" >&2; exit 1; }
echo "docker smoke test passed in $((SECONDS - started)) s"
