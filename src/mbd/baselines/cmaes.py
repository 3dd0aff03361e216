"""CMA-ES through evosax: full covariance where it fits in memory, separable otherwise.

Hansen (2016), "The CMA Evolution Strategy: A Tutorial" (arXiv 1604.00772), with the
full-covariance algorithm ``evosax.algorithms.CMA_ES`` and the separable (diagonal)
variant of Ros & Hansen (2008), ``evosax.algorithms.Sep_CMA_ES``. evosax minimizes a
fitness and shapes it by rank only; this adapter hands it each sample's rank (feasible
samples by reward first, as MBD's p_g, Eq. 10d of Pan et al. 2024), so that maximizing
the reward is exact. The sampling distribution is unbounded: the rollout applies the
samples clipped to the action box, and the returned mean is clipped.

evosax is an extra: ``pip install 'mbd[baselines]'``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

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

Variant = Literal["auto", "full", "separable"]
VARIANTS: tuple[str, ...] = ("auto", "full", "separable")


@dataclasses.dataclass(frozen=True)
class CMAESConfig:
    """Hyper-parameters of CMA-ES (the rest are evosax's defaults, Hansen 2016).

    Attributes:
        num_samples: population size lambda per iteration (>= 2).
        num_iterations: iterations (generations) K (>= 1).
        init_std: initial step size sigma_0 in normalized units (> 0).
        variant: ``full`` covariance, ``separable`` (diagonal), or ``auto``: full when
            the d x d matrices fit in ``max_covariance_mb``, separable otherwise.
        max_covariance_mb: memory allowed for the full variant's matrices (C, B and the
            eigendecomposition's work, ~3 d^2 float32), in MiB (> 0).
        output: returned solution: the final ``mean`` or the ``best`` sample seen.
    """

    num_samples: int = 2048
    num_iterations: int = 99
    init_std: float = 0.5
    variant: Variant = "auto"
    max_covariance_mb: float = 256.0
    output: Literal["mean", "best"] = "mean"

    def __post_init__(self) -> None:
        validate_cmaes(self)

    def resolved_variant(self, num_dims: int) -> str:
        """``full`` or ``separable`` for a search of ``num_dims`` dimensions."""
        if self.variant != "auto":
            return self.variant
        mb = 3 * 4 * num_dims**2 / 2**20
        return "full" if mb <= self.max_covariance_mb else "separable"


def validate_cmaes(config: CMAESConfig) -> None:
    """Checks every field; raises :class:`~mbd.solver.ConfigError`."""
    check_int("num_samples", config.num_samples, 2)
    check_int("num_iterations", config.num_iterations, 1)
    check_float("init_std", config.init_std, 0.0)
    check_choice("variant", config.variant, VARIANTS)
    check_float("max_covariance_mb", config.max_covariance_mb, 0.0)
    check_choice("output", config.output, ("mean", "best"))


def _evosax() -> Any:
    try:
        from evosax import algorithms
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the CMA-ES baseline needs evosax: pip install 'mbd[baselines]'") from e
    return algorithms


@struct.dataclass
class CMAESState:
    """CMA-ES state.

    Attributes:
        es: evosax's state (mean, step size, paths, covariance), flat over d = prod(shape).
        best: best sample so far.
        step: iterations done, int32.
    """

    es: Any
    best: Best
    step: jax.Array


def make_cmaes(
    problem: Problem | Objective,
    config: CMAESConfig | None = None,
    progress: Callable[[int, StepInfo], None] | None = None,
    parallel: Parallel = None,
) -> Solver:
    """Builds CMA-ES's pure functions, with the interface of :func:`mbd.make_solver`.

    Args:
        problem: a Problem or Objective.
        config: hyper-parameters (``CMAESConfig()`` if None).
        progress: optional host callback ``progress(k, info)`` per iteration.
        parallel: where the samples are evaluated (devices, chunks; see
            :mod:`mbd.parallel`).

    Returns:
        A :class:`~mbd.solver.Solver`.
    """
    config = CMAESConfig() if config is None else config
    validate_cmaes(config)
    algorithms = _evosax()
    ev_fn = make_evaluator(problem, parallel, config.num_samples)
    shape, n, K = ev_fn.shape, config.num_samples, config.num_iterations
    d = math.prod(shape)
    cls = algorithms.CMA_ES if config.resolved_variant(d) == "full" else algorithms.Sep_CMA_ES
    es = cls(population_size=n, solution=jnp.zeros((d,), jnp.float32))
    params = es.default_params.replace(std_init=jnp.asarray(config.init_std, jnp.float32))

    def init(key: jax.Array, guess: jax.Array | None = None) -> CMAESState:
        mean = initial_mean(ev_fn, guess)
        es_state = es.init(key, mean.reshape(d), params)
        return CMAESState(es=es_state, best=init_best(mean), step=jnp.zeros((), jnp.int32))

    def step(
        key: jax.Array, state: CMAESState, inst: Instance | None = None
    ) -> tuple[CMAESState, StepInfo]:
        k_ask, k_tell = jax.random.split(key)
        pop, es_state = es.ask(k_ask, state.es, params)  # Hansen (2016) Eq. 38-40
        diag = es_state.C if es_state.C.ndim == 1 else jnp.diagonal(es_state.C)
        noise = es_state.std * jnp.sqrt(jnp.mean(jnp.maximum(diag, 0.0)))
        samples, ev = evaluate_samples(ev_fn, pop.reshape(n, *shape), inst)
        rank = rank_samples(ev)
        # evosax minimizes and uses ranks only: fitness = rank position, best = 0.
        fitness = jnp.zeros(n, jnp.float32).at[rank.order].set(jnp.arange(n, dtype=jnp.float32))
        es_state, _ = es.tell(k_tell, pop, fitness, es_state, params)  # Eq. 41-47
        new = CMAESState(
            es=es_state, best=update_best(state.best, samples, ev, rank), step=state.step + 1
        )
        return new, step_info(ev, rank, params.mu_eff, noise, n)

    def output(state: CMAESState) -> jax.Array:
        if config.output == "best":
            return state.best.z
        return state.es.mean.reshape(shape)

    return baseline_solver(init, step, output, ev_fn, K, progress)
