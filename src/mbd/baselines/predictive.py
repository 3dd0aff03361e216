"""Predictive sampling: the simplest sampling planner, a common MPC baseline.

Each iteration samples B - 1 perturbations of the current plan with a fixed std, keeps
the plan itself as the B-th candidate, and moves to the best candidate (feasible by
reward, else least violation). The plan never gets worse on the evaluated model, which
makes it a strong baseline in receding-horizon loops where the previous plan, shifted,
is already good (Howell et al. 2022, "Predictive Sampling", the MJPC planner).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from mbd.baselines._common import (
    Best,
    baseline_solver,
    check_float,
    check_int,
    evaluate_samples,
    init_best,
    initial_mean,
    rank_samples,
    step_info,
    update_best,
)
from mbd.evaluate import make_evaluator
from mbd.parallel import Parallel
from mbd.problem import Instance, Objective, Problem
from mbd.solver import Solver, StepInfo


@dataclasses.dataclass(frozen=True)
class PSConfig:
    """Hyper-parameters of predictive sampling.

    Attributes:
        num_samples: candidates per iteration, the current plan included (>= 2).
        num_iterations: iterations K (>= 1).
        noise_std: std of the perturbations, normalized units (> 0).
    """

    num_samples: int = 2048
    num_iterations: int = 99
    noise_std: float = 0.3

    def __post_init__(self) -> None:
        validate_ps(self)


def validate_ps(config: PSConfig) -> None:
    """Checks every field; raises :class:`~mbd.solver.ConfigError`."""
    check_int("num_samples", config.num_samples, 2)
    check_int("num_iterations", config.num_iterations, 1)
    check_float("noise_std", config.noise_std, 0.0)


@struct.dataclass
class PSState:
    """Predictive-sampling state.

    Attributes:
        plan: the current plan (normalized), shape ``shape``.
        best: best candidate so far (the plan after the first iteration).
        step: iterations done, int32.
    """

    plan: jax.Array
    best: Best
    step: jax.Array


def make_predictive(
    problem: Problem | Objective,
    config: PSConfig | None = None,
    progress: Callable[[int, StepInfo], None] | None = None,
    parallel: Parallel = None,
) -> Solver:
    """Builds predictive sampling, with the interface of :func:`mbd.make_solver`.

    Args:
        problem: a Problem or Objective.
        config: hyper-parameters (``PSConfig()`` if None).
        progress: optional host callback ``progress(k, info)`` per iteration.
        parallel: where the samples are evaluated (devices, chunks; see
            :mod:`mbd.parallel`).

    Returns:
        A :class:`~mbd.solver.Solver`; ``solve`` returns the best candidate.
    """
    config = PSConfig() if config is None else config
    validate_ps(config)
    ev_fn = make_evaluator(problem, parallel, config.num_samples)
    shape, n, K = ev_fn.shape, config.num_samples, config.num_iterations

    def init(key: jax.Array, guess: jax.Array | None = None) -> PSState:
        del key
        plan = initial_mean(ev_fn, guess)
        return PSState(plan=plan, best=init_best(plan), step=jnp.zeros((), jnp.int32))

    def step(
        key: jax.Array, state: PSState, inst: Instance | None = None
    ) -> tuple[PSState, StepInfo]:
        eps = jax.random.normal(key, (n - 1, *shape), jnp.float32)
        raw = jnp.concatenate([state.plan[None], state.plan + config.noise_std * eps])
        samples, ev = evaluate_samples(ev_fn, raw, inst)
        rank = rank_samples(ev)
        best = update_best(init_best(state.plan), samples, ev, rank)  # best of this batch
        new = PSState(
            plan=best.z, best=update_best(state.best, samples, ev, rank), step=state.step + 1
        )
        return new, step_info(ev, rank, 1.0, config.noise_std, n)

    def output(state: PSState) -> jax.Array:
        return state.plan

    return baseline_solver(init, step, output, ev_fn, K, progress)
