#!/usr/bin/env bash
# Force-removes every container of this Compose project (found by its project label), running or
# not, and no other container on the machine.
source "$(dirname "$0")/lib.sh"
require_docker
ids="$(docker ps --all --quiet --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
if [ -z "$ids" ]; then
  echo "no containers of project $COMPOSE_PROJECT_NAME"
  exit 0
fi
# shellcheck disable=SC2086  # one id per word
docker rm --force $ids
