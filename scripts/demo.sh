#!/usr/bin/env bash
# Sets up a fresh machine, builds embedkit (with CUDA when nvcc is present) and runs `embedkit demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
source scripts/ccache_env.sh
nvcc=$(./scripts/find_nvcc.sh)
echo "[demo] configuring build/release (CUDA: ${nvcc:-not found, CPU-only})"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBEDKIT_CUDA=AUTO \
  ${nvcc:+-DCMAKE_CUDA_COMPILER="$nvcc"} -DEMBEDKIT_BUILD_TESTS=OFF -DEMBEDKIT_BUILD_BENCH=OFF >/dev/null
echo "[demo] building"
cmake --build build/release --target embedkit_cli
echo "[demo] running: build/release/tools/embedkit demo"
exec build/release/tools/embedkit demo
