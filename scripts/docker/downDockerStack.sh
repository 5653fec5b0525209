#!/usr/bin/env bash
# Stops and removes the stack's containers; the `models` volume stays unless you pass -v.
source "$(dirname "$0")/lib.sh"
require_docker
compose --profile gpu down --remove-orphans "$@"
