"""Pieces shared by the zeroth-order baselines: ranking, diagnostics, the scanned solve.

Every baseline searches the same normalized space as MBD (controls z in [-1, 1]^{T x nu}
for a :class:`~mbd.problem.Problem`), scores samples with the same
:func:`~mbd.evaluate.make_evaluator`, and returns the same :class:`~mbd.solver.MBDResult`.
Rewards are maximized. Constraints (Eq. 1d) are handled as MBD's p_g (Eq. 10d) does:
feasible samples rank above every infeasible one; when no sample is feasible, samples
are ranked by their total violation (the step is reported as a fallback).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbd.problem import Instance
from mbd.solver import (
    ConfigError,
    Evaluation,
    Evaluator,
    Solver,
    StepInfo,
    make_scan_solve,
)

Array = jax.Array


def is_int(v: Any) -> bool:
    """Whether ``v`` is an integer (and not a bool)."""
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def check_int(name: str, value: Any, low: int) -> None:
    """Raises :class:`ConfigError` unless ``value`` is an integer >= ``low``."""
    if not is_int(value) or value < low:
        raise ConfigError(name, f"must be an integer >= {low} (got {value})")


def check_float(
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    low_open: bool = True,
    high_open: bool = False,
) -> None:
    """Raises :class:`ConfigError` unless ``value`` is a finite float in the range."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open or high == math.inf else "]"
        raise ConfigError(name, f"must be finite and in {lo}{low}, {high}{hi} (got {value})")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raises :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)} (got {value})")


class Ranking(NamedTuple):
    """How a batch of samples ranks, best first (see :func:`rank_samples`).

    Attributes:
        order: sample indices sorted best first, int (B,).
        score: the quantity ranked within the pool: reward (feasible samples), or minus
            the violation (fallback), (B,); 0 for invalid samples.
        pool: samples that take part (feasible ones, or valid ones in a fallback), (B,).
        feasible: finite reward and no constraint violation, bool (B,).
        valid: finite reward and violation, bool (B,).
        fallback: scalar bool, no sample feasible.
    """

    order: Array
    score: Array
    pool: Array
    feasible: Array
    valid: Array
    fallback: Array


def rank_samples(ev: Evaluation) -> Ranking:
    """Ranks samples: feasible by reward, then infeasible by violation, invalid last.

    Args:
        ev: evaluation of B samples.

    Returns:
        :class:`Ranking`. Ties keep the sample order (a stable sort), so the ranking is
        deterministic.
    """
    valid = jnp.isfinite(ev.reward) & jnp.isfinite(ev.violation)
    feasible = valid & (ev.violation <= 0.0)
    fallback = ~jnp.any(feasible)
    pool = jnp.where(fallback, valid, feasible)
    # Tier 0: feasible; 1: valid but infeasible; 2: invalid (NaN / inf).
    tier = jnp.where(feasible, 0, jnp.where(valid, 1, 2))
    key_in_tier = jnp.where(feasible, -ev.reward, jnp.where(valid, ev.violation, 0.0))
    order = jnp.lexsort((key_in_tier, tier))  # last key is the primary one
    score = jnp.where(feasible, ev.reward, jnp.where(valid, -ev.violation, 0.0))
    return Ranking(
        order=order, score=score, pool=pool, feasible=feasible, valid=valid, fallback=fallback
    )


def step_info(
    ev: Evaluation,
    rank: Ranking,
    ess: Array,
    noise_std: Array,
    num_samples: int,
    temperature: Array = float("nan"),
) -> StepInfo:
    """Diagnostics of one iteration, with the meaning MBD gives them.

    Args:
        ev: evaluation of the B samples.
        rank: their ranking.
        ess: effective sample size (or number of elites).
        noise_std: sampling standard deviation of the iteration (mean over dimensions).
        num_samples: B.
        temperature: lambda of the weights (MPPI); NaN for methods without one.

    Returns:
        :class:`~mbd.solver.StepInfo` of scalars.
    """
    n = jnp.float32(num_samples)
    finite_r = jnp.where(rank.valid, ev.reward, 0.0)
    return StepInfo(
        reward_mean=jnp.sum(finite_r) / jnp.maximum(jnp.sum(rank.valid), 1),
        reward_max=jnp.max(jnp.where(rank.feasible, ev.reward, -jnp.inf)),
        feasible_fraction=jnp.sum(rank.feasible) / n,
        valid_fraction=jnp.sum(rank.valid) / n,
        fallback=rank.fallback,
        ess=jnp.asarray(ess, jnp.float32),
        noise_std=jnp.asarray(noise_std, jnp.float32),
        temperature=jnp.asarray(temperature, jnp.float32),
    )


@struct.dataclass
class Best:
    """Best sample seen so far (feasible by reward, else least violation).

    Attributes:
        z: the sample, shape ``shape``.
        reward: its score (-inf before any valid sample).
        violation: its total constraint violation (inf before any valid sample).
    """

    z: Array
    reward: Array
    violation: Array


def init_best(z: Array) -> Best:
    """An empty :class:`Best` holding ``z`` (replaced by the first valid sample)."""
    return Best(z=z, reward=jnp.array(-jnp.inf), violation=jnp.array(jnp.inf))


def update_best(best: Best, samples: Array, ev: Evaluation, rank: Ranking) -> Best:
    """Keeps the better of ``best`` and this batch's top-ranked sample.

    Args:
        best: best so far.
        samples: the batch (B, *shape).
        ev: its evaluation.
        rank: its ranking.

    Returns:
        The updated :class:`Best`.
    """
    i = rank.order[0]
    r, v, ok = ev.reward[i], ev.violation[i], rank.valid[i]
    feas_new, feas_old = v <= 0.0, best.violation <= 0.0
    better = ok & jnp.where(
        feas_new, ~feas_old | (r > best.reward), ~feas_old & (v < best.violation)
    )
    return Best(
        z=jnp.where(better, samples[i], best.z),
        reward=jnp.where(better, r, best.reward),
        violation=jnp.where(better, v, best.violation),
    )


def evaluate_samples(
    evaluator: Evaluator, samples: Array, inst: Instance | None = None
) -> tuple[Array, Evaluation]:
    """Clips samples to the box (where the search is bounded) and scores them.

    Args:
        evaluator: the problem's evaluator.
        samples: (B, *shape).
        inst: the problem instance (None: the problem's own).

    Returns:
        (the samples the rollout applied, their :class:`~mbd.evaluate.Evaluation`).
    """
    if evaluator.bounded:
        samples = jnp.clip(samples, -1.0, 1.0)
    return samples, evaluator.evaluate(samples, inst)


def initial_mean(evaluator: Evaluator, guess: Array | None) -> Array:
    """The initial guess in normalized units (zeros, as MBD's reference reading).

    Args:
        evaluator: supplies the shape.
        guess: optional array of shape ``evaluator.shape``.

    Returns:
        float32 array of shape ``evaluator.shape``.
    """
    shape = evaluator.shape
    if guess is None:
        return jnp.zeros(shape, jnp.float32)
    g = jnp.asarray(guess, jnp.float32)
    if g.shape != shape:
        raise ValueError(f"initial guess has shape {g.shape}, expected {shape}")
    return g


def baseline_solver(
    init: Callable[..., Any],
    step: Callable[..., tuple[Any, StepInfo]],
    output: Callable[[Any], Array],
    evaluator: Evaluator,
    num_updates: int,
    progress: Callable[[int, StepInfo], None] | None = None,
) -> Solver:
    """A baseline's :class:`~mbd.solver.Solver` from its pure functions.

    Args:
        init: ``init(key, guess) -> state``.
        step: ``step(key, state, inst=None) -> (state, StepInfo)``.
        output: ``output(state) -> z``, the solution a state holds, normalized.
        evaluator: the problem's evaluator.
        num_updates: K, iterations of a solve.
        progress: optional host callback ``progress(k, info)`` per iteration.

    Returns:
        The :class:`~mbd.solver.Solver`; its ``solve`` is one jitted scan
        (:func:`~mbd.solver.make_scan_solve`), with keys split as MBD splits them and
        the solution clipped to the box before its replay.
    """
    return Solver(
        init=init,
        step=step,
        solve=make_scan_solve(
            init, step, output, evaluator, num_updates, progress=progress, clip_output=True
        ),
        evaluate=evaluator.evaluate,
        replay=evaluator.replay,
        shape=evaluator.shape,
        num_updates=num_updates,
        output=output,
    )
