"""Wall time of MBD on car2d against a bare batched rollout of the same env steps.

The ratio (solve time) / (rollout time) measures the solver's own overhead: sampling,
weighting and the update, on top of the physics. Both are jitted, compiled before timing,
and timed ``--repeats`` times side by side; medians are reported.

    python benchmarks/bench_car2d.py [--num-samples 2048] [--num-steps 100] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

import mbd
from mbd.tasks import car2d, get_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-samples", type=int, default=2048)
    p.add_argument("--num-steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--demo", action="store_true")
    a = p.parse_args()
    cfg = get_task("car2d").config
    cfg = mbd.MBDConfig(**{**cfg.__dict__, "num_samples": a.num_samples,
                           "num_steps": a.num_steps})  # fmt: skip
    problem = car2d.make(demo=a.demo)
    solver = mbd.make_solver(problem, cfg)
    K, B, H = solver.num_updates, cfg.num_samples, problem.horizon
    ev = mbd.make_evaluator(problem)

    def bare(key):
        # The same env steps: K batches of B rollouts of H steps, scanned, nothing else.
        def body(c, k):
            z = jax.random.uniform(k, (B, H, 2), minval=-1, maxval=1)
            return c + jnp.sum(ev.evaluate(z).reward), None

        return jax.lax.scan(body, 0.0, jax.random.split(key, K))[0]

    bare_j = jax.jit(bare)
    t0 = time.perf_counter()
    jax.block_until_ready(solver.solve(jax.random.key(0)))
    compile_solve = time.perf_counter() - t0
    jax.block_until_ready(bare_j(jax.random.key(0)))
    ts, tb = [], []
    for r in range(a.repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(solver.solve(jax.random.key(r)))
        ts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        jax.block_until_ready(bare_j(jax.random.key(r)))
        tb.append(time.perf_counter() - t0)
    ms, mb = statistics.median(ts), statistics.median(tb)
    print(json.dumps({
        "device": str(jax.devices()[0].device_kind), "num_samples": B, "updates": K,
        "horizon": H, "env_steps": K * B * H, "first_call_seconds": round(compile_solve, 3),
        "solve_median_seconds": round(ms, 4), "bare_rollout_median_seconds": round(mb, 4),
        "ratio": round(ms / mb, 3), "env_steps_per_second_bare": round(K * B * H / mb),
        "solve_all": [round(t, 4) for t in ts], "bare_all": [round(t, 4) for t in tb],
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
