"""MBD's noise shapes and sizes against pycma's CMA-ES at equal budgets.

    python benchmarks/bench_shaped_noise.py                       # d = 10, 3 seeds
    python benchmarks/bench_shaped_noise.py --dim 40 --budget 8000 --popsize 40
    python benchmarks/bench_shaped_noise.py --temperature 0.5     # MBD's lambda (default 1)

Each function is shifted and (where it is a rotated one) rotated per seed
(:func:`mbd.bbo.make_test_problem`); every method gets ``--budget`` evaluations in
batches of ``--popsize`` (MBD: the :func:`mbd.bbo.compare.mbd_config` schedule). Prints
the median over seeds of the best value (f - f*, lower is better) and the median run
time, compilation apart, for MBD with the schedule's noise size (isotropic, diagonal and
full shapes) and with the adaptive size (isotropic and full), and for CMA-ES.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

from mbd.bbo import make_test_problem, minimize
from mbd.bbo.compare import METHODS, mbd_config

FUNCTIONS = ("sphere", "ellipsoid", "discus", "bent_cigar", "rosenbrock_rotated", "sharp_ridge")


def main() -> None:
    """Parses the options, runs and prints a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS))
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--budget", type=int, default=10_000)
    ap.add_argument("--popsize", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0, help="MBD's lambda")
    a = ap.parse_args()
    variants = (
        ("isotropic", "schedule"),
        ("diagonal", "schedule"),
        ("full", "schedule"),
        ("isotropic", "adaptive"),
        ("full", "adaptive"),
    )
    print(
        f"d = {a.dim}, {a.budget} evaluations in batches of {a.popsize}, {a.seeds} seeds, "
        f"lambda {a.temperature}"
    )
    print("| function | " + " | ".join(f"mbd {s}, {z}" for s, z in variants) + " | cma |")
    print("|---|" + "---|" * (len(variants) + 1))
    for fn in a.functions:
        cells = []
        for shape, size in variants:
            cfg = dataclasses.replace(
                mbd_config(a.budget, a.popsize, temperature=a.temperature),
                noise_shape=shape,
                noise_size=size,
            )
            runs = [minimize(make_test_problem(fn, a.dim, seed=s), cfg, s) for s in range(a.seeds)]
            best = statistics.median(r.best_value for r in runs)
            sec = statistics.median(r.seconds for r in runs)
            cells.append(f"{best:.3g} ({sec:.2f} s)")
        traces = [
            METHODS["cma"].run(make_test_problem(fn, a.dim, seed=s), a.budget, a.popsize, s)
            for s in range(a.seeds)
        ]
        best = statistics.median(t.final_value for t in traces)
        sec = statistics.median(t.seconds for t in traces)
        cells.append(f"{best:.3g} ({sec:.2f} s)")
        print(f"| {fn} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
