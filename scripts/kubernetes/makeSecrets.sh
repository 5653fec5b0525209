#!/usr/bin/env bash
# Puts the engine's secrets into the cluster (current kubectl context; NAMESPACE=... to choose):
#   datasentinel-token  key `token`: the bearer token (every overlay)
#   datasentinel-tls    keys server.pem, server.key, ca.pem (overlays/tls)
# The files come from ./scripts/docker/makeSecrets.sh (DATASENTINEL_SECRETS_DIR, default
# docker/secrets, git-ignored): no key material is ever in git or in the kustomize tree.
# Applied, so rerunning after FORCE=1 ./scripts/docker/makeSecrets.sh rotates them.
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${DATASENTINEL_SECRETS_DIR:-$repo_root/docker/secrets}"
DATASENTINEL_SECRETS_DIR="$dir" "$repo_root/scripts/docker/makeSecrets.sh"
ns=()
if [ -n "${NAMESPACE:-}" ]; then ns=(--namespace "$NAMESPACE"); fi
apply_secret() {  # apply_secret NAME --from-file=... : create or update, idempotent
  local name="$1"
  shift
  kubectl "${ns[@]}" create secret generic "$name" "$@" --dry-run=client -o yaml \
    | kubectl "${ns[@]}" apply -f -
}
apply_secret datasentinel-token --from-file=token="$dir/token"
apply_secret datasentinel-tls --from-file=server.pem="$dir/server.pem" \
  --from-file=server.key="$dir/server.key" --from-file=ca.pem="$dir/ca.pem"
