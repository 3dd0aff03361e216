"""The cross-entropy method (CEM) with a diagonal Gaussian.

Rubinstein (1999); Botev et al. (2013). Each iteration samples
z ~ N(mu, diag(sigma^2)), keeps the ``elite_fraction`` best samples (feasible ones by
reward first, as MBD's p_g; Eq. 10d of Pan et al. 2024), and refits the mean and the
per-dimension std to the elites, optionally smoothed with the previous values. Pan et al.
note that MBD with one diffusion step is CEM-like (Sec. 4.1).
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
class CEMConfig:
    """Hyper-parameters of CEM.

    Attributes:
        num_samples: samples per iteration (>= 1).
        num_iterations: iterations K (>= 1).
        elite_fraction: share of samples refitted to, in (0, 1]; at least one elite.
        init_std: initial per-dimension std (normalized units, > 0).
        min_std: floor on the refitted std (>= 0).
        smoothing: alpha in [0, 1): new = alpha * old + (1 - alpha) * refit (0: refit).
        output: returned solution: the final ``mean`` or the ``best`` sample seen.
    """

    num_samples: int = 2048
    num_iterations: int = 99
    elite_fraction: float = 0.1
    init_std: float = 0.5
    min_std: float = 0.0
    smoothing: float = 0.0
    output: Literal["mean", "best"] = "mean"

    def __post_init__(self) -> None:
        validate_cem(self)

    @property
    def num_elites(self) -> int:
        """Number of elites: max(1, round(elite_fraction * num_samples))."""
        return max(1, min(self.num_samples, round(self.elite_fraction * self.num_samples)))


def validate_cem(config: CEMConfig) -> None:
    """Checks every field; raises :class:`~mbd.solver.ConfigError`."""
    check_int("num_samples", config.num_samples, 1)
    check_int("num_iterations", config.num_iterations, 1)
    check_float("elite_fraction", config.elite_fraction, 0.0, 1.0)
    check_float("init_std", config.init_std, 0.0)
    check_float("min_std", config.min_std, 0.0, low_open=False)
    check_float("smoothing", config.smoothing, 0.0, 1.0, low_open=False, high_open=True)
    check_choice("output", config.output, ("mean", "best"))


@struct.dataclass
class CEMState:
    """CEM state.

    Attributes:
        mean: mean (normalized), shape ``shape``.
        std: per-dimension std, shape ``shape``.
        best: best sample so far.
        step: iterations done, int32.
    """

    mean: jax.Array
    std: jax.Array
    best: Best
    step: jax.Array


def make_cem(
    problem: Problem | Objective,
    config: CEMConfig | None = None,
    progress: Callable[[int, StepInfo], None] | None = None,
    parallel: Parallel = None,
) -> Solver:
    """Builds CEM's pure functions, with the interface of :func:`mbd.make_solver`.

    Args:
        problem: a Problem or Objective.
        config: hyper-parameters (``CEMConfig()`` if None).
        progress: optional host callback ``progress(k, info)`` per iteration.
        parallel: where the samples are evaluated (devices, chunks; see
            :mod:`mbd.parallel`).

    Returns:
        A :class:`~mbd.solver.Solver`.
    """
    config = CEMConfig() if config is None else config
    validate_cem(config)
    ev_fn = make_evaluator(problem, parallel, config.num_samples)
    shape, n, K, n_elite = ev_fn.shape, config.num_samples, config.num_iterations, config.num_elites
    a = config.smoothing

    def init(key: jax.Array, guess: jax.Array | None = None) -> CEMState:
        del key
        mean = initial_mean(ev_fn, guess)
        std = jnp.full(shape, config.init_std, jnp.float32)
        return CEMState(mean=mean, std=std, best=init_best(mean), step=jnp.zeros((), jnp.int32))

    def step(
        key: jax.Array, state: CEMState, inst: Instance | None = None
    ) -> tuple[CEMState, StepInfo]:
        eps = jax.random.normal(key, (n, *shape), jnp.float32)
        samples, ev = evaluate_samples(ev_fn, state.mean + state.std * eps, inst)
        rank = rank_samples(ev)
        elites = samples[rank.order[:n_elite]]
        ok = jnp.any(rank.valid)
        fit_mean = jnp.mean(elites, axis=0)
        fit_std = jnp.maximum(jnp.sqrt(jnp.mean((elites - fit_mean) ** 2, axis=0)), config.min_std)
        mean = jnp.where(ok, a * state.mean + (1.0 - a) * fit_mean, state.mean)
        std = jnp.where(ok, a * state.std + (1.0 - a) * fit_std, state.std)
        new = CEMState(
            mean=mean, std=std, best=update_best(state.best, samples, ev, rank), step=state.step + 1
        )
        return new, step_info(ev, rank, float(n_elite), jnp.mean(state.std), n)

    def output(state: CEMState) -> jax.Array:
        return state.best.z if config.output == "best" else state.mean

    return baseline_solver(init, step, output, ev_fn, K, progress)
