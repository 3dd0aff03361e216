"""Engines side by side: native MuJoCo, MJX, MuJoCo Warp and Brax positional (issue 11).

    python benchmarks/bench_engines.py speed                  # every robot task, 3 engines
    python benchmarks/bench_engines.py plan --task hopper     # `mbd plan hopper --num-samples 128`
    python benchmarks/bench_engines.py rewards --seeds 0 1 2  # Table 4 budget, native engine

``speed``: per task and engine, in one process, a jitted ``vmap`` of ``rollout`` over
``--samples`` random control sequences of the task's horizon: the first call (compile
included) and the median of ``--rounds`` further calls, as env (control) steps per second.
The mean reward of those same control sequences is printed beside, to show how far the
engines' physics differ (Brax positional simulates other contact physics than MuJoCo).

``plan``: the wall time of the ``mbd plan`` command line per engine, each in its own
process with JAX's compilation cache off (imports, model build, compile and solve: what a
user waits for the first time), with the time to the first diffusion update (everything
but the solve) from its ``summary.json``.

``rewards``: MBD plan rewards of the paper's tasks at the paper's Table 4 budget (its
sample counts, N = 100, temperatures, horizons) on one engine, per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = (
    "hopper", "walker2d", "halfcheetah", "ant", "humanoidrun", "humanoidstandup",
    "humanoidjog", "pusht",
)  # fmt: skip


def _problem(name: str, engine: str, seed: int = 0):
    from mbd.tasks import get_task

    task = get_task(name)
    if engine.startswith("brax"):
        backend = engine.split("-", 1)[1] if "-" in engine else None
        return task.make(horizon=task.horizon, seed=seed, engine="brax", backend=backend)
    return task.make(horizon=task.horizon, seed=seed, engine=engine)


def speed(a) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mbd.problem import rollout

    rows = []
    for name in a.tasks:
        for engine in a.engines:
            t0 = time.perf_counter()
            problem = _problem(name, engine)
            build = time.perf_counter() - t0
            t, nu = problem.horizon, problem.action_dim
            rng = np.random.default_rng(0)
            z = jnp.asarray(rng.uniform(-1, 1, (a.samples, t, nu)), jnp.float32)
            f = jax.jit(jax.vmap(lambda z, p=problem: rollout(p, p.controls(z)).rewards))
            t0 = time.perf_counter()
            r = jax.block_until_ready(f(z))
            first = time.perf_counter() - t0
            times = []
            for _ in range(a.rounds):
                t0 = time.perf_counter()
                jax.block_until_ready(f(z))
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            row = {
                "task": name,
                "engine": engine,
                "build_s": round(build, 2),
                "first_call_s": round(first, 2),
                "call_s": round(med, 3),
                "env_steps_per_s": round(a.samples * t / med),
                "mean_reward": round(float(np.mean(np.asarray(r))), 4),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def plan(a) -> list[dict]:
    rows = []
    for engine in a.engines:
        with tempfile.TemporaryDirectory() as tmp:
            extra = ["--engine", engine]
            if engine.startswith("brax-"):
                extra = ["--engine", "brax", "--backend", engine.split("-", 1)[1]]
            cmd = ["mbd", "plan", a.task, "--num-samples", str(a.samples), "--quiet"]
            cmd += ["--num-steps", str(a.num_steps)] if a.num_steps else []
            cmd += [*extra, "--out", f"{tmp}/run"]
            t0 = time.perf_counter()
            env = dict(os.environ, MBD_CACHE_DIR="off")  # a first plan: nothing cached
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
            wall = time.perf_counter() - t0
            s = json.loads(Path(f"{tmp}/run/summary.json").read_text())
        row = {
            "task": a.task,
            "engine": engine,
            "command": " ".join(cmd[:-2]),
            "wall_s": round(wall, 1),
            "to_first_update_s": round(wall - s["solve_seconds"], 1),
            "compile_s": round(s["compile_seconds"], 2),
            "solve_s": round(s["solve_seconds"], 1),
            "reward": round(s["final_reward"], 3),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def rewards(a) -> list[dict]:
    import dataclasses

    from mbd.runner import plan_task
    from mbd.tasks import get_task, robots

    rows = []
    for name in a.tasks:
        task = get_task(name)
        cfg = robots.TABLE4[name]
        cfg = dataclasses.replace(task.config, **{
            k: getattr(cfg, k) for k in ("num_samples", "num_steps", "temperature")
        })  # fmt: skip
        for seed in a.seeds:
            out = plan_task(task, cfg, seed=seed, task_options={"engine": a.engine})
            s = out.summary
            row = {
                "task": name,
                "engine": s["engine"],
                "seed": seed,
                "num_samples": cfg.num_samples,
                "reward": round(s["final_reward"], 3),
                "paper_table2": robots.PAPER_TABLE2.get(name),
                "solve_s": round(s["solve_seconds"], 1),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--tasks", nargs="+", default=list(TASKS))
    s.add_argument("--engines", nargs="+", default=["mujoco", "mjx", "brax-positional"])
    s.add_argument("--samples", type=int, default=128)
    s.add_argument("--rounds", type=int, default=3)
    p = sub.add_parser("plan")
    p.add_argument("--task", default="hopper")
    p.add_argument("--engines", nargs="+", default=["mujoco", "brax-positional"])
    p.add_argument("--samples", type=int, default=128)
    p.add_argument("--num-steps", type=int, default=None)
    r = sub.add_parser("rewards")
    r.add_argument("--tasks", nargs="+", default=list(TASKS))
    r.add_argument("--engine", default="mujoco")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    a = ap.parse_args()
    rows = {"speed": speed, "plan": plan, "rewards": rewards}[a.mode](a)
    if a.out is not None:
        a.out.write_text(json.dumps({"argv": sys.argv[1:], "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
