#!/usr/bin/env bash
# Runs the trainer job once into the `models` volume. Args go to the trainer (python -m datasentinel.trainer).
# torch comes from a local wheel when one is found (TORCH_WHEEL, pip's find-links): see lib.sh.
source "$(dirname "$0")/lib.sh"
require_docker
build_images trainer
compose run --rm trainer "$@"
