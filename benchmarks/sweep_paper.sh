#!/usr/bin/env bash
# The paper's comparison (Pan et al. 2024, Tables 2 and 3) on its seven robot tasks:
# MBD, CMA-ES, CEM, MPPI, 3 seeds, the same budget for every method; RL (Brax PPO/SAC,
# Tables 5-6) with a small budget. Resumable: rerun the same command after an interruption
# and finished runs are kept. Writes OUT/runs.jsonl, OUT/table.md (the paper's Table 2
# beside), OUT/table.csv and OUT/curves.png.
#
#   bash benchmarks/sweep_paper.sh                       # the defaults below (docs/results.md)
#   SAMPLES=2048 ITERS=99 SEEDS="0 1 2 3 4 5 6 7" bash benchmarks/sweep_paper.sh   # a GPU
#   JOBS=3 bash benchmarks/sweep_paper.sh                # 3 processes, tasks dealt out
#   RL_TIMESTEPS=0 bash benchmarks/sweep_paper.sh        # no RL
#
# CPU sizing (2 cores): a run compiles for 25-70 s (every run: the seed sets the env's reset
# noise, pusht's goal) and then rolls out SAMPLES x ITERS x 50 env steps at 2-8k env
# steps/s. With the defaults (64 x 49) the 84 zeroth-order runs took about two hours of
# wall time as 3-4 processes on a loaded 2-core machine; RL with 50k steps 5-10 min a
# run. Every compile is single-threaded, so JOBS=2 roughly halves the wall time on 2 cores.
set -euo pipefail

OUT=${OUT:-runs/paper}
SAMPLES=${SAMPLES:-64}
ITERS=${ITERS:-49}   # MBD diffusion updates = iterations of every baseline (paper: N = 100)
SEEDS=${SEEDS:-"0 1 2"}
METHODS=${METHODS:-"mbd cmaes cem mppi"}
RL_TIMESTEPS=${RL_TIMESTEPS:-50000}
RL_SEEDS=${RL_SEEDS:-"0 1 2"}
JOBS=${JOBS:-1}
for v in SAMPLES ITERS RL_TIMESTEPS JOBS; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]]; then echo "$v must be a whole number (got '${!v}')" >&2; exit 2; fi
done
WANTED="hopper halfcheetah ant walker2d humanoidstandup humanoidrun pusht"
MBD=${MBD:-"python -m mbd.cli.main"}

# Keep only the tasks this checkout registers (the robot tasks come with mbd[brax]).
registered=$($MBD tasks 2>/dev/null | awk '{print $1}')
TASKS=()
for t in $WANTED; do
  if grep -qx "$t" <<<"$registered"; then TASKS+=("$t"); else echo "skip $t: not registered" >&2; fi
done
if [ ${#TASKS[@]} -eq 0 ]; then echo "none of the paper's tasks is registered" >&2; exit 2; fi

bench() {  # bench DIR TASK... : the zeroth-order methods, then RL, on some tasks
  local dir=$1
  shift
  $MBD bench --out "$dir" --tasks "$@" --methods $METHODS --seeds $SEEDS \
    --num-samples "$SAMPLES" --iterations "$ITERS" --no-report --quiet
  if [ "$RL_TIMESTEPS" != "0" ]; then
    $MBD bench --out "$dir" --tasks "$@" --methods rl --seeds $RL_SEEDS \
      --rl-timesteps "$RL_TIMESTEPS" --no-report --quiet
  fi
}

set -x
mkdir -p "$OUT"
if [ "$JOBS" -le 1 ]; then
  bench "$OUT" "${TASKS[@]}"
else
  # Deal the tasks out to JOBS shards (OUT/shard-k), run them side by side, merge.
  pids=()
  for ((k = 0; k < JOBS; k++)); do
    mine=()
    for ((i = k; i < ${#TASKS[@]}; i += JOBS)); do mine+=("${TASKS[$i]}"); done
    if [ ${#mine[@]} -gt 0 ]; then
      bench "$OUT/shard-$k" "${mine[@]}" >"$OUT/shard-$k.log" 2>&1 &
      pids+=($!)
    fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
  # load_runs keeps the first record of a key: runs already merged stay as they were.
  touch "$OUT/runs.jsonl"
  cat "$OUT"/shard-*/runs.jsonl >>"$OUT/runs.jsonl"
fi
$MBD report "$OUT"
