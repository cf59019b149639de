#!/usr/bin/env bash
# Sets up a fresh machine, then builds and tests embedkit in CI's three lanes:
#   cuda  - the CUDA backend compiled for sm_80 and sm_90, all tests (GPU tests skip without a GPU),
#           and scripts/check_kernels.sh (spills, vector loads)
#   cpu   - the CPU-only library (-DEMBEDKIT_CUDA=OFF), all tests and smoke runs of the benchmarks
#   asan  - CPU-only under AddressSanitizer + UndefinedBehaviorSanitizer, all tests
# Usage: scripts/test.sh [lane ...]   (default: all three). Warnings are errors in every lane.
set -euo pipefail
cd "$(dirname "$0")/.."

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(cuda cpu asan)

./scripts/setup.sh
jobs=$(nproc)
mkdir -p build

run_lane() {
  local lane=$1 dir=build/$1 started=$SECONDS
  local flags=()
  case $lane in
    cuda)
      local nvcc
      nvcc=$(./scripts/find_nvcc.sh)
      if [ -z "$nvcc" ]; then
        echo "[test] lane cuda: no nvcc on this machine; install the CUDA toolkit to compile the kernels" >&2
        return 1
      fi
      flags+=(-DCMAKE_CUDA_COMPILER="$nvcc") ;;
    cpu | asan) ;;
    *) echo "[test] unknown lane '$lane' (cuda, cpu, asan)" >&2; return 1 ;;
  esac
  echo "[test] === lane $lane: configure (CMakePresets.json preset '$lane')"
  cmake --preset "$lane" "${flags[@]}" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  echo "[test] === lane $lane: build"
  cmake --build "$dir" -j "$jobs"
  echo "[test] === lane $lane: ctest"
  ctest --preset "$lane" -j "$jobs"
  if [ "$lane" = cuda ]; then
    echo "[test] === lane cuda: kernel check (no register spills; 128-bit loads in the gather)"
    ./scripts/check_kernels.sh
  fi
  if [ "$lane" = cpu ]; then
    echo "[test] === lane cpu: benchmark smoke runs (the harnesses work; no timing is asserted)"
    EMBEDKIT_BENCH_SCALE=smoke "$dir/bench/bench_embedkit" --benchmark_min_time=0.01 >"$dir/bench_smoke.log"
    tail -n 4 "$dir/bench_smoke.log"
    "$dir/tools/embedkit" bench --scale smoke --seconds 1 >"$dir/embedkit_bench_smoke.log"
    tail -n 2 "$dir/embedkit_bench_smoke.log"
    if /usr/bin/python3 -c "import torch" 2>/dev/null; then
      /usr/bin/python3 bench/compare_pytorch.py --embedkit "$dir/tools/embedkit" --scale smoke --seconds 1 | tail -n 3
    else
      echo "[test] compare_pytorch.py not run: Debian's python3-torch is not installed (apt-get install python3-torch)"
    fi
  fi
  echo "[test] === lane $lane: passed in $((SECONDS - started)) s"
}

for lane in "${lanes[@]}"; do run_lane "$lane"; done
echo "[test] all lanes passed (${lanes[*]}) in ${SECONDS} s"
