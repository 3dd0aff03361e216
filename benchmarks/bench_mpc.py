"""Closed-loop MPC: return, control rate and compiles per task and method, over seeds.

    python benchmarks/bench_mpc.py                      # pendulum cartpole car2d hopper
    python benchmarks/bench_mpc.py --tasks pendulum --seeds 5 --out runs/bench_mpc

Every method gets the same budget per control step (samples x iterations) and the same
warm-up; car2d also runs ``mbd+demo`` (MBD with the RRT demonstration, which moves with
the loop). ``--mismatch`` adds runs whose plant mass is (1 + m) times the planner's
(pendulum and cart-pole). Prints a markdown table and writes ``DIR/mpc.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import mbd
from mbd.mpc import MPCConfig, make_controller, run_timed
from mbd.tasks import engine_options, get_task

ENGINE = "brax"  # robot tasks on the paper's Brax definitions, as docs/results.md measured

# task -> (horizon, control steps, samples, iterations per control step)
SETTINGS = {
    "pendulum": (30, 100, 256, 2),
    "cartpole": (40, 100, 256, 2),
    "car2d": (50, 50, 256, 2),
    "hopper": (20, 50, 64, 2),
    "walker2d": (20, 50, 64, 2),
    "halfcheetah": (20, 50, 64, 2),
    "ant": (20, 50, 64, 2),
    "humanoidstandup": (20, 50, 64, 2),
}
METHODS = ["mbd", "dial", "mppi", "cem", "ps"]


def run_task(task_name: str, methods: list[str], seeds: int, mismatch: list[float]) -> list:
    """All runs of one task: methods x seeds (x mismatches)."""
    task = get_task(task_name)
    horizon, steps, samples, iters = SETTINGS[task_name]
    cfg = mbd.MBDConfig(num_samples=samples, num_steps=50, temperature=0.1)
    mpc = MPCConfig(iterations=iters, warmup_iterations=49)
    rows = []
    names = list(methods) + (["mbd+demo"] if task.has_demo else [])
    for method in names:
        demo = method == "mbd+demo"
        problem = task.make(horizon=horizon, demo=demo, seed=0, **engine_options(task, ENGINE))
        ctrl = make_controller(problem, "mbd" if demo else method, cfg, mpc)
        for m in [0.0, *mismatch]:
            plant = None
            if m != 0.0:
                plant = {**problem.params, "mass": problem.params["mass"] * (1.0 + m)}
            for seed in range(seeds):
                p = task.make(horizon=horizon, demo=demo, seed=seed, **engine_options(task, ENGINE))
                t0 = time.perf_counter()
                timed = run_timed(
                    ctrl, jax.random.key(seed), steps, x0=p.init_state, plant_params=plant
                )
                rows.append(
                    {
                        "task": task_name,
                        "method": method,
                        "mismatch": m,
                        "seed": seed,
                        "return": float(np.mean(np.asarray(timed.result.rewards))),
                        "solve_ms_median": 1000 * float(np.median(timed.step_seconds)),
                        "solve_ms_max": 1000 * float(np.max(timed.step_seconds)),
                        "warmup_and_compile_seconds": timed.compile_seconds,
                        "step_compiles": timed.num_compiles,
                        "wall_seconds": time.perf_counter() - t0,
                        "horizon": horizon,
                        "steps": steps,
                        "samples": samples,
                        "iterations": iters,
                    }
                )
                r = rows[-1]
                print(
                    f"{task_name:<10} {method:<9} m={m:+.1f} s{seed} return {r['return']:+.3f}"
                    f" solve {r['solve_ms_median']:.1f} ms (max {r['solve_ms_max']:.1f})"
                    f" warm-up+compile {r['warmup_and_compile_seconds']:.1f}s"
                    f" step compiles {r['step_compiles']}",
                    flush=True,
                )
    return rows


def _signed(x: float) -> str:
    """+0.123 / -0.123, and +0.000 for anything that rounds to zero (no -0.000)."""
    return f"{(x if abs(x) >= 5e-4 else 0.0):+.3f}"


def table(rows: list) -> str:
    """Markdown: closed-loop return mean ± std over seeds, median solve time, compiles."""
    lines = [
        "| task | plant mass | method | return (mean ± std) | solve ms (median / max) "
        "| rate Hz | step compiles |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = []
    for r in rows:
        k = (r["task"], r["mismatch"], r["method"])
        if k not in keys:
            keys.append(k)
    for t, m, meth in keys:
        g = [r for r in rows if (r["task"], r["mismatch"], r["method"]) == (t, m, meth)]
        ret = np.array([r["return"] for r in g])
        med = float(np.median([r["solve_ms_median"] for r in g]))
        mx = float(np.max([r["solve_ms_max"] for r in g]))
        std = ret.std(ddof=1) if len(ret) > 1 else 0.0
        lines.append(
            f"| {t} | x{1 + m:.1f} | {meth} | {_signed(ret.mean())} ± {std:.3f} ({len(g)}) "
            f"| {med:.1f} / {mx:.1f} | {1000 / med:.0f} | {max(r['step_compiles'] for r in g)} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parses the options, runs, prints and saves."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["pendulum", "cartpole", "car2d", "hopper"])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--mismatch", type=float, nargs="*", default=[0.3, -0.3])
    ap.add_argument("--out", type=Path, default=Path("runs/bench_mpc"))
    a = ap.parse_args()
    unknown = [t for t in a.tasks if t not in SETTINGS]
    if unknown or a.seeds < 1:
        ap.error(f"tasks must be among {', '.join(SETTINGS)} and --seeds >= 1")
    rows = []
    for t in a.tasks:
        mm = a.mismatch if t in ("pendulum", "cartpole") else []
        rows += run_task(t, a.methods, a.seeds, mm)
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "mpc.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))
    (a.out / "table.md").write_text(table(rows) + "\n")


if __name__ == "__main__":
    main()
