"""Run one timed MBD plan of a registered task and describe it (used by ``mbd plan``).

Compile time and solve time are measured apart: the solve is lowered and compiled
ahead of time, then run once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from mbd.parallel import Parallel, num_devices, resolve
from mbd.problem import Problem
from mbd.sim import engine_of
from mbd.solver import MBDConfig, MBDResult, StepInfo, make_solver
from mbd.tasks import TaskSpec


class PlanOutcome(NamedTuple):
    """A finished plan.

    Attributes:
        problem: the task's problem.
        result: the solver's result (host NumPy arrays inside).
        summary: JSON-ready description (see :func:`plan_task`).
    """

    problem: Problem
    result: MBDResult
    summary: dict[str, Any]


def plan_task(
    task: TaskSpec,
    config: MBDConfig,
    seed: int = 0,
    horizon: int | None = None,
    demo: bool = False,
    progress: Callable[[int, StepInfo], None] | None = None,
    on_compiled: Callable[[float], None] | None = None,
    task_options: dict[str, Any] | None = None,
    knots: int | None = None,
    spline: str = "linear",
    parallel: Parallel = None,
) -> PlanOutcome:
    """Builds the task's problem, compiles and runs one MBD solve, and summarizes it.

    Args:
        task: registered task.
        config: solver hyper-parameters.
        seed: seed of the solve (and of the task's random parts, e.g. the RRT demo).
        horizon: horizon T; the task's recommendation if None.
        demo: use the task's demonstration (Eq. 13).
        progress: host callback per diffusion update, see :func:`~mbd.solver.make_solver`.
        on_compiled: called with the compile time in seconds, before the solve starts.
        task_options: extra keyword arguments of ``task.make`` (e.g. ``backend``); those
            that are None are left out.
        knots: search this many spline knots per actuator instead of the controls.
        spline: ``zero``, ``linear`` or ``cubic`` interpolation between knots.
        parallel: devices and chunks of the sample evaluation (:mod:`mbd.parallel`).

    Raises:
        mbd.compile.SolveTooLarge: when the compiled solve needs more memory than is
            available (checked before it runs).

    Returns:
        :class:`PlanOutcome`. ``summary`` holds task, method, seed, horizon, demo, the full
        config, ``final_reward`` (mean per-step reward of the returned controls replayed
        open loop), ``reward_history`` (mean sample reward per update),
        ``best_reward_history``, ``feasible_fraction_history``, ``temperature_history``
        (each update's lambda: the config's, or the one ``ess_target`` chose),
        ``violation``,
        ``invalid_steps`` (updates where no sample had a finite reward),
        ``reward_finite``,
        ``compile_seconds``, ``solve_seconds``, ``env_steps`` and task metrics.
    """
    if demo and not task.has_demo:
        raise ValueError(f"task {task.name!r} has no demonstration")
    horizon = task.horizon if horizon is None else horizon
    options = {k: v for k, v in (task_options or {}).items() if v is not None}
    problem = task.make(horizon=horizon, demo=demo, seed=seed, **options)
    if knots is not None:
        problem = dataclasses.replace(problem, knots=knots, spline=spline)
    solver = make_solver(problem, config, progress=progress, parallel=parallel)
    key = jax.random.key(seed)
    t0 = time.perf_counter()
    compiled = solver.solve.compile(key)  # SolveTooLarge if it cannot fit in memory
    compile_seconds = time.perf_counter() - t0
    if on_compiled is not None:
        on_compiled(compile_seconds)
    t0 = time.perf_counter()
    result = jax.block_until_ready(compiled(key))
    solve_seconds = time.perf_counter() - t0
    result = jax.tree_util.tree_map(np.asarray, result)
    h = result.history
    env_steps = solver.num_updates * config.num_samples * horizon + horizon
    summary: dict[str, Any] = {
        "task": task.name,
        "method": "mbd+demo" if demo else "mbd",
        "seed": seed,
        "horizon": horizon,
        "demo": demo,
        "config": dataclasses.asdict(config),
        "task_options": options,
        "engine": engine_of(problem),
        "knots": knots,
        "spline": spline if knots is not None else None,
        "final_reward": float(result.reward),
        "violation": float(result.violation),
        "feasible": bool(result.violation <= 0.0),
        "reward_history": [float(v) for v in h.reward_mean],
        "best_reward_history": [float(v) for v in h.reward_max],
        "feasible_fraction_history": [float(v) for v in h.feasible_fraction],
        "temperature_history": [float(v) for v in h.temperature],
        "fallback_steps": int(np.sum(h.fallback)),
        # updates in which no sample had a finite reward (the estimate did not move)
        "invalid_steps": int(np.sum(np.asarray(h.valid_fraction) <= 0.0)),
        "reward_finite": bool(np.isfinite(result.reward)),
        "compile_seconds": compile_seconds,
        "solve_seconds": solve_seconds,
        "env_steps": int(env_steps),
        "num_updates": solver.num_updates,
        "devices": num_devices(parallel),
        "chunk": resolve(parallel)[1],
        "memory_bytes": compiled.memory_bytes,
    }
    if task.metrics is not None:
        summary["metrics"] = task.metrics(problem, result)
    return PlanOutcome(problem=problem, result=result, summary=summary)
