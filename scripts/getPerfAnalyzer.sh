#!/usr/bin/env bash
# Installs Triton's perf_analyzer into the venv as $VENV/bin/perf_analyzer, for
# `benchmarks/serving.py --same-client`. Its own wheel (perf-analyzer 2.58+) is built for glibc
# 2.38 and newer; on older systems (Debian 12 has 2.36) the binary that the tritonclient 2.51
# wheel ships is used instead: it needs glibc 2.34, libb64 (Debian: libb64-0d) and libcudart.so.12
# (the nvidia-cuda-runtime-cu12 wheel; loaded, never called without CUDA shared memory). That
# tritonclient cannot be installed into the venv itself (numpy < 2, protobuf < 5), so its wheel
# is only unpacked, beside the venv's packages.
source "$(dirname "$0")/lib/setup.sh"
ensure_venv engine
if "$VENV/bin/pip" install --only-binary=:all: "perf-analyzer>=2.58" >/dev/null 2>&1; then
  echo "perf_analyzer: $("$VENV/bin/perf_analyzer" --version 2>&1)"
  exit 0
fi
if ! ldconfig -p | grep -q 'libb64\.so\.0d'; then
  echo "error: perf_analyzer needs libb64: apt-get install libb64-0d" >&2
  exit 1
fi
home="$VENV/perf_analyzer"
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$VENV/bin/pip" download --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
  -d "$wheels" tritonclient==2.51.0 nvidia-cuda-runtime-cu12 >/dev/null
rm -rf "$home" && mkdir -p "$home/lib"
(cd "$wheels" && unzip -q -o 'tritonclient-*.whl' 'tritonclient-2.51.0.data/data/bin/perf_analyzer' &&
  unzip -q -o 'nvidia_cuda_runtime_cu12-*.whl' 'nvidia/cuda_runtime/lib/libcudart.so.12')
mv "$wheels/tritonclient-2.51.0.data/data/bin/perf_analyzer" "$home/perf_analyzer"
mv "$wheels/nvidia/cuda_runtime/lib/libcudart.so.12" "$home/lib/"
chmod +x "$home/perf_analyzer"
cat >"$VENV/bin/perf_analyzer" <<EOF
#!/bin/sh
LD_LIBRARY_PATH="$home/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$home/perf_analyzer" "\$@"
EOF
chmod +x "$VENV/bin/perf_analyzer"
echo "perf_analyzer: $("$VENV/bin/perf_analyzer" --version 2>&1)"
