"""Model Predictive Path Integral control (MPPI) as an open-loop trajectory optimizer.

Williams et al. (2017), "Information theoretic MPC for model-based reinforcement
learning". Each iteration samples controls around the current mean with a Gaussian of
standard deviation sigma_k (fixed, or decayed over the iterations), rolls them out, and
replaces the mean by the exponentially weighted average of the samples,
w ∝ exp(r / lambda) with the reward r normalized as MBD normalizes it (Eq. 2 and 10d of
Pan et al. 2024; infeasible samples get weight 0, as p_g). With a decaying sigma_k this is
MBD's reference reading with another noise schedule; MBD's own schedule is
sigma_i = sqrt(1 - alpha_bar_i).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
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
from mbd.solver import TEMPERATURE_RANGE, MBDConfig, Solver, StepInfo
from mbd.weights import compute_weights

NoiseSchedule = Literal["fixed", "linear", "exponential"]
NOISE_SCHEDULES: tuple[str, ...] = ("fixed", "linear", "exponential")
OUTPUTS: tuple[str, ...] = ("mean", "best")


@dataclasses.dataclass(frozen=True)
class MPPIConfig:
    """Hyper-parameters of MPPI.

    Attributes:
        num_samples: samples per iteration (>= 1).
        num_iterations: iterations K (>= 1).
        temperature: lambda of w ∝ exp(normalized reward / lambda), in [1e-30, 1e30].
        noise_std: sampling std sigma_0 in normalized units (> 0); the std of every
            iteration with the ``fixed`` schedule.
        noise_schedule: ``fixed``, or ``linear`` / ``exponential`` decay from
            ``noise_std`` to ``noise_std_final`` over the K iterations.
        noise_std_final: last std of a decaying schedule (> 0).
        normalize: ``zscore`` (batch z-score, as MBD) or ``none`` (raw rewards).
        output: returned solution: the final ``mean`` or the ``best`` sample seen.
    """

    num_samples: int = 2048
    num_iterations: int = 99
    temperature: float = 0.1
    noise_std: float = 0.5
    noise_schedule: NoiseSchedule = "fixed"
    noise_std_final: float = 0.05
    normalize: Literal["zscore", "none"] = "zscore"
    output: Literal["mean", "best"] = "mean"

    def __post_init__(self) -> None:
        validate_mppi(self)


def validate_mppi(config: MPPIConfig) -> None:
    """Checks every field; raises :class:`~mbd.solver.ConfigError`."""
    check_int("num_samples", config.num_samples, 1)
    check_int("num_iterations", config.num_iterations, 1)
    check_float("temperature", config.temperature, *TEMPERATURE_RANGE, low_open=False)
    check_float("noise_std", config.noise_std, 0.0)
    check_choice("noise_schedule", config.noise_schedule, NOISE_SCHEDULES)
    check_float("noise_std_final", config.noise_std_final, 0.0)
    check_choice("normalize", config.normalize, ("zscore", "none"))
    check_choice("output", config.output, OUTPUTS)


def noise_stds(config: MPPIConfig) -> np.ndarray:
    """Sampling std of each iteration, shape (K,).

    Args:
        config: the configuration.

    Returns:
        sigma_0 .. sigma_{K-1}: constant, or linear / geometric from ``noise_std`` to
        ``noise_std_final``.
    """
    k = config.num_iterations
    s0, s1 = config.noise_std, config.noise_std_final
    frac = np.arange(k) / max(k - 1, 1)
    if config.noise_schedule == "linear":
        return (s0 + (s1 - s0) * frac).astype(np.float32)
    if config.noise_schedule == "exponential":
        return (s0 * (s1 / s0) ** frac).astype(np.float32)
    return np.full(k, s0, np.float32)


@struct.dataclass
class MPPIState:
    """MPPI state.

    Attributes:
        mean: current mean control sequence (normalized), shape ``shape``.
        best: best sample so far.
        step: iterations done, int32.
    """

    mean: jax.Array
    best: Best
    step: jax.Array


def make_mppi(
    problem: Problem | Objective,
    config: MPPIConfig | None = None,
    progress: Callable[[int, StepInfo], None] | None = None,
    parallel: Parallel = None,
) -> Solver:
    """Builds MPPI's pure functions, with the interface of :func:`mbd.make_solver`.

    Args:
        problem: a Problem or Objective.
        config: hyper-parameters (``MPPIConfig()`` if None).
        progress: optional host callback ``progress(k, info)`` per iteration.
        parallel: where the samples are evaluated (devices, chunks; see
            :mod:`mbd.parallel`).

    Returns:
        A :class:`~mbd.solver.Solver` (``init``, ``step``, jitted ``solve``, ...).
    """
    config = MPPIConfig() if config is None else config
    validate_mppi(config)
    ev_fn = make_evaluator(problem, parallel, config.num_samples)
    shape, n, K = ev_fn.shape, config.num_samples, config.num_iterations
    stds = jnp.asarray(noise_stds(config))
    weighting = MBDConfig(temperature=config.temperature, normalize=config.normalize)

    def init(key: jax.Array, guess: jax.Array | None = None) -> MPPIState:
        del key
        mean = initial_mean(ev_fn, guess)
        return MPPIState(mean=mean, best=init_best(mean), step=jnp.zeros((), jnp.int32))

    def step(
        key: jax.Array, state: MPPIState, inst: Instance | None = None
    ) -> tuple[MPPIState, StepInfo]:
        std = stds[jnp.clip(state.step, 0, K - 1)]
        eps = jax.random.normal(key, (n, *shape), jnp.float32)
        samples, ev = evaluate_samples(ev_fn, state.mean + std * eps, inst)
        rank = rank_samples(ev)
        # w ∝ exp(normalized r / lambda) * p_g (Eq. 2, 10d); NaN rewards get weight 0.
        wt = compute_weights(ev.reward, ev.violation, weighting)
        any_w = jnp.any(wt.weights > 0)
        mean = jnp.where(any_w, jnp.tensordot(wt.weights, samples, axes=1), state.mean)
        ess = jnp.where(any_w, 1.0 / jnp.sum(wt.weights**2), 0.0)
        new = MPPIState(
            mean=mean, best=update_best(state.best, samples, ev, rank), step=state.step + 1
        )
        return new, step_info(ev, rank, ess, std, n, wt.temperature)

    def output(state: MPPIState) -> jax.Array:
        return state.best.z if config.output == "best" else state.mean

    return baseline_solver(init, step, output, ev_fn, K, progress)
