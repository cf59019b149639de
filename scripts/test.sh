#!/usr/bin/env bash
# Sets up a fresh machine, then builds and tests embedkit in CI's four lanes:
#   cuda  - the CUDA backend compiled for sm_80 and sm_90, all tests (GPU tests skip without a GPU),
#           and scripts/check_kernels.sh (spills, vector loads)
#   cpu   - the CPU-only library (-DEMBEDKIT_CUDA=OFF), all tests (the sharded ones under mpiexec
#           on 1, 2 and 4 ranks) and a benchmark smoke run
#   asan  - CPU-only under AddressSanitizer + UndefinedBehaviorSanitizer, all tests (sharded ones
#           on 1 and 2 ranks)
#   nompi - the library built without MPI, and the test that its sharded entry points say so
# Usage: scripts/test.sh [lane ...]   (default: all four). Warnings are errors in every lane.
set -euo pipefail
cd "$(dirname "$0")/.."

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(cuda cpu asan nompi)

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
    cpu | asan | nompi) ;;
    *) echo "[test] unknown lane '$lane' (cuda, cpu, asan, nompi)" >&2; return 1 ;;
  esac
  echo "[test] === lane $lane: configure (CMakePresets.json preset '$lane')"
  cmake --preset "$lane" "${flags[@]}" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  echo "[test] === lane $lane: build"
  cmake --build --preset "$lane" -j "$jobs"
  echo "[test] === lane $lane: ctest"
  ctest --preset "$lane" -j "$jobs"
  if [ "$lane" = cuda ]; then
    echo "[test] === lane cuda: kernel check (no register spills; 128-bit loads in the gather)"
    ./scripts/check_kernels.sh
  fi
  if [ "$lane" = cpu ]; then
    echo "[test] === lane cpu: benchmark smoke run (the harness works; no timing is asserted)"
    EMBEDKIT_BENCH_ROWS=65536 "$dir/bench/bench_lookup" --benchmark_min_time=0.01 >"$dir/bench_smoke.log"
    tail -n 5 "$dir/bench_smoke.log"
    OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      mpiexec -n 2 --oversubscribe "$dir/bench/bench_sharded" --rows 4096 --batch 256 --steps 2 --warmup 1
  fi
  echo "[test] === lane $lane: passed in $((SECONDS - started)) s"
}

for lane in "${lanes[@]}"; do run_lane "$lane"; done
echo "[test] all lanes passed (${lanes[*]}) in ${SECONDS} s"
