"""A task's seeds as one vmapped batch against one seed at a time: time and agreement.

    python benchmarks/bench_batch.py --demo                  # car2d with its RRT demo
    python benchmarks/bench_batch.py --task hopper --samples 64 --seeds 3

Both run through one compiled program each (compiled first, timed apart); the solves
are timed in alternating rounds and the medians reported. Also prints the largest
difference of the returned controls (normalized units) between the batched and the
sequential solve of the same key and instance: they sum in another order, so they agree
up to the last bits, which the diffusion's updates can grow.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from mbd.baselines import method_config
from mbd.solver import make_solver
from mbd.tasks import engine_options, get_task

ENGINE = "brax"  # robot tasks on the paper's Brax definitions, as docs/results.md measured


def main() -> None:
    """Parses the options, runs and prints."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="car2d")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=49)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--demo", action="store_true", help="use the task's demonstration")
    a = ap.parse_args()
    if min(a.seeds, a.samples, a.iterations, a.rounds) < 1:
        ap.error("--seeds, --samples, --iterations and --rounds must be >= 1")
    task = get_task(a.task)
    if a.demo and not task.has_demo:
        ap.error(f"task {a.task} has no demonstration")
    problems = [
        task.make(horizon=task.horizon, demo=a.demo, seed=s, **engine_options(task, ENGINE))
        for s in range(a.seeds)
    ]
    cfg = method_config("mbd", task.config, a.samples, a.iterations)
    solve = make_solver(problems[0], cfg).solve
    keys = jnp.stack([jax.random.key(s) for s in range(a.seeds)])
    instances = [p.instance() for p in problems]

    t0 = time.perf_counter()
    one = solve.compile(keys[0])
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = solve.compile_batch(keys, instances)
    t_batch = time.perf_counter() - t0

    seq_times, batch_times = [], []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        seq = [jax.block_until_ready(one(keys[s], instance=instances[s])) for s in range(a.seeds)]
        seq_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = jax.block_until_ready(batch())
        batch_times.append(time.perf_counter() - t0)
    diff = max(float(jnp.max(jnp.abs(seq[s].z - out.z[s]))) for s in range(a.seeds))
    ms, mb = float(np.median(seq_times)), float(np.median(batch_times))
    label = f"{a.task}{' --demo' if a.demo else ''}"
    print(f"{label}: {a.seeds} seeds x {a.samples} samples x {a.iterations} updates")
    print(f"  compile: one seed {t_one:.2f} s, batch of {a.seeds} {t_batch:.2f} s")
    print(f"  solve (median of {a.rounds}): sequential {ms:.3f} s, batch {mb:.3f} s, "
          f"speed-up {ms / mb:.2f}x")  # fmt: skip
    print(f"  largest |z_batch - z_sequential| = {diff:.2e} (normalized controls)")


if __name__ == "__main__":
    main()
