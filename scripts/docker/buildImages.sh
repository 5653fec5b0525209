#!/usr/bin/env bash
# Builds the stack's images (default: trainer, engine, producer; or the services named). torch for
# the trainer comes from a local wheel when one is found (TORCH_WHEEL=/path/to/torch-*.whl, or
# pip's find-links folders), else it is downloaded: see torch_wheel in lib.sh.
source "$(dirname "$0")/lib.sh"
require_docker
if [ "$#" -eq 0 ]; then
  set -- trainer engine producer
fi
build_images "$@"
