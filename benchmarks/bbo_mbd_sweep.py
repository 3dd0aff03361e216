"""Sweep of MBD's black-box hyper-parameters (beta_end, lambda, schedule) at a fixed
budget of 64 x 50 = 3,200 evaluations, on seeds 100 and 101 (not the bench's 0..4).

    PYTHONPATH=src python benchmarks/bbo_mbd_sweep.py

Prints, per (dim, function), the default's mean best value and the four best settings.
"""

import itertools
import warnings

import jax
import numpy as np

import mbd
from mbd.bbo import make_test_problem


def main() -> None:
    warnings.filterwarnings("ignore")
    grid = list(itertools.product([3e-3, 1e-2, 3e-2], [0.5, 1.0], ["linear", "cosine"]))
    for d in (200, 800):
        for name in ("ackley", "rastrigin", "levy", "sphere"):
            res = {}
            for be, lam, sch in grid:
                cfg = mbd.MBDConfig(
                    num_samples=64, num_steps=51, temperature=lam, beta_end=be, schedule=sch
                )
                vals = []
                for s in (100, 101):
                    p = make_test_problem(name, d, seed=s)
                    solver = mbd.make_solver(p.objective(), cfg)
                    vals.append(float(-solver.solve(jax.random.key(s)).reward))
                res[(be, lam, sch)] = float(np.mean(vals))
            best = sorted(res.items(), key=lambda kv: kv[1])[:4]
            print(
                d,
                name,
                "default",
                round(res[(1e-2, 1.0, "linear")], 2),
                "best",
                [(k, round(v, 2)) for k, v in best],
                flush=True,
            )


if __name__ == "__main__":
    main()
