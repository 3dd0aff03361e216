#!/usr/bin/env bash
# Issue 13's robot comparison: the seven tasks at 64 samples x 49 iterations on the native
# MuJoCo engine, every method at the same budget, seeds 0-7: the paper's MBD and the three
# baselines, then MBD with the adaptive temperature (--ess-target 0.1), alone, with a
# diagonal noise shape, and with both and the mode output (--output mode). Each folder gets
# mbd bench's runs.jsonl, table.md and curves.png; a rerun resumes. docs/native_sweep/
# holds what this wrote (docs/results.md).
#
#   bash benchmarks/robots_adaptive.sh              # 392 runs, about 2.5 hours on 2 cores
#   SEEDS="0 1" bash benchmarks/robots_adaptive.sh
set -euo pipefail
OUT=${OUT:-runs}
SEEDS=${SEEDS:-"0 1 2 3 4 5 6 7"}
MBD=${MBD:-"python -m mbd.cli.main"}
T="hopper halfcheetah ant walker2d humanoidstandup humanoidrun pusht"
# shellcheck disable=SC2086
B="--engine mujoco --num-samples 64 --iterations 49 --tasks $T --seeds $SEEDS"
# shellcheck disable=SC2086
$MBD bench $B --methods mbd cmaes cem mppi --out "$OUT/native"
# shellcheck disable=SC2086
$MBD bench $B --methods mbd --ess-target 0.1 --out "$OUT/native-ess"
# shellcheck disable=SC2086
$MBD bench $B --methods mbd --ess-target 0.1 --noise-shape diagonal --out "$OUT/native-ess-diagonal"
# shellcheck disable=SC2086
$MBD bench $B --methods mbd --ess-target 0.1 --noise-shape diagonal --output mode \
    --out "$OUT/native-ess-diagonal-mode"
