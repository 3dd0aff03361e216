"""Random shooting: the floor every optimizer must beat.

Each iteration draws fresh samples, uniform over the action box (or Gaussian around the
initial guess), with no adaptation; the best sample seen (feasible ones by reward first)
is returned. Same budget as every other method: samples per iteration x iterations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
from flax import struct

from mbd.baselines._common import (
    Best,
    baseline_solver,
    check_choice,
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
class RandomConfig:
    """Hyper-parameters of random shooting.

    Attributes:
        num_samples: samples per iteration (>= 1).
        num_iterations: iterations K (>= 1).
        distribution: ``uniform`` over [-1, 1] (bounded searches; Gaussian with ``std``
            otherwise) or ``gaussian`` around the initial guess.
        std: std of the Gaussian (> 0).
    """

    num_samples: int = 2048
    num_iterations: int = 99
    distribution: Literal["uniform", "gaussian"] = "uniform"
    std: float = 0.5

    def __post_init__(self) -> None:
        validate_random(self)


def validate_random(config: RandomConfig) -> None:
    """Checks every field; raises :class:`~mbd.solver.ConfigError`."""
    check_int("num_samples", config.num_samples, 1)
    check_int("num_iterations", config.num_iterations, 1)
    check_choice("distribution", config.distribution, ("uniform", "gaussian"))
    check_float("std", config.std, 0.0)


@struct.dataclass
class RandomState:
    """Random-shooting state.

    Attributes:
        center: the initial guess (normalized), shape ``shape``.
        best: best sample so far.
        step: iterations done, int32.
    """

    center: jax.Array
    best: Best
    step: jax.Array


def make_random(
    problem: Problem | Objective,
    config: RandomConfig | None = None,
    progress: Callable[[int, StepInfo], None] | None = None,
    parallel: Parallel = None,
) -> Solver:
    """Builds random shooting, with the interface of :func:`mbd.make_solver`.

    Args:
        problem: a Problem or Objective.
        config: hyper-parameters (``RandomConfig()`` if None).
        progress: optional host callback ``progress(k, info)`` per iteration.
        parallel: where the samples are evaluated (devices, chunks; see
            :mod:`mbd.parallel`).

    Returns:
        A :class:`~mbd.solver.Solver`; ``solve`` returns the best sample seen.
    """
    config = RandomConfig() if config is None else config
    validate_random(config)
    ev_fn = make_evaluator(problem, parallel, config.num_samples)
    shape, n, K = ev_fn.shape, config.num_samples, config.num_iterations
    uniform = config.distribution == "uniform" and ev_fn.bounded

    def init(key: jax.Array, guess: jax.Array | None = None) -> RandomState:
        del key
        c = initial_mean(ev_fn, guess)
        return RandomState(center=c, best=init_best(c), step=jnp.zeros((), jnp.int32))

    def step(
        key: jax.Array, state: RandomState, inst: Instance | None = None
    ) -> tuple[RandomState, StepInfo]:
        if uniform:
            raw = jax.random.uniform(key, (n, *shape), jnp.float32, -1.0, 1.0)
            std = jnp.sqrt(1.0 / 3.0)
        else:
            raw = state.center + config.std * jax.random.normal(key, (n, *shape), jnp.float32)
            std = config.std
        samples, ev = evaluate_samples(ev_fn, raw, inst)
        rank = rank_samples(ev)
        new = RandomState(
            center=state.center,
            best=update_best(state.best, samples, ev, rank),
            step=state.step + 1,
        )
        return new, step_info(ev, rank, 1.0, std, n)

    def output(state: RandomState) -> jax.Array:
        return state.best.z

    return baseline_solver(init, step, output, ev_fn, K, progress)
