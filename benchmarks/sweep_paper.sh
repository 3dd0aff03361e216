#!/usr/bin/env bash
# The paper's comparison (Pan et al. 2024, Tables 2 and 3) on its seven robot tasks:
# MBD, CMA-ES, CEM, MPPI (and random shooting as a floor), 3 seeds, the same budget for
# every method; RL (Brax PPO/SAC, Tables 5-6) with a small budget. Resumable: rerun the
# same command after an interruption and finished runs are kept.
#
#   bash benchmarks/sweep_paper.sh                 # defaults below
#   SAMPLES=256 SEEDS="0 1 2 3 4 5 6 7" bash benchmarks/sweep_paper.sh
#   OUT=runs/paper RL_TIMESTEPS=0 bash benchmarks/sweep_paper.sh    # no RL
#
# CPU sizing (2 cores). Measured on this VM (shared, load ~10) with the robot tasks merged:
# hopper, MBD, 128 samples x 99 updates x H 50 (634k env steps): 249 s solve + 43 s compile,
# reward 1.34. Every zeroth-order method costs about the same per run (the rollouts
# dominate), the humanoids more. At 128 samples the full sweep (7 tasks x 5 methods x 3
# seeds = 105 runs) is therefore ~8 h on this machine: lower SAMPLES / ITERS, or drop
# `random` from METHODS, to fit a session; measure one run first, e.g.
#   python -m mbd.cli.main bench --tasks hopper --methods mbd --seeds 0 --num-samples 128 --out runs/probe
set -euo pipefail

OUT=${OUT:-runs/paper}
SAMPLES=${SAMPLES:-128}
ITERS=${ITERS:-99}   # MBD diffusion updates = iterations of every baseline (paper: N = 100)
SEEDS=${SEEDS:-"0 1 2"}
METHODS=${METHODS:-"mbd cmaes cem mppi random"}
RL_TIMESTEPS=${RL_TIMESTEPS:-200000}
WANTED="hopper halfcheetah ant walker2d humanoidstandup humanoidrun pusht"
MBD=${MBD:-"python -m mbd.cli.main"}

# Keep only the tasks this checkout registers (the robot tasks come with mbd[brax]).
registered=$($MBD tasks 2>/dev/null | awk '{print $1}')
TASKS=""
for t in $WANTED; do
  if grep -qx "$t" <<<"$registered"; then TASKS="$TASKS $t"; else echo "skip $t: not registered" >&2; fi
done
if [ -z "$TASKS" ]; then echo "none of the paper's tasks is registered" >&2; exit 2; fi
RL_ARG=$RL_TIMESTEPS
if [ "$RL_TIMESTEPS" != "0" ]; then METHODS="$METHODS rl"; else RL_ARG=100000; fi

set -x
$MBD bench --out "$OUT" --tasks $TASKS --methods $METHODS --seeds $SEEDS \
  --num-samples "$SAMPLES" --iterations "$ITERS" --rl-timesteps "$RL_ARG"
$MBD report "$OUT"
