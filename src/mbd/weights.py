"""MBD's sample weights: Eq. 10d (p_J p_g) and Eq. 13 (with a demonstration).

w = exp(normalized reward / lambda) for the samples that satisfy every constraint, 0 for
the others and for non-finite rewards; with a demonstration, the larger of the model's
and the demonstration's term, still gated by the constraints. lambda is the config's
temperature, or the one that gives the weights a target effective sample size
(:func:`ess_temperature`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp

from mbd.problem import Array

if TYPE_CHECKING:
    from mbd.solver import MBDConfig


class Weights(NamedTuple):
    """Normalized sample weights and what went into them.

    Attributes:
        weights: w_k / sum w, shape (B,); all zero when no sample has a finite reward.
        log_weights: log w_k (unnormalized, -inf for weight 0), shape (B,).
        feasible: samples with finite reward that satisfy every constraint, bool (B,).
        valid: samples with a finite reward, bool (B,).
        fallback: scalar bool, True when no sample was feasible and the weights rank the
            valid samples by constraint violation instead.
        temperature: scalar lambda of Eq. 2 the weights used: the config's, or the one
            its ``ess_target`` chose.
    """

    weights: Array
    log_weights: Array
    feasible: Array
    valid: Array
    fallback: Array
    temperature: Array


def _masked_moments(x: Array, mask: Array, relative: bool = False) -> tuple[Array, Array]:
    """Mean and std of x over mask. A flat batch, std < 1e-4, gets std 1, as in the
    authors' code; with ``relative``, only a std at float32 rounding of the mean
    (< 1e-6 |mean|) counts as flat, so rewards that differ by less than 1e-4 near an
    optimum still rank (the adaptive noise size reaches that far)."""
    n = jnp.maximum(jnp.sum(mask), 1)
    xm = jnp.where(mask, x, 0.0)
    mean = jnp.sum(xm) / n
    var = jnp.sum(jnp.where(mask, (x - mean) ** 2, 0.0)) / n
    std = jnp.sqrt(var)
    flat = 1e-6 * jnp.abs(mean) + 1e-30 if relative else 1e-4
    return mean, jnp.where(std <= flat, 1.0, std)


ESS_BISECTIONS = 40
"""Bisection steps on log lambda in :func:`ess_temperature` (a bracket of 1e12 shrinks
to a factor of 1 + 3e-11)."""


def ess_temperature(score: Array, pool: Array, fraction: float | Array) -> Array:
    """The temperature at which the weights reach a given effective sample size.

    With w_k = exp(s_k / lambda) over the pooled samples, the effective sample size
    m(lambda) = (sum w)^2 / sum w^2 rises monotonically from the number of samples tied
    at the best score (lambda -> 0) to the pool's size n (lambda -> inf). The lambda
    with m(lambda) = max(1, fraction * n) is found by bisection on log lambda inside
    [1e-6 s, 1e6 s], s the pooled scores' std (1 if flat); a target beyond the bracket
    returns its end.

    Args:
        score: scores s_k (normalized rewards, Eq. 2), shape (B,); ignored outside pool.
        pool: the samples weighed, bool (B,).
        fraction: target m / n, in (0, 1].

    Returns:
        lambda > 0, scalar float32.
    """
    n = jnp.sum(pool).astype(jnp.float32)
    target = jnp.maximum(fraction * n, 1.0)
    top = jnp.max(jnp.where(pool, score, -jnp.inf))
    gap = jnp.where(pool, score - jnp.where(jnp.isfinite(top), top, 0.0), -jnp.inf)
    _, spread = _masked_moments(jnp.where(pool, score, 0.0), pool)

    def ess(log_lam):
        w = jnp.exp(gap / jnp.exp(log_lam))  # in (0, 1], 1 at the best: no overflow
        return jnp.sum(w) ** 2 / jnp.maximum(jnp.sum(w**2), 1e-30)

    def bisect(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        low_ess = ess(mid) < target
        return jnp.where(low_ess, mid, lo), jnp.where(low_ess, hi, mid)

    log_s = jnp.log(spread)
    span = math.log(1e6)
    lo, hi = jax.lax.fori_loop(0, ESS_BISECTIONS, bisect, (log_s - span, log_s + span))
    return jnp.exp(0.5 * (lo + hi)).astype(jnp.float32)


def compute_weights(
    reward: Array,
    violation: Array,
    config: MBDConfig,
    demo_loglik: Array | None = None,
    demo_reward: float | None = None,
) -> Weights:
    """Sample weights of one diffusion step: Eq. 10d, or Eq. 13 with a demonstration.

    Args:
        reward: per-sample score (mean per-step reward), shape (B,); may hold NaN/inf.
        violation: per-sample total constraint violation (>= 0; 0 is feasible), (B,).
        config: supplies the temperature (or its ESS target), normalization and reading;
            with ``ess_target`` the demonstration term (Eq. 13) takes the same lambda.
        demo_loglik: per-sample demonstration log-likelihood log p_demo in [-1, 0], (B,).
        demo_reward: r_demo, the demonstration's own reward (p_J(Y_demo)).

    Returns:
        :class:`Weights`.
    """
    valid = jnp.isfinite(reward) & jnp.isfinite(violation)
    if demo_loglik is not None:
        valid = valid & jnp.isfinite(demo_loglik)
    feasible = valid & (violation <= 0.0)
    fallback = ~jnp.any(feasible)
    # p_g (Eq. 10d): only feasible samples count; with none feasible, rank the valid
    # samples by how little they violate (a reported fallback, not in the paper).
    pool = jnp.where(fallback, valid, feasible)
    score = jnp.where(fallback, -violation, reward)
    score = jnp.where(valid, score, 0.0)
    if config.normalize == "zscore":
        mu, sigma = _masked_moments(score, pool, relative=config.noise_size == "adaptive")
    else:
        mu, sigma = jnp.zeros(()), jnp.ones(())
    if config.ess_target is None:
        lam = config.temperature
    else:  # the temperature that gives the weights the target effective sample size
        lam = ess_temperature((score - mu) / sigma, pool, config.ess_target)
    neg_inf = jnp.array(-jnp.inf, dtype=score.dtype)
    # log p_J + log p_g (Eq. 2, 10d), with J = -reward normalized by the batch.
    log_w = jnp.where(pool, (score - mu) / sigma / lam, neg_inf)
    if demo_loglik is not None:
        if demo_reward is None:
            raise ValueError("demo_reward is needed with demo_loglik")
        # p_g multiplies the demonstration term too (Eq. 10d, 13): a sample that breaks
        # a constraint gets weight 0 however close it is to the demonstration, unless no
        # sample is feasible (then ``pool`` is every valid sample, as above).
        q = jnp.where(pool, demo_loglik, 0.0)
        if config.reading == "paper":
            # w_demo = p_demo(Y) p_J(Y_demo) (Eq. 11-13): p_demo peaks at 1 on the demo.
            log_demo = (q + demo_reward - mu) / sigma / lam
            log_w = jnp.maximum(log_w, jnp.where(pool, log_demo, neg_inf))  # Eq. 13
        else:
            # Authors' code: demo likelihood shifted so the batch's best matches r_demo,
            # max with the model term, then z-scored and divided by lambda once more.
            qmax = jnp.max(jnp.where(pool, q, -jnp.inf))
            log_demo = (q - qmax + demo_reward - mu) / sigma / lam
            log_w = jnp.maximum(log_w, jnp.where(pool, log_demo, neg_inf))
            m2, s2 = _masked_moments(jnp.where(pool, log_w, 0.0), pool & jnp.isfinite(log_w))
            log_w = jnp.where(jnp.isfinite(log_w), (log_w - m2) / s2 / lam, neg_inf)
    any_finite = jnp.any(jnp.isfinite(log_w))
    safe = jnp.where(any_finite, log_w, 0.0)
    w = jax.nn.softmax(safe)
    w = jnp.where(any_finite, w, 0.0)
    return Weights(
        weights=w,
        log_weights=log_w,
        feasible=feasible,
        valid=valid,
        fallback=fallback,
        temperature=jnp.asarray(lam, jnp.float32),
    )


__all__ = ["ESS_BISECTIONS", "Weights", "compute_weights", "ess_temperature"]
