#!/usr/bin/env bash
# Runs the GPU suite of a build prepared by scripts/prepare_gpu_check.sh, on a machine with a GPU
# (a lent one: bare and offline). First asks the probe whether a device is usable and exits 2
# within seconds when none is. Then runs every program of the bundle's tests.txt with
# EMBEDKIT_REQUIRE_GPU=1 (a missing or unusable device fails a test instead of skipping it) and
# EMBEDKIT_CUDA_TABLES=1 (placement's gate for unverified kernels open), and writes the report:
#   <report>/summary.txt and summary.json  the device, the build, each program's result, counts
#                                          (passed, failed, skipped) and seconds
#   <report>/<program>.log, <program>.json its output, and GoogleTest's JSON for gtest programs
#   <report>/bench.txt, bench.json         gpu_bench: GB/s of lookup, pooled and the train step
#                                          against the measured copy bandwidth and the HBM roofline
# Exit status: 0 all passed, 1 a test failed (or no test ran), 2 no usable device.
# Usage: scripts/gpu_check.sh [--bundle DIR] [--report DIR] [--probe-only | --without-device]
#   (defaults: build/gpu-check/bundle and build/gpu-report, relative to the repository root)
#   --without-device runs the programs even when the probe finds no device, to test this script on
#   a machine without one: the GPU tests then fail, as EMBEDKIT_REQUIRE_GPU=1 asks.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle=$root/build/gpu-check/bundle
report=$root/build/gpu-report
probe_only=0 without_device=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    --probe-only) probe_only=1; shift ;;
    --without-device) without_device=1; shift ;;
    *) echo "usage: $0 [--bundle DIR] [--report DIR] [--probe-only | --without-device]" >&2; exit 64 ;;
  esac
done
[ -x "$bundle/bin/gpu_probe" ] || { echo "[gpu-check] no bundle at $bundle: run scripts/prepare_gpu_check.sh first" >&2; exit 1; }
mkdir -p "$report"
export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EMBEDKIT_REQUIRE_GPU=1 EMBEDKIT_CUDA_TABLES=1

probe_status=0
timeout 60 "$bundle/bin/gpu_probe" >"$report/probe.txt" 2>&1 || probe_status=$?
cat "$report/probe.txt"
if [ "$probe_status" -ne 0 ] && [ "$without_device" -eq 0 ]; then
  echo "[gpu-check] no usable device (probe exit $probe_status): nothing run" | tee -a "$report/probe.txt"
  exit 2
fi
[ "$probe_only" -eq 0 ] || exit 0

# Counts of one program's tests from its output: GoogleTest's JSON, or the C tests' last line.
counts() {
  local name=$1 log=$2 json=$3
  if [ -s "$json" ]; then
    python3 - "$json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
passed = failed = skipped = 0
for suite in data.get("testsuites", []):
    for test in suite.get("testsuite", []):
        if test.get("failures"):
            failed += 1
        elif test.get("result") == "SKIPPED" or test.get("status") == "NOTRUN":
            skipped += 1
        else:
            passed += 1
print(passed, failed, skipped)
PY
  else
    sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2 0/p' "$log" | tail -n 1
  fi
}

summary=$report/summary.txt
{
  echo "embedkit GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  cat "$bundle/BUILD"
  cat "$report/probe.txt"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} >"$summary"
results=()
any_failed=0 total=0
while read -r name command; do
  [ -n "$name" ] || continue
  log=$report/$name.log json=$report/$name.json
  started=$(date +%s.%N)
  status=0
  (cd "$bundle" && timeout 900 $command --gtest_output="json:$json") >"$log" 2>&1 || status=$?
  seconds=$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.2f}")' "$started" "$(date +%s.%N)")
  read -r passed failed skipped <<<"$(counts "$name" "$log" "$json")"
  passed=${passed:-0} failed=${failed:-0} skipped=${skipped:-0}
  total=$((total + passed + failed))
  verdict=passed
  if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then verdict=FAILED; any_failed=1; fi
  printf '%-28s %-7s %5s passed %4s failed %4s skipped %8s s (exit %s)\n' "$name" "$verdict" "$passed" "$failed" \
    "$skipped" "$seconds" "$status" | tee -a "$summary"
  results+=("{\"program\": \"$name\", \"result\": \"$verdict\", \"exit\": $status, \"passed\": $passed, \"failed\": $failed, \"skipped\": $skipped, \"seconds\": $seconds}")
done <"$bundle/tests.txt"
# The benchmark on the CUDA backend: GB/s against the copy bandwidth and the HBM roofline.
if [ -x "$bundle/bin/gpu_bench" ]; then
  echo "[gpu-check] gpu_bench (lookup, pooled, train step at dims 64, 128, 256)"
  bench_status=0
  (cd "$bundle" && timeout 600 bin/gpu_bench --json "$report/bench.json") >"$report/bench.txt" 2>&1 || bench_status=$?
  cat "$report/bench.txt" | tee -a "$summary"
  if [ "$bench_status" -ne 0 ]; then
    echo "gpu_bench FAILED (exit $bench_status)" | tee -a "$summary"
    any_failed=1
  fi
fi
if [ "$total" -eq 0 ]; then
  echo "no test ran" | tee -a "$summary"
  any_failed=1
fi
python3 - "$report/summary.json" "$summary" "${results[@]}" <<'PY'
import json, sys
path, text, *programs = sys.argv[1:]
json.dump({"summary": open(text).read(), "programs": [json.loads(p) for p in programs]}, open(path, "w"), indent=1)
PY
echo "[gpu-check] report in $report"
exit "$any_failed"
