"""Planning over a batch of models: risk measures and randomized MuJoCo models.

A plan is scored on K models at once (friction, masses, motor strength drawn around the
nominal; :func:`randomize_models`), and each sample's K returns are combined by a risk
measure (as hydrax does): the mean, the worst, or the CVaR (the mean of the worst
``alpha`` share). :class:`RandomizedStep` makes such a problem from K problems of the
same structure; its states are the nominal model's, so a plant, a controller and a view
use it as any other problem.

To keep the solver's per-step rewards, a measure is written as weights over the models
(:func:`risk_weights`): the combined per-step rewards are ``sum_k w_k r_k(t)``, whose
mean over t is the measure of the K mean returns.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mbd.problem import Array, Problem, PyTree

RISKS = ("mean", "worst", "cvar")


def risk_weights(returns: Array, risk: str = "mean", alpha: float = 0.25) -> Array:
    """Weights over K models whose weighted return is the risk measure.

    Args:
        returns: (K,) one sample's return on each model.
        risk: ``mean`` (1/K each), ``worst`` (all on the lowest return; the first of
            ties), or ``cvar`` (1/m on the m = ceil(alpha K) lowest).
        alpha: the CVaR's share of the worst models, in (0, 1].

    Returns:
        (K,) nonnegative weights summing to 1.
    """
    k = returns.shape[0]
    if risk == "mean":
        return jnp.full((k,), 1.0 / k, returns.dtype)
    if risk == "worst":
        return jax.nn.one_hot(jnp.argmin(returns), k, dtype=returns.dtype)
    if risk == "cvar":
        m = max(1, math.ceil(alpha * k))
        rank = jnp.argsort(jnp.argsort(returns))  # 0 = the lowest return
        return jnp.where(rank < m, 1.0 / m, 0.0).astype(returns.dtype)
    raise ValueError(f"risk must be one of {', '.join(RISKS)} (got {risk!r})")


def risk_measure(returns: Array, risk: str = "mean", alpha: float = 0.25) -> Array:
    """The risk measure of K returns (mean, worst, or CVaR_alpha): ``w . returns``."""
    return jnp.dot(risk_weights(returns, risk, alpha), returns)


@dataclasses.dataclass(frozen=True)
class Randomization:
    """How :func:`randomize_models` draws models around the nominal: each factor is
    drawn uniformly in its range and multiplies the model's value.

    Attributes:
        friction: the geoms' sliding friction.
        mass: every body's mass (and inertia, scaled alike).
        strength: the actuators' gains (a position servo's kp and its bias alike).
    """

    friction: tuple[float, float] = (0.7, 1.3)
    mass: tuple[float, float] = (0.9, 1.1)
    strength: tuple[float, float] = (0.9, 1.1)


def randomize_models(
    model: Any, num: int, seed: int = 0, spread: Randomization = Randomization()
) -> list[Any]:
    """K MuJoCo models around one: the nominal first, then ``num - 1`` drawn ones.

    Args:
        model: a ``mujoco.MjModel``.
        num: K >= 1.
        seed: seed of the draws.
        spread: the factors' ranges.

    Returns:
        K ``mujoco.MjModel`` copies (the first is the nominal, unchanged).
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be an integer >= 1 (got {num!r})")
    rng = np.random.default_rng(seed)
    out = [copy.copy(model)]
    for _ in range(num - 1):
        m = copy.copy(model)
        f = rng.uniform(*spread.friction)
        s = rng.uniform(*spread.mass)
        g = rng.uniform(*spread.strength)
        m.geom_friction[:, 0] *= f
        m.body_mass[:] *= s
        m.body_inertia[:] *= s
        m.actuator_gainprm[:, 0] *= g
        m.actuator_biasprm[:, 1:3] *= g  # a position servo's -kp q - kv q'
        out.append(m)
    return out


class RandomizedStep:
    """The step of K problems of one structure, for planning over the K models.

    Called as a step it moves the nominal model (the first); its whole-horizon
    ``rollout`` rolls each sample out on all K models from the same state and combines
    the per-step rewards by the risk measure (:func:`risk_weights` of the K mean
    returns). The states it returns are the nominal model's.

    Args:
        problems: K problems of the same state structure (the first is the nominal).
        risk: ``mean``, ``worst`` or ``cvar``.
        alpha: the CVaR's share.
    """

    def __init__(self, problems: Sequence[Problem], risk: str = "mean", alpha: float = 0.25):
        if not problems:
            raise ValueError("give at least one problem")
        if risk not in RISKS:
            raise ValueError(f"risk must be one of {', '.join(RISKS)} (got {risk!r})")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1] (got {alpha!r})")
        self.problems = list(problems)
        self.risk = risk
        self.alpha = float(alpha)
        nominal = self.problems[0].step
        for name in ("physics", "mj_model", "engine", "dt"):
            if hasattr(nominal, name):
                setattr(self, name, getattr(nominal, name))

    def __call__(self, state: PyTree, u: Array, *params: PyTree) -> tuple[PyTree, Array]:
        nxt, _ = self.problems[0].step(state, u, *params)
        rewards = jnp.stack([p.step(state, u, *params)[1] for p in self.problems])
        return nxt, jnp.dot(risk_weights(rewards, self.risk, self.alpha), rewards)

    def rollout(self, x0: PyTree, controls: Array, *params: PyTree) -> tuple[PyTree, Array]:
        """``(states of the nominal model (T, ...), combined rewards (T,))``."""
        from mbd.problem import rollout as roll

        p = params[0] if params else None
        runs = [roll(q, controls, x0, p) for q in self.problems]
        rewards = jnp.stack([r.rewards for r in runs])  # (K, T)
        w = risk_weights(jnp.mean(rewards, axis=1), self.risk, self.alpha)
        return runs[0].states, w @ rewards


def randomized_problem(
    make: Callable[[Any], Problem], models: Sequence[Any], risk: str = "mean", alpha: float = 0.25
) -> Problem:
    """A problem planned over K models.

    Args:
        make: ``make(model) -> Problem``, e.g. ``lambda m: make_quadruped(model=m)``.
        models: K models (:func:`randomize_models`), the nominal first.
        risk: ``mean``, ``worst`` or ``cvar``.
        alpha: the CVaR's share.

    Returns:
        The nominal problem with a :class:`RandomizedStep` over the K.
    """
    problems = [make(m) for m in models]
    return dataclasses.replace(problems[0], step=RandomizedStep(problems, risk, alpha))


__all__ = [
    "RISKS",
    "Randomization",
    "RandomizedStep",
    "randomize_models",
    "randomized_problem",
    "risk_measure",
    "risk_weights",
]
