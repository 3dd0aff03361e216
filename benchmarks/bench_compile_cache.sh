#!/usr/bin/env bash
# First and second `mbd plan TASK` compile time with JAX's persistent compilation cache,
# side by side in one run, in a fresh cache folder; then a second seed (same program).
#
#   bash benchmarks/bench_compile_cache.sh                 # hopper on Brax, 128 samples
#   TASK=car2d SAMPLES=256 bash benchmarks/bench_compile_cache.sh
#
# Robot tasks run on ENGINE (default brax, the physics that XLA compiles and the figure in
# docs/results.md; the native MuJoCo engine compiles no physics and has little to cache).
#
# Prints one line per run: seed, compile seconds, and the ratio to the first compile.
set -euo pipefail
TASK=${TASK:-hopper}
SAMPLES=${SAMPLES:-128}
STEPS=${STEPS:-20}
ENGINE=${ENGINE:-brax}
engine=()
[ "$TASK" = car2d ] || engine=(--engine "$ENGINE")
case "$SAMPLES$STEPS" in *[!0-9]*) echo "SAMPLES and STEPS must be integers" >&2; exit 2;; esac
cache=$(mktemp -d)
out=$(mktemp -d)
trap 'rm -rf "$cache" "$out"' EXIT
first=""
for run in "first:0" "second:0" "other-seed:1"; do
  label=${run%%:*}
  seed=${run##*:}
  MBD_CACHE_DIR="$cache" mbd plan "$TASK" --num-samples "$SAMPLES" --num-steps "$STEPS" \
    --seed "$seed" "${engine[@]}" --quiet --out "$out/$label" >/dev/null
  c=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['compile_seconds'])" \
    "$out/$label/summary.json")
  first=${first:-$c}
  python -c "import sys; c, f = map(float, sys.argv[2:]); \
print(f'{sys.argv[1]:<11} seed $seed  compile {c:7.2f} s  ratio to first {c / f:.2f}')" \
    "$label" "$c" "$first"
done
