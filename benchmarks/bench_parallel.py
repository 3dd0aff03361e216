"""Scale-out figures (mbd.parallel): solve time over forced CPU devices; memory per sample.

    python benchmarks/bench_parallel.py devices --task hopper --samples 128   # 1, 2, 4 devices
    python benchmarks/bench_parallel.py memory --tasks car2d hopper           # largest B in 24 GiB

``devices``: one subprocess per device count, each started with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and solving with the samples
sharded over its N devices (``ParallelConfig(devices=N)``): compile time and the median
solve time of ``--rounds`` solves. On a CPU the N devices share the machine's cores: XLA
runs one device's rollout scan mostly on one thread, so up to one device per core is a
speed-up, and more is overhead.

``memory``: XLA's memory analysis of the compiled solve (arguments + outputs +
temporaries, :func:`mbd.compile.program_bytes`) at two sample counts, with and without
``--chunk``; memory is affine in B, so the two give the largest B that fits in
``--budget-gib``, which is then compiled to confirm the figure (and, with ``--run``,
solved for one update where that is quick).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ENGINE = "brax"  # robot tasks on the paper's Brax definitions, as docs/results.md measured


def _solve_times(task_name: str, samples: int, iterations: int, devices: int, rounds: int):
    import jax

    from mbd.baselines import method_config
    from mbd.parallel import ParallelConfig
    from mbd.solver import make_solver
    from mbd.tasks import engine_options, get_task

    task = get_task(task_name)
    problem = task.make(horizon=task.horizon, demo=False, seed=0, **engine_options(task, ENGINE))
    cfg = method_config("mbd", task.config, samples, iterations)
    solver = make_solver(problem, cfg, parallel=ParallelConfig(devices=devices))
    key = jax.random.key(0)
    t0 = time.perf_counter()
    run = solver.solve.compile(key)
    compile_s = time.perf_counter() - t0
    times, reward = [], None
    for r in range(rounds):
        t0 = time.perf_counter()
        res = jax.block_until_ready(run(jax.random.key(r)))
        times.append(time.perf_counter() - t0)
        reward = float(res.reward) if reward is None else reward
    return {
        "devices": jax.device_count(),
        "compile_s": compile_s,
        "solve_s": statistics.median(times),
        "reward_seed0": reward,
    }


def devices_main(a: argparse.Namespace) -> None:
    """One subprocess per device count; prints a markdown table."""
    rows = []
    for n in a.counts:
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        env["MBD_CACHE_DIR"] = "off"
        code = (
            "import json, sys; sys.path.insert(0, 'benchmarks'); import bench_parallel as b; "
            f"print(json.dumps(b._solve_times({a.task!r}, {a.samples}, {a.iterations}, {n}, "
            f"{a.rounds})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], file=sys.stderr, flush=True)
    base = rows[0]["solve_s"]
    print(f"{a.task}, {a.samples} samples x {a.iterations} updates, {os.cpu_count()} cores")
    print("| devices | compile (s) | solve (s, median) | solve / 1 device | reward (seed 0) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['devices']} | {r['compile_s']:.1f} | {r['solve_s']:.2f} | "
            f"{r['solve_s'] / base:.2f} | {r['reward_seed0']:.4f} |"
        )


def _program_bytes(task_name: str, samples: int, chunk: int | None) -> tuple[int, int]:
    import jax

    from mbd.baselines import method_config
    from mbd.compile import program_bytes
    from mbd.parallel import ParallelConfig
    from mbd.solver import make_solver
    from mbd.tasks import engine_options, get_task

    task = get_task(task_name)
    problem = task.make(horizon=task.horizon, demo=False, seed=0, **engine_options(task, ENGINE))
    cfg = method_config("mbd", task.config, samples, 1)
    solve = make_solver(problem, cfg, parallel=ParallelConfig(chunk=chunk)).solve
    compiled = solve.lower(jax.random.key(0)).compile()  # no memory check: measuring
    return program_bytes(compiled), solve.floor_bytes


def memory_main(a: argparse.Namespace) -> None:
    """Largest sample count in the budget, per task, with and without chunks."""
    budget = a.budget_gib * 2**30
    print(f"budget {a.budget_gib} GiB; XLA's memory analysis of the compiled solve")
    print(
        "| task | chunk | bytes / sample | fixed (MiB) | largest B | XLA at that B (GiB) "
        "| estimate before compiling (GiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for task in a.tasks:
        for chunk in (None, a.chunk):
            lo, hi = a.probe
            b_lo, _ = _program_bytes(task, lo, chunk)
            b_hi, _ = _program_bytes(task, hi, chunk)
            per = (b_hi - b_lo) / (hi - lo)
            fixed = b_lo - per * lo
            largest = int((budget - fixed) / per)
            # round down to a multiple of the chunk, then confirm with a compile
            if chunk is not None:
                largest -= largest % chunk
            at, floor = _program_bytes(task, largest, chunk)
            while at > budget:
                largest = int(largest * 0.98)
                at, floor = _program_bytes(task, largest, chunk)
            print(
                f"| {task} | {chunk or '-'} | {per:.1f} | {fixed / 2**20:.1f} | {largest:,} | "
                f"{at / 2**30:.2f} | {floor / 2**30:.2f} |",
                flush=True,
            )


def main() -> None:
    """Parses the options and runs one of the two measurements."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    d = sub.add_parser("devices", help="solve time with 1, 2, 4 forced CPU devices")
    d.add_argument("--task", default="hopper")
    d.add_argument("--samples", type=int, default=128)
    d.add_argument("--iterations", type=int, default=49)
    d.add_argument("--rounds", type=int, default=3)
    d.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4])
    m = sub.add_parser("memory", help="largest sample count in a memory budget")
    m.add_argument("--tasks", nargs="+", default=["car2d", "hopper"])
    m.add_argument("--chunk", type=int, default=4096)
    m.add_argument("--budget-gib", type=float, default=24.0)
    m.add_argument("--probe", type=int, nargs=2, default=[20_000, 40_000])
    a = ap.parse_args()
    if a.what == "devices":
        devices_main(a)
    else:
        memory_main(a)


if __name__ == "__main__":
    main()
