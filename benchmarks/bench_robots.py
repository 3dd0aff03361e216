"""Robot-task benchmarks: physics throughput, MBD overhead, final rewards.

For each task (on its default backend, or ``--backend``):

1. ``env_steps_per_s``: bare batched rollouts, i.e. one jitted ``lax.scan`` over K
   batches of ``vmap``-ed rollouts of B control sequences of the task's horizon
   (K * B * H env steps), timed after compilation. The controls of batch k follow the
   distribution of MBD's update k exactly (``--controls solver``, the default):
   clip(Ybar_k + sqrt(1 - alpha_bar_i) eps), with the means Ybar_k taken from the timed
   solve's iterates. Contact-rich physics costs more or less on the CPU depending on
   the controls, so only this is like for like; ``--controls zero`` samples around a zero
   mean and ``--controls uniform`` uniformly in the box, for comparison.
2. ``mbd_over_bare``: wall time of a compiled MBD solve with B samples and N diffusion
   steps (K = N - 1 updates, the same K * B * H env steps plus one H-step replay) divided
   by the bare rollouts' time. Target: <= 1.10 (the solver's own work vanishes). Both
   are compiled first, then run in turns (``--rounds`` rounds, default 5) so that load
   from other processes on a shared machine hits both alike; the ratio reported is the
   median over rounds of the per-round ratio (the best-time ratio is kept too).
3. With ``--reward-seeds S`` (e.g. 3): MBD's final reward (mean per-step reward of the
   open-loop replay) over seeds 0..S-1 with ``--reward-samples`` samples and the task's
   recommended N and temperature, next to the paper's Table 2.

Usage::

    PYTHONPATH=src python benchmarks/bench_robots.py --tasks hopper ant walker2d \\
        --samples 256 --steps 20 --reward-seeds 3 --reward-samples 128 --out bench.json

Needs the ``brax`` extra. Numbers depend on the machine: state it with them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import mbd
from mbd.tasks import get_task, robots


def _compile(fn, *args):
    """(compiled function, compile seconds)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _interleaved(fns: list, arg, rounds: int) -> np.ndarray:
    """Wall times (rounds, len(fns)) of compiled functions run in turns, so that load
    from other processes on a shared machine hits them alike."""
    times = np.zeros((rounds, len(fns)))
    for r in range(rounds):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(arg))
            times[r, i] = time.perf_counter() - t0
    return times


def bare_rollouts(
    problem: mbd.Problem,
    batch: int,
    stds: np.ndarray,
    means: np.ndarray | None,
    uniform: bool = False,
):
    """A function key -> total reward of len(stds) batches of ``batch`` rollouts.

    Batch k rolls out clip(means[k] + stds[k] * eps, -1, 1) (zero means if ``means`` is
    None); with ``uniform``, uniform random controls in the whole box.
    """
    if means is None:
        means = np.zeros((len(stds), *problem.shape), np.float32)

    def one(z):
        return jnp.mean(mbd.rollout(problem, problem.controls(z)).rewards)

    def run(key):
        def body(carry, xs):
            k, std, mean = xs
            shape = (batch, *problem.shape)
            if uniform:
                z = jax.random.uniform(k, shape, minval=-1.0, maxval=1.0)
            else:
                z = jnp.clip(mean + std * jax.random.normal(k, shape), -1.0, 1.0)
            return carry + jnp.sum(jax.vmap(one)(z)), None

        keys = jax.random.split(key, len(stds))
        xs = (keys, jnp.asarray(stds), jnp.asarray(means))
        total, _ = jax.lax.scan(body, jnp.zeros(()), xs)
        return total

    return run


def solver_stds(cfg: mbd.MBDConfig) -> np.ndarray:
    """Sampling std of each update of a reference-reading solve: sqrt(1 - alpha_bar_i),
    i = N-1 .. 1."""
    sch = mbd.make_schedule(cfg.schedule, cfg.num_steps, cfg.beta_start, cfg.beta_end)
    i = np.arange(cfg.num_steps - 1, 0, -1)
    return np.sqrt(1.0 - sch.alpha_bars[i]).astype(np.float32)


def solver_means(iterates: np.ndarray) -> np.ndarray:
    """The sampling mean of each update of a reference-reading solve, (K, H, nu), from the
    solve's iterates (K, H, nu): zero for the first update, then the mean after each."""
    it = np.asarray(iterates, np.float32)
    return np.concatenate([np.zeros_like(it[:1]), it[:-1]], axis=0)


def bench_task(
    name: str,
    backend: str | None,
    samples: int,
    steps: int,
    controls: str = "solver",
    rounds: int = 5,
) -> dict:
    task = get_task(name)
    problem = task.make(horizon=task.horizon, seed=0, backend=backend)
    cfg = dataclasses.replace(task.config, num_samples=samples, num_steps=steps)
    if cfg.reading != "reference":
        raise SystemExit("the like-for-like bare rollouts follow the reference reading")
    k = cfg.num_updates
    key = jax.random.key(0)
    # The timed solve keeps its iterates (K x H x nu floats, nothing next to the rollouts)
    # so that one compile also gives the bare rollouts their means.
    cfg = dataclasses.replace(cfg, keep_iterates=True)
    solve, c_mbd = _compile(mbd.make_solver(problem, cfg).solve, key)
    means = solver_means(solve(key).iterates) if controls == "solver" else None
    fn = bare_rollouts(problem, samples, solver_stds(cfg), means, uniform=controls == "uniform")
    bare, c_bare = _compile(fn, key)
    t = _interleaved([bare, solve], key, rounds)
    t_bare = float(np.median(t[:, 0]))
    env_steps = k * samples * task.horizon
    return {
        "task": name,
        "backend": backend or task.backends[0],
        "horizon": task.horizon,
        "samples": samples,
        "updates": k,
        "controls": controls,
        "rounds": rounds,
        "env_steps": env_steps,
        "bare_seconds": t[:, 0].tolist(),
        "mbd_seconds": t[:, 1].tolist(),
        "env_steps_per_s": env_steps / t_bare,
        "mbd_over_bare": float(np.median(t[:, 1] / t[:, 0])),
        "mbd_over_bare_best": float(t[:, 1].min() / t[:, 0].min()),
        "compile_bare_s": c_bare,
        "compile_mbd_s": c_mbd,
    }


def reward_runs(name: str, backend: str | None, samples: int, seeds: int) -> dict:
    task = get_task(name)
    cfg = dataclasses.replace(task.config, num_samples=samples)
    rewards, times = [], []
    for seed in range(seeds):
        # the seed sets the env's reset noise too, so each seed is its own problem
        problem = task.make(horizon=task.horizon, seed=seed, backend=backend)
        solver = mbd.make_solver(problem, cfg)
        key = jax.random.key(seed)
        compiled = solver.solve.lower(key).compile()
        t0 = time.perf_counter()
        res = jax.block_until_ready(compiled(key))
        times.append(time.perf_counter() - t0)
        rewards.append(float(res.reward))
    return {
        "task": name,
        "samples": samples,
        "num_steps": cfg.num_steps,
        "temperature": cfg.temperature,
        "seeds": seeds,
        "rewards": rewards,
        "mean": float(np.mean(rewards)),
        "std": float(np.std(rewards)),
        "solve_seconds_mean": float(np.mean(times)),
        "paper_table2": robots.PAPER_TABLE2.get(name),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="*", default=[t.name for t in robots.TASKS])
    p.add_argument("--backend", default=None, help="backend (default: each task's own)")
    p.add_argument("--samples", type=int, default=256, help="B of the throughput runs")
    p.add_argument("--steps", type=int, default=20, help="N of the throughput runs")
    p.add_argument(
        "--controls",
        choices=["solver", "zero", "uniform"],
        default="solver",
        help="controls of the bare rollouts: MBD's own sample distribution (its means and "
        "noise), its noise around a zero mean, or uniform in the box",
    )
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (median reported)")
    p.add_argument("--reward-tasks", nargs="*", default=["hopper", "ant", "walker2d"])
    p.add_argument("--reward-seeds", type=int, default=0, help="seeds of the reward runs")
    p.add_argument("--reward-samples", type=int, default=128)
    p.add_argument("--out", default=None, help="JSON file for the results")
    a = p.parse_args()
    for flag, v in (("--samples", a.samples), ("--steps", a.steps), ("--rounds", a.rounds)):
        if v < (2 if flag == "--steps" else 1):
            p.error(f"{flag} must be at least {2 if flag == '--steps' else 1} (got {v})")
    out: dict = {
        "machine": {
            "cpu_count": __import__("os").cpu_count(),
            "platform": platform.platform(),
            "jax": jax.__version__,
            "device": str(jax.devices()[0].device_kind),
        },
        "throughput": [],
        "rewards": [],
    }
    print("| task | backend | env-steps/s (bare) | MBD / bare (median) | (best) | compile (s) |")
    print("|---|---|---|---|---|---|")
    for name in a.tasks:
        r = bench_task(name, a.backend, a.samples, a.steps, a.controls, a.rounds)
        out["throughput"].append(r)
        print(
            f"| {name} | {r['backend']} | {r['env_steps_per_s']:,.0f} | "
            f"{r['mbd_over_bare']:.3f} | {r['mbd_over_bare_best']:.3f} | "
            f"{r['compile_mbd_s']:.1f} |",
            flush=True,
        )
    if a.reward_seeds > 0:
        print("\n| task | samples | N | lambda | MBD reward (mean +- std over seeds) | Table 2 |")
        print("|---|---|---|---|---|---|")
        for name in a.reward_tasks:
            r = reward_runs(name, a.backend, a.reward_samples, a.reward_seeds)
            out["rewards"].append(r)
            per_seed = ", ".join(f"{v:.2f}" for v in r["rewards"])
            print(
                f"| {name} | {r['samples']} | {r['num_steps']} | {r['temperature']} | "
                f"{r['mean']:.2f} +- {r['std']:.2f} ({per_seed}) | {r['paper_table2']} |",
                flush=True,
            )
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
