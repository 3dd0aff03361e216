"""Open-loop plan reward at equal budget, with and without spline controls.

    python benchmarks/bench_splines.py                          # hopper walker2d ant
    python benchmarks/bench_splines.py --tasks hopper --seeds 3 --knots 10

Each (task, parameterization, method) compiles once and runs every seed through the
same program (the seed's reset noise is the solve's x0). Prints a markdown table of the
mean per-step reward (mean ± std over seeds) and writes ``DIR/splines.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from mbd.baselines import get_method, method_config
from mbd.tasks import engine_options, get_task

ENGINE = "brax"  # robot tasks on the paper's Brax definitions, as docs/results.md measured


def _key(row: dict) -> tuple:
    return (row["task"], row["method"], row["spline"])


def main() -> None:
    """Parses the options, runs, prints and saves."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["hopper", "walker2d", "ant"])
    ap.add_argument("--methods", nargs="+", default=["mbd"])
    ap.add_argument("--splines", nargs="+", default=["none", "linear", "cubic"])
    ap.add_argument("--knots", type=int, default=10)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=49)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_splines"))
    a = ap.parse_args()
    if a.seeds < 1 or a.knots < 1 or a.samples < 2 or a.iterations < 1:
        ap.error("--seeds, --knots, --iterations must be >= 1 and --samples >= 2")
    rows = []
    for t in a.tasks:
        task = get_task(t)
        for kind in a.splines:
            base = task.make(horizon=task.horizon, seed=0, **engine_options(task, ENGINE))
            if kind != "none":
                base = dataclasses.replace(base, knots=a.knots, spline=kind)
            for m in a.methods:
                cfg = method_config(m, task.config, a.samples, a.iterations)
                solver = get_method(m).make(base, cfg)
                t0 = time.perf_counter()
                run = solver.solve.compile(jax.random.key(0))
                compile_s = time.perf_counter() - t0
                for seed in range(a.seeds):
                    x0 = task.make(
                        horizon=task.horizon, seed=seed, **engine_options(task, ENGINE)
                    ).init_state
                    t0 = time.perf_counter()
                    res = jax.block_until_ready(run(jax.random.key(seed), x0=x0))
                    rows.append(
                        {
                            "task": t,
                            "spline": kind,
                            "knots": None if kind == "none" else a.knots,
                            "method": m,
                            "seed": seed,
                            "reward": float(res.reward),
                            "solve_seconds": time.perf_counter() - t0,
                            "compile_seconds": compile_s,
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
                a.out.mkdir(parents=True, exist_ok=True)
                (a.out / "splines.json").write_text(json.dumps(rows, indent=1))
    lines = ["| task | method | controls | reward (mean ± std over seeds) |", "|---|---|---|---|"]
    for t in a.tasks:
        for m in a.methods:
            for kind in a.splines:
                key = (t, m, kind)
                r = np.array([x["reward"] for x in rows if _key(x) == key])
                label = "one per step" if kind == "none" else f"{kind}, {a.knots} knots"
                std = r.std(ddof=1) if len(r) > 1 else 0.0
                lines.append(f"| {t} | {m} | {label} | {r.mean():.3f} ± {std:.3f} ({len(r)}) |")
    print("\n".join(lines))
    (a.out / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
