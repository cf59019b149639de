#!/usr/bin/env bash
# Compiles every CUDA kernel file for sm_80 and sm_90 and checks what the GPU would run without
# running it: no register spills in any of embedkit's kernels (ptxas -v; CUB's own kernels are
# listed, and a spill there is reported but not ours to fix), and 128-bit global loads in the
# vectorised gather, pooled lookup, penalty and non-finite scan (ld.global[.nc].v4 in their PTX).
# Prints registers, shared memory and spills.
set -euo pipefail
cd "$(dirname "$0")/.."

nvcc=$(./scripts/find_nvcc.sh)
[ -n "$nvcc" ] || { echo "[kernels] no nvcc: nothing to check" >&2; exit 1; }
cuda_include="$(dirname "$(dirname "$nvcc")")/include"
flags=(-std=c++17 -O3 --expt-relaxed-constexpr -fmad=false -Iinclude -I. -isystem "$cuda_include/cccl")
# Through ccache when test.sh set it up (scripts/ccache_env.sh): ccache keeps ptxas's report too.
launcher=()
[ "${CMAKE_CUDA_COMPILER_LAUNCHER:-}" != ccache ] || launcher=(ccache)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0

for source in kernels/*.cu; do
  for arch in 80 90; do
    report="$out/$(basename "$source" .cu)-sm$arch.txt"
    "${launcher[@]}" "$nvcc" "${flags[@]}" -arch="sm_$arch" -Xptxas -v -c "$source" -o "$out/object.o" 2>"$report"
    # ptxas prints a "Compiling entry function" line, then "Used N registers ..." and spills.
    awk -v file="$source" -v arch="sm_$arch" '
      /Compiling entry function/ { match($0, /_Z[A-Za-z0-9_]+/); name = substr($0, RSTART, RLENGTH) }
      /bytes stack frame/ { split($0, f, ","); stores = f[2]; loads = f[3]; gsub(/[^0-9]/, "", stores); gsub(/[^0-9]/, "", loads) }
      /Used [0-9]+ registers/ {
        match($0, /Used [0-9]+ registers/); registers = substr($0, RSTART + 5, RLENGTH - 15)
        smem = "0"; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
        printf "  %-8s %-22s %4s registers %6s B smem  spill stores %s B, loads %s B  %s\n", arch, file, registers, smem, stores, loads, name
        if ((stores + 0 > 0 || loads + 0 > 0) && name ~ /8embedkit/) bad = 1
        if ((stores + 0 > 0 || loads + 0 > 0) && name !~ /8embedkit/) print "    (a spill inside CUB, not in embedkit code)"
      }
      END { exit bad }' "$report" || { echo "[kernels] register spills in $source for sm_$arch" >&2; status=1; }
  done
done

# The lookups, and the penalty and non-finite scan (coalesced 16-byte loads, issue #26 item 4).
for source in kernels/gather.cu kernels/pooled.cu kernels/table_ops.cu; do
  for arch in 80 90; do
    ptx="$out/$(basename "$source" .cu)-sm$arch.ptx"
    "${launcher[@]}" "$nvcc" "${flags[@]}" -arch="sm_$arch" -ptx "$source" -o "$ptx"
    if grep -Eq 'ld\.global(\.nc)?\.v4\.(f32|b32|u32)' "$ptx"; then
      echo "  sm_$arch  $source: 128-bit global loads present"
    else
      echo "[kernels] $source has no 128-bit global load for sm_$arch" >&2
      status=1
    fi
  done
done
exit $status
