#!/usr/bin/env bash
# Runs the trainer job once into the `models` volume. Args go to the trainer (python -m trainer).
source "$(dirname "$0")/lib.sh"
require_docker
compose build trainer
compose run --rm trainer "$@"
