#!/usr/bin/env bash
# Sets up a fresh machine, then builds and tests embedkit in CI's lanes:
#   cuda   - the CUDA backend compiled for sm_80 and sm_90, the GPU-labelled tests (they skip without
#            a GPU) and the C ABI test's CUDA-build branch, and scripts/check_kernels.sh (spills,
#            vector loads); the CPU tests of this build would repeat the cpu lane's
#   cpu    - the CPU-only library (-DEMBEDKIT_CUDA=OFF), all tests (the sharded ones under mpiexec
#            on 1, 2 and 4 ranks) and smoke runs of the C++ benchmarks (the suite, `embedkit bench`,
#            the train step's phases, the OpenMP region count)
#   asan   - CPU-only under AddressSanitizer + UndefinedBehaviorSanitizer, all tests (sharded ones
#            on 1 and 2 ranks)
#   tsan   - CPU-only under ThreadSanitizer (clang, LLVM's libomp), the concurrency tests, with
#            OpenMP teams and again on one OpenMP thread (pooled OpenMP workers carry
#            happens-before edges between callers that can hide a missing table lock)
#   fuzz   - the libFuzzer targets in fuzz/ (clang, ASan + UBSan): each replays its checked-in corpus
#            and runs for EMBEDKIT_FUZZ_SECONDS (default 10); a crash fails the lane and its input is
#            kept in build/fuzz/artifacts/ to be added to the corpus
#   nompi  - the library built without MPI, and the test that its sharded entry points say so; first,
#            the format check of every C/C++/CUDA source (scripts/format.sh --check, a few seconds)
#   python - the Python package (python/): one CPU-only wheel built from this checkout, installed
#            into two virtual environments under build/python, pytest in each: `venv` holds the
#            pinned PyPI Keras 3 + JAX (CPU) + NumPy 2 of python/requirements-test.txt, `venv-torch`
#            sees Debian's python3-torch and NumPy 1.24 (system site-packages) and adds only pytest;
#            then a smoke run of bench/compare_pytorch.py in venv-torch (embedkit against Debian's torch)
# Not in the default run: fuzz-long, the fuzz lane with EMBEDKIT_FUZZ_SECONDS defaulting to 300.
# Usage: scripts/test.sh [lane ...]   (default: all but fuzz-long). Warnings are errors in every lane.
# Every compile goes through ccache when it is installed (scripts/ccache_env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(cuda cpu asan tsan fuzz nompi python)

setup_groups=()
for lane in "${lanes[@]}"; do [ "$lane" != python ] || setup_groups+=(python); done
./scripts/setup.sh "${setup_groups[@]}"
source scripts/ccache_env.sh
jobs=$(nproc)
mkdir -p build
# Debian's Python (the one python3-torch is built for): both environments and the wheel use it.
python_lane() {
  local dir=build/python python=/usr/bin/python3 started=$SECONDS
  local venv=$dir/venv torch_venv=$dir/venv-torch
  echo "[test] === lane python: virtual environments ($venv: python/requirements-test.txt; $torch_venv: Debian's torch)"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  [ -x "$torch_venv/bin/python" ] || "$python" -m venv --system-site-packages "$torch_venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-test.txt
  "$torch_venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-test-torch.txt
  echo "[test] === lane python: wheel (libembedkit, CPU-only, and the extension; incremental in $dir/wheel)"
  rm -rf "$dir/dist"
  "$venv/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$dir/dist" \
    --config-settings=build-dir="$PWD/$dir/wheel" --config-settings=cmake.define.EMBEDKIT_CUDA=OFF \
    --config-settings=cmake.define.EMBEDKIT_WERROR=ON --config-settings=cmake.define.EMBEDKIT_MPI=OFF ./python
  local env
  for env in "$venv" "$torch_venv"; do
    "$env/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$dir"/dist/embedkit-*.whl
    echo "[test] === lane python: pytest in $env"
    "$env/bin/python" -m pytest -q -p no:cacheprovider python/tests
  done
  # The benchmark against the anchors works (no timing is asserted): in smoke mode, against Debian's
  # torch of $torch_venv, which already holds the wheel (no PyPI torch or FBGEMM downloaded here).
  echo "[test] === lane python: bench/compare_pytorch.py smoke run (Debian's torch, in $torch_venv)"
  local log=$dir/compare_pytorch_smoke.log
  "$torch_venv/bin/python" bench/compare_pytorch.py --anchor debian --no-venv --scale smoke --seconds 1 \
    --load 0 --wait-policies unset,passive >"$log" 2>&1 || { cat "$log"; return 1; }
  tail -n 4 "$log"
  echo "[test] === lane python: passed in $((SECONDS - started)) s"
}

# Runs every fuzz target for EMBEDKIT_FUZZ_SECONDS from its seed corpus (read-only; new inputs go to
# build/fuzz/corpus/) and prints its executions. A crash, leak, timeout or out-of-memory stops the lane.
run_fuzzers() {
  local dir=$1 seconds=$2 target name log execs
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
  local lane=$1 dir=build/$1 started=$SECONDS fuzz_seconds=${EMBEDKIT_FUZZ_SECONDS:-10}
  if [ "$lane" = fuzz-long ]; then
    lane=fuzz dir=build/fuzz fuzz_seconds=${EMBEDKIT_FUZZ_SECONDS:-300}
  fi
  if [ "$lane" = python ]; then
    python_lane
    return
  fi
  local flags=() targets=() tests=()
  case $lane in
    cuda)
      local nvcc
      nvcc=$(./scripts/find_nvcc.sh)
      if [ -z "$nvcc" ]; then
        echo "[test] lane cuda: no nvcc on this machine; install the CUDA toolkit to compile the kernels" >&2
        return 1
      fi
      flags+=(-DCMAKE_CUDA_COMPILER="$nvcc")
      targets=(-t embedkit cuda_lane_tests) ;;
    cpu | asan | fuzz | nompi) ;;
    tsan)  # the library and the concurrency tests (label `concurrency`)
      targets=(-t concurrency_test c_api_concurrency_test)
      tests=(-L concurrency --no-tests=error) ;;
    *) echo "[test] unknown lane '$lane' (cuda, cpu, asan, tsan, fuzz, fuzz-long, nompi, python)" >&2; return 1 ;;
  esac
  if [ "$lane" = nompi ]; then
    echo "[test] === lane nompi: format check (scripts/format.sh --check against .clang-format)"
    ./scripts/format.sh --check
  fi
  echo "[test] === lane $lane: configure (CMakePresets.json preset '$lane')"
  cmake --preset "$lane" "${flags[@]}" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  echo "[test] === lane $lane: build"
  cmake --build --preset "$lane" -j "$jobs" "${targets[@]}"
  if [ "$lane" = fuzz ]; then
    run_fuzzers "$dir" "$fuzz_seconds"
    echo "[test] === lane $lane: passed in $((SECONDS - started)) s"
    return 0
  fi
  echo "[test] === lane $lane: ctest"
  if [ "$lane" = cuda ]; then
    ctest --preset cuda -j "$jobs" -L gpu --no-tests=error
    ctest --preset cuda -R '^c_api_test$' --no-tests=error
  else
    ctest --preset "$lane" -j "$jobs" "${tests[@]}"
  fi
  if [ "$lane" = tsan ]; then
    echo "[test] === lane tsan: ctest on one OpenMP thread"
    OMP_NUM_THREADS=1 ctest --preset "$lane" -j "$jobs" "${tests[@]}"
  fi
  if [ "$lane" = cuda ]; then
    echo "[test] === lane cuda: kernel check (no register spills; 128-bit loads in the gather and the pooled lookup)"
    ./scripts/check_kernels.sh
  fi
  if [ "$lane" = cpu ]; then
    echo "[test] === lane cpu: benchmark smoke runs (the harnesses work; no timing is asserted)"
    EMBEDKIT_BENCH_SCALE=smoke "$dir/bench/bench_embedkit" --benchmark_min_time=0.01 >"$dir/bench_smoke.log"
    tail -n 4 "$dir/bench_smoke.log"
    "$dir/tools/embedkit" bench --scale smoke --seconds 1 >"$dir/embedkit_bench_smoke.log"
    tail -n 2 "$dir/embedkit_bench_smoke.log"
    "$dir/bench/bench_train_phases" 65536 32768 1 | tail -n 2
    "$dir/bench/bench_parallel_regions" | tail -n 1
    OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      mpiexec -n 2 --oversubscribe "$dir/bench/bench_sharded" --rows 4096 --batch 256 --steps 2 --warmup 1
  fi
  echo "[test] === lane $lane: passed in $((SECONDS - started)) s"
}

for lane in "${lanes[@]}"; do run_lane "$lane"; done
echo "[test] all lanes passed (${lanes[*]}) in ${SECONDS} s"
