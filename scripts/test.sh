#!/usr/bin/env bash
# Sets up a fresh machine, then builds and tests embedkit in CI's three lanes:
#   cuda  - the CUDA backend compiled for sm_80 and sm_90, all tests (GPU tests skip without a GPU),
#           and scripts/check_kernels.sh (spills, vector loads)
#   cpu   - the CPU-only library (-DEMBEDKIT_CUDA=OFF), all tests and a benchmark smoke run
#   asan  - CPU-only under AddressSanitizer + UndefinedBehaviorSanitizer, all tests
#   fuzz  - the libFuzzer targets in fuzz/ (clang, ASan + UBSan), each run for EMBEDKIT_FUZZ_SECONDS
#           (default 30) from its checked-in corpus; a crash fails the lane and its input is kept
#           in build/fuzz/artifacts/ to be added to the corpus
# Usage: scripts/test.sh [lane ...]   (default: all four). Warnings are errors in every lane.
set -euo pipefail
cd "$(dirname "$0")/.."

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(cuda cpu asan fuzz)

./scripts/setup.sh
jobs=$(nproc)
mkdir -p build

# Runs every fuzz target for EMBEDKIT_FUZZ_SECONDS from its seed corpus (read-only; new inputs go to
# build/fuzz/corpus/) and prints its executions. A crash, leak, timeout or out-of-memory stops the lane.
run_fuzzers() {
  local dir=$1 seconds=${EMBEDKIT_FUZZ_SECONDS:-30} target name log execs
  mkdir -p "$dir/artifacts"
  for target in "$dir"/fuzz/*_fuzz; do
    name=$(basename "$target")
    log="$dir/$name.log"
    mkdir -p "$dir/corpus/$name"
    echo "[test] === lane fuzz: $name for ${seconds} s"
    if ! OMP_NUM_THREADS=1 "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$name-" "$dir/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1; then
      tail -n 60 "$log"
      echo "[test] lane fuzz: $name failed; the input is in $dir/artifacts/ (add it to fuzz/corpus/$name/" \
           "and a regression test)" >&2
      return 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "[test] lane fuzz: $name: ${execs:-?} executions; $(ls "$dir/corpus/$name" | wc -l) inputs in $dir/corpus/$name"
  done
}

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
    cpu | asan | fuzz) ;;
    *) echo "[test] unknown lane '$lane' (cuda, cpu, asan, fuzz)" >&2; return 1 ;;
  esac
  echo "[test] === lane $lane: configure (CMakePresets.json preset '$lane')"
  cmake --preset "$lane" "${flags[@]}" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  echo "[test] === lane $lane: build"
  cmake --build "$dir" -j "$jobs"
  if [ "$lane" = fuzz ]; then
    run_fuzzers "$dir"
    echo "[test] === lane $lane: passed in $((SECONDS - started)) s"
    return 0
  fi
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
  fi
  echo "[test] === lane $lane: passed in $((SECONDS - started)) s"
}

for lane in "${lanes[@]}"; do run_lane "$lane"; done
echo "[test] all lanes passed (${lanes[*]}) in ${SECONDS} s"
