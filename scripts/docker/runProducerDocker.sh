#!/usr/bin/env bash
# Streams vectors to the running engine container. Args go to the producer (python -m datasentinel.producer),
# e.g. --count 100000 --batch-size 512.
source "$(dirname "$0")/lib.sh"
require_docker
ensure_secrets
build_images producer
compose run --rm --no-deps producer "$@"
