#!/usr/bin/env bash
# Sets up a fresh machine, then builds and tests embedkit in CI's lanes:
#   cuda   - the CUDA backend compiled for sm_80 and sm_90, the GPU-labelled tests (they skip without
#            a GPU) and the C ABI test's CUDA-build branch, and scripts/check_kernels.sh (spills,
#            vector loads); the CPU tests of this build would repeat the cpu lane's. Then the Python
#            package built with CUDA (EMBEDKIT_CUDA=ON, no MPI or NCCL, incremental in
#            build/python/wheel-cuda, through ccache) and python/tests/test_install.py run against it
#            in venv-pypi-torch (below): embedkit.torch imports beside PyPI's CUDA torch, the library
#            links neither NCCL nor MPI, and without a GPU a table says "no usable CUDA device" and why
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
#            into three virtual environments under build/python, pytest in each: `venv` holds the
#            pinned PyPI Keras 3 + JAX (CPU) + NumPy 2 of python/requirements-test.txt, `venv-torch`
#            sees Debian's python3-torch and NumPy 1.24 (system site-packages) and adds only pytest,
#            `venv-pypi-torch` holds PyPI's torch 2.14.1 (its CUDA build, ~3 GB of nvidia-* wheels) and
#            Keras 3 of python/requirements-test-pypi-torch.txt, and TorchRec with FBGEMM's CPU build
#            (python/requirements-test-torchrec.txt, without dependencies); then a smoke run of
#            bench/compare_pytorch.py in venv-torch (embedkit against Debian's torch)
# venv-pypi-torch is shared by the cuda and python lanes: created once per run by the first lane that
# needs it (reused when present, its creation time printed); its wheels are kept between runs in
# ~/.cache/embedkit/wheels (EMBEDKIT_WHEELHOUSE), since pip's cache keeps nothing from this mirror.
# Not in the default run: fuzz-long, the fuzz lane with EMBEDKIT_FUZZ_SECONDS defaulting to 300;
# keras-backends, python/tests/test_keras_layer.py on Keras's TensorFlow backend (the CPU wheel, in
# build/python/venv-keras-tf from python/requirements-test-keras-tf.txt: TensorFlow, ~1.5 GB).
# Usage: scripts/test.sh [lane ...]   (default: all but fuzz-long). Warnings are errors in every lane.
# Every compile goes through ccache when it is installed (scripts/ccache_env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(cuda cpu asan tsan fuzz nompi python)

setup_groups=()
# The python lane, and the cuda lane's Python check, need Debian's Python (venv, headers).
for lane in "${lanes[@]}"; do
  case $lane in python | cuda | keras-backends) setup_groups=(python) ;; esac
done
./scripts/setup.sh "${setup_groups[@]}"
source scripts/ccache_env.sh
jobs=$(nproc)
mkdir -p build
# Debian's Python (the one python3-torch is built for): every environment and the wheels use it.
python=/usr/bin/python3
pypi_torch_venv=build/python/venv-pypi-torch
pypi_torch_venv_ready=0
# Creates venv-pypi-torch (PyPI's torch, pinned) the first time a lane of this run needs it, or
# checks the pins of the one present; says how long that took.
ensure_pypi_torch_venv() {
  [ "$pypi_torch_venv_ready" = 0 ] || return 0
  local started=$SECONDS what=checked
  if [ ! -x "$pypi_torch_venv/bin/python" ]; then
    what=created
    "$python" -m venv "$pypi_torch_venv"
  fi
  # pip's own cache keeps nothing from this machine's PyPI mirror (its responses carry no cache
  # validators), so the wheels are kept in a wheelhouse beside ccache's cache, downloaded once.
  # --no-compile: byte-compiling all of torch's files would double the install; imports compile what they use.
  local pip=(env PIP_DISABLE_PIP_VERSION_CHECK=1 "$pypi_torch_venv/bin/pip")
  local requirements=python/requirements-test-pypi-torch.txt
  local wheels=${EMBEDKIT_WHEELHOUSE:-$HOME/.cache/embedkit/wheels}
  echo "[test] $pypi_torch_venv ($requirements: PyPI's torch, ~3 GB): installing from $wheels"
  if ! "${pip[@]}" install -q --no-compile --no-index --find-links "$wheels" -r "$requirements" 2>/dev/null; then
    echo "[test] $pypi_torch_venv: downloading what $wheels lacks"
    "${pip[@]}" download -q -d "$wheels" -r "$requirements"
    "${pip[@]}" install -q --no-compile --no-index --find-links "$wheels" -r "$requirements"
  fi
  # TorchRec and FBGEMM's CPU build on top, without their dependencies: torchrec's own name the CUDA
  # build of FBGEMM (fbgemm-gpu), which would shadow the CPU build (~60 MB).
  local torchrec=python/requirements-test-torchrec.txt
  if ! "${pip[@]}" install -q --no-compile --no-index --no-deps --find-links "$wheels" -r "$torchrec" 2>/dev/null; then
    "${pip[@]}" download -q --no-deps -d "$wheels" -r "$torchrec"
    "${pip[@]}" install -q --no-compile --no-index --no-deps --find-links "$wheels" -r "$torchrec"
  fi
  echo "[test] $pypi_torch_venv: $what in $((SECONDS - started)) s"
  pypi_torch_venv_ready=1
}

# The cuda lane's Python check: the package built with the CUDA backend (as EMBEDKIT_CUDA=ON asks;
# its own incremental build directory, ccache shares the objects between runs) and imported, from the
# unpacked wheel, beside PyPI's CUDA torch in venv-pypi-torch, which keeps the CPU-only wheel of the
# python lane installed.
cuda_python_check() {
  local nvcc=$1 dir=build/python started
  ensure_pypi_torch_venv
  started=$SECONDS
  echo "[test] === lane cuda: Python wheel with the CUDA backend (EMBEDKIT_CUDA=ON; incremental in $dir/wheel-cuda)"
  rm -rf "$dir/dist-cuda" "$dir/site-cuda"
  EMBEDKIT_CUDA=ON "$pypi_torch_venv/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
    -w "$dir/dist-cuda" --config-settings=build-dir="$PWD/$dir/wheel-cuda" \
    --config-settings=cmake.define.CMAKE_CUDA_COMPILER="$nvcc" --config-settings=cmake.define.EMBEDKIT_WERROR=ON ./python
  "$python" -m zipfile -e "$dir"/dist-cuda/embedkit-*.whl "$dir/site-cuda"
  echo "[test] lane cuda: wheel built in $((SECONDS - started)) s; libembedkit.so needs:" \
    "$(readelf -d "$dir/site-cuda/embedkit/libembedkit.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  echo "[test] === lane cuda: python/tests/test_install.py with the CUDA wheel beside PyPI's torch ($pypi_torch_venv)"
  EMBEDKIT_TEST_CUDA_BUILD=1 PYTHONPATH="$PWD/$dir/site-cuda" \
    "$pypi_torch_venv/bin/python" -m pytest -q -p no:cacheprovider python/tests/test_install.py
}

python_lane() {
  local dir=build/python started=$SECONDS
  local venv=$dir/venv torch_venv=$dir/venv-torch
  echo "[test] === lane python: virtual environments ($venv: python/requirements-test.txt; $torch_venv: Debian's torch; $pypi_torch_venv: PyPI's torch)"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  [ -x "$torch_venv/bin/python" ] || "$python" -m venv --system-site-packages "$torch_venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-test.txt
  "$torch_venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-test-torch.txt
  ensure_pypi_torch_venv
  echo "[test] === lane python: wheel (libembedkit, CPU-only, and the extension; incremental in $dir/wheel)"
  rm -rf "$dir/dist"
  "$venv/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$dir/dist" \
    --config-settings=build-dir="$PWD/$dir/wheel" --config-settings=cmake.define.EMBEDKIT_CUDA=OFF \
    --config-settings=cmake.define.EMBEDKIT_WERROR=ON ./python
  local env env_started
  for env in "$venv" "$torch_venv" "$pypi_torch_venv"; do
    env_started=$SECONDS
    "$env/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$dir"/dist/embedkit-*.whl
    echo "[test] === lane python: pytest in $env"
    "$env/bin/python" -m pytest -q -p no:cacheprovider python/tests
    echo "[test] lane python: $env took $((SECONDS - env_started)) s"
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

# embedkit.keras on Keras's TensorFlow backend: the CPU wheel (built as the python lane builds it,
# incrementally in build/python/wheel) in its own environment, test_keras_layer.py there.
keras_backends_lane() {
  local dir=build/python started=$SECONDS venv=build/python/venv-keras-tf
  echo "[test] === lane keras-backends: $venv (python/requirements-test-keras-tf.txt: Keras 3 + TensorFlow CPU)"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-test-keras-tf.txt
  rm -rf "$dir/dist-keras"
  "$venv/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$dir/dist-keras" \
    --config-settings=build-dir="$PWD/$dir/wheel" --config-settings=cmake.define.EMBEDKIT_CUDA=OFF \
    --config-settings=cmake.define.EMBEDKIT_WERROR=ON ./python
  "$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$dir"/dist-keras/embedkit-*.whl
  KERAS_BACKEND=tensorflow "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests/test_keras_layer.py
  echo "[test] === lane keras-backends: passed in $((SECONDS - started)) s"
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
  if [ "$lane" = keras-backends ]; then
    keras_backends_lane
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
    *) echo "[test] unknown lane '$lane' (cuda, cpu, asan, tsan, fuzz, fuzz-long, nompi, python, keras-backends)" >&2; return 1 ;;
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
    cuda_python_check "$nvcc"
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
