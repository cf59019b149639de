#!/usr/bin/env bash
# Prepares, on this machine, what scripts/gpu_check.sh runs on a lent GPU machine (bare, offline:
# nvcc, CMake and ninja, none of this project's Debian packages): a CUDA build for sm_90 without
# MPI or NCCL, bundled in build/gpu-check/bundle/ with the shared libraries such a machine lacks
#   bin/      gpu_probe, the GPU test programs, the C ABI tests (run from tests.txt, not CTest, so
#             no path of this machine is needed there), gpu_bench (bench/gpu_bench.cpp)
#   lib/      libembedkit and its non-system dependencies (spdlog, fmt, xxhash, libgomp); the CUDA
#             runtime is linked statically, the driver is the machine's
#   tests.txt one test program per line: name, then the command relative to the bundle
#   BUILD     the commit, the CUDA compiler and the architectures
# and checks that it is under 64 MiB (what a device call carries) and that every library resolves
# inside the bundle from a copy at another path. Usage: scripts/prepare_gpu_check.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/gpu-check}
bundle=$dir/bundle
nvcc=$(./scripts/find_nvcc.sh)
[ -n "$nvcc" ] || { echo "[gpu-check] no nvcc: install the CUDA toolkit (scripts/setup.sh)" >&2; exit 1; }
source scripts/ccache_env.sh
echo "[gpu-check] configure $dir (sm_90, Release, no MPI)"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBEDKIT_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DEMBEDKIT_MPI=OFF -DEMBEDKIT_WERROR=ON -DEMBEDKIT_BUILD_BENCH=ON \
  -DEMBEDKIT_BUILD_TOOLS=OFF >"$dir.configure.log" 2>&1 \
  || { cat "$dir.configure.log"; exit 1; }
programs=(gpu_probe gpu_test c_api_test c_api_table_state_test gpu_bench)
echo "[gpu-check] build ${programs[*]}"
cmake --build "$dir" -t embedkit "${programs[@]}" -- -j"$(nproc)" >"$dir.build.log" 2>&1 \
  || { tail -n 40 "$dir.build.log"; exit 1; }

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
for program in "${programs[@]}"; do cp "$dir/tests/$program" "$bundle/bin/" 2>/dev/null || cp "$dir/bench/$program" "$bundle/bin/"; done
# libembedkit under its soname, and every library it or a program needs that is not the C library,
# the C++ runtime or the CUDA driver (which the GPU machine has, and which must be its own).
system='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libstdc\+\+|libgcc_s|libcuda\.)'
build_lib=$(cd "$dir/src" && pwd)
for binary in "$bundle"/bin/* "$build_lib"/libembedkit.so; do
  LD_LIBRARY_PATH="$build_lib" ldd "$binary" | awk '$3 ~ /^\// {print $1, $3}' | while read -r name path; do
    [[ "$name" =~ $system ]] || cp -L "$path" "$bundle/lib/$name"
  done
done
cat >"$bundle/tests.txt" <<'LIST'
gpu_test bin/gpu_test
c_api_test bin/c_api_test
c_api_table_state_test bin/c_api_table_state_test
LIST
{
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  "$nvcc" --version | tail -n 1
  echo "architectures sm_90"
} >"$bundle/BUILD"

bytes=$(du -sb "$bundle" | cut -f1)
echo "[gpu-check] bundle $bundle: $((bytes / 1048576)) MiB ($(ls "$bundle/lib" | tr '\n' ' '))"
[ "$bytes" -lt $((64 * 1048576)) ] || { echo "[gpu-check] the bundle exceeds 64 MiB" >&2; exit 1; }

# From a copy at another path: every library a program needs resolves, either to the system's C
# library, C++ runtime and driver or inside the bundle, never to this build or this machine's packages.
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp -r "$bundle" "$copy/bundle"
for binary in "$copy"/bundle/bin/*; do
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    if [ "$path" = "not" ]; then
      echo "[gpu-check] $(basename "$binary") from a copy: $name not found" >&2
      exit 1
    fi
    if ! [[ "$name" =~ $system ]] && [[ "$path" != "$copy/bundle/lib/"* ]]; then
      echo "[gpu-check] $(basename "$binary") from a copy takes $name from $path, outside the bundle" >&2
      exit 1
    fi
  done < <(LD_LIBRARY_PATH="$copy/bundle/lib" ldd "$binary")
done
# The probe runs from the copy: 0 with a device, 2 without one; anything else is a broken bundle.
status=0
./scripts/gpu_check.sh --probe-only --bundle "$copy/bundle" --report "$copy/report" >/dev/null || status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 2 ] || { echo "[gpu-check] the probe failed from a copy ($status)" >&2; exit 1; }
echo "[gpu-check] ready: carry $bundle and run scripts/gpu_check.sh there"
