#!/usr/bin/env bash
# Runs bench_sharded on 1, 2 and 4 ranks (more ranks than cores are oversubscribed; each rank single-
# threaded), then the network model for the same shape. Usage:
#   bench/run_sharded_bench.sh BUILD_DIR [bench_sharded flags, e.g. --rows 262144 --dim 64 --batch 8192]
set -euo pipefail
build=${1:?usage: bench/run_sharded_bench.sh BUILD_DIR [flags]}
shift
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for ranks in 1 2 4; do
  mpiexec -n "$ranks" --oversubscribe "$build/bench/bench_sharded" "$@"
done
