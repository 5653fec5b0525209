#!/usr/bin/env bash
# Applies one overlay of docker/kubernetes to the current kubectl context and waits until it runs:
#   ./scripts/kubernetes/deploy.sh default|kind|tls|prometheus|kserve
# NAMESPACE=... deploys there (created when missing); TIMEOUT (default 600s) bounds each wait.
# Steps: secrets (makeSecrets.sh), the Jobs of a previous run deleted (a Job's pod template is
# immutable, and a new deploy should train and stream again), kubectl apply -k, then wait for
# the trainer Job to complete and the engines to be rolled out (kserve: the InferenceService
# Ready). The producer Job waits for the engines by itself (PRODUCER_READY_TIMEOUT).
# Not run in this repository's CI: no Kubernetes cluster can run there; CI renders and validates
# every overlay instead (tests/repo/test_kubernetes_manifests.py).
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/../.." && pwd)"
overlay="${1:-}"
dir="$repo_root/docker/kubernetes/overlays/$overlay"
if [ -z "$overlay" ] || [ ! -f "$dir/kustomization.yaml" ]; then
  echo "usage: $0 OVERLAY   (one of: $(ls "$repo_root/docker/kubernetes/overlays" | xargs))" >&2
  exit 2
fi
timeout="${TIMEOUT:-600s}"
ns=()
if [ -n "${NAMESPACE:-}" ]; then
  ns=(--namespace "$NAMESPACE")
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
fi
k() { kubectl "${ns[@]}" "$@"; }

"$repo_root/scripts/kubernetes/makeSecrets.sh"
k delete job datasentinel-trainer datasentinel-producer --ignore-not-found --wait=true
k apply -k "$dir"
echo "waiting for the trainer Job (model artifacts on the datasentinel-models volume)"
k wait --for=condition=complete job/datasentinel-trainer --timeout="$timeout"
if [ "$overlay" = kserve ]; then
  k wait --for=condition=Ready inferenceservice/datasentinel --timeout="$timeout"
else
  k rollout status deployment/engine --timeout="$timeout"
  echo "producer: kubectl ${ns[*]} logs -f job/datasentinel-producer"
fi
