#!/usr/bin/env bash
# Issue 13's black-box comparison: MBD's adaptive options (mbd-shaped: learned full noise
# shape, adaptive size, lambda 0.5; mbd-ipop: the same with IPOP restarts) against the
# paper's MBD, pycma's CMA-ES with and without IPOP restarts, evosax's CMA-ES and CEM, at
# equal evaluations, on the ill-conditioned, rotated and multimodal test functions, seeds
# 0-4. Writes OUT/dD/ for each dimension (mbd bbo-bench's table.md, targets.md, ratios.md,
# results.json, the convergence and ECDF plots).
#
#   bash benchmarks/bbo_adaptive.sh                 # d = 10, 40, 200 (docs/results.md)
#   DIMS="10" SEEDS=2 bash benchmarks/bbo_adaptive.sh
#
# Budgets: 1,000 d at d = 10 (10,000 evaluations in generations of 20), 200 d at d = 40
# (8,000 in 40s) and 100 d at d = 200 (20,000 in 100s). On an idle 2-core CPU the three
# take about 20, 20 and 30 minutes; pycma and the JAX methods' compiles take most of it.
set -euo pipefail
OUT=${OUT:-runs/bbo-adaptive}
DIMS=${DIMS:-"10 40 200"}
SEEDS=${SEEDS:-5}
METHODS=${METHODS:-"mbd mbd-shaped mbd-ipop cem cma cma-ipop evosax-cma"}
FUNCTIONS="sphere ellipsoid discus bent_cigar rosenbrock_rotated sharp_ridge different_powers
rastrigin_rotated schwefel"
MBD=${MBD:-"python -m mbd.cli.main"}
for d in $DIMS; do
  case $d in
    10) budget=10000 pop=20 ;;
    40) budget=8000 pop=40 ;;
    200) budget=20000 pop=100 ;;
    *) echo "DIMS: 10, 40 or 200 (got '$d')" >&2; exit 2 ;;
  esac
  # shellcheck disable=SC2086
  $MBD bbo-bench --functions $FUNCTIONS --dims "$d" --methods $METHODS --seeds "$SEEDS" \
    --budget "$budget" --popsize "$pop" --out "$OUT/d$d" --quiet
done
