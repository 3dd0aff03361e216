"""MBD's adaptive options on the seven robot tasks, at the sweep's budget (issue 13).

    python benchmarks/bench_adaptive_robots.py --out runs/adaptive_robots.json

MBD at 64 samples x 49 updates (N = 50), horizon 50 (push-T 40), 3 seeds, on the native
MuJoCo engine, once per variant: the paper's MBD (the default), the adaptive noise size,
and the adaptive size with diagonal shaped noise. The baselines at the same budget come from
``mbd bench --engine mujoco --methods mbd cmaes cem mppi --num-samples 64 --iterations 49``.
Prints one JSON line per run and a table of means ± sample std (as `mbd report` does).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

TASKS = ("hopper", "halfcheetah", "ant", "walker2d", "humanoidstandup", "humanoidrun", "pusht")
VARIANTS = {
    "mbd": {},
    "mbd-adaptive": {"noise_size": "adaptive"},
    "mbd-adaptive-diag": {"noise_size": "adaptive", "noise_shape": "diagonal"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=49)
    ap.add_argument("--engine", default="mujoco")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()

    from mbd.baselines import method_config
    from mbd.runner import plan_task
    from mbd.tasks import get_task

    rows = []
    for name in a.tasks:
        task = get_task(name)
        base = method_config("mbd", task.config, a.samples, a.iterations)
        for variant in a.variants:
            cfg = dataclasses.replace(base, **VARIANTS[variant])
            for seed in a.seeds:
                out = plan_task(task, cfg, seed=seed, task_options={"engine": a.engine})
                s = out.summary
                row = {"task": name, "variant": variant, "seed": seed,
                       "reward": round(s["final_reward"], 4),
                       "solve_s": round(s["solve_seconds"], 1)}  # fmt: skip
                print(json.dumps(row), flush=True)
                rows.append(row)
    print("| task | " + " | ".join(a.variants) + " |")
    print("|---|" + "---|" * len(a.variants))
    for name in a.tasks:
        cells = []
        for v in a.variants:
            r = [x["reward"] for x in rows if x["task"] == name and x["variant"] == v]
            cells.append(f"{statistics.mean(r):.3f} ± {statistics.stdev(r):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if a.out is not None:
        a.out.write_text(json.dumps({"args": vars(a) | {"out": str(a.out)}, "rows": rows}))


if __name__ == "__main__":
    main()
