"""MBD's adaptive search noise: a learned shape (diagonal or full covariance, CMA-ES's
rank-one and rank-mu updates on the weighted samples) and an adaptive size (the length
of the estimate's path), beside the paper's annealed schedule (``MBDConfig.noise_shape``,
``noise_size``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mbd.problem import Array


def shape_rates(kind: str, dim: int, ess: Array) -> tuple[Array, Array, Array]:
    """The rates of :func:`shape_update`, CMA-ES's (Hansen, "The CMA Evolution Strategy: A
    Tutorial", 2016, Eq. 24, 30, 57) with m the weights' effective sample size:
    the path's c_c = (4 + m / D) / (D + 4 + 2 m / D), the rank-one
    c_1 = 2 / ((D + 1.3)^2 + m) and the rank-mu c_mu = 2 (m - 2 + 1/m) / ((D + 2)^2 + m),
    the last two times (D + 2) / 3 for a diagonal S, as in separable CMA-ES.

    Returns:
        (c_c, c_1, c_mu), with c_1 + c_mu <= 0.9.
    """
    m = jnp.maximum(ess, 1.0)
    c_c = (4.0 + m / dim) / (dim + 4.0 + 2.0 * m / dim)
    c_1 = 2.0 / ((dim + 1.3) ** 2 + m)
    c_mu = 2.0 * (m - 2.0 + 1.0 / m) / ((dim + 2.0) ** 2 + m)
    if kind == "diagonal":
        c_1, c_mu = c_1 * (dim + 2.0) / 3.0, c_mu * (dim + 2.0) / 3.0
    c_1 = jnp.minimum(c_1, 0.45)
    c_mu = jnp.clip(c_mu, 0.0, 0.9 - c_1)
    return c_c, c_1, c_mu


def shape_update(
    kind: str,
    shape: Array,
    noise: Array,
    weights: Array,
    path: Array,
    c_1: Array,
    c_mu: Array,
) -> Array:
    """One update of the learned noise shape S from a step's weighted samples.

    MBD's forward process adds noise epsilon ~ N(0, I) (Eq. 3). With epsilon ~ N(0, S)
    instead, for a fixed S, every step of the derivation holds with I replaced by S: the
    samples of step i come from N(Ybar_i, sigma_i^2 S) (reference reading) and the Monte
    Carlo score estimate keeps its form, the weighted mean (Eq. 9b, 10c). The same
    weights also tell which of the noise draws n_k = (Y_k - Ybar_i) / sigma_i the reward
    favoured; their weighted second moment C = sum_k w_k n_k n_k^T (the rank-mu term of
    CMA-ES) and the path p of the estimate's steps (the rank-one term) show the
    directions worth searching. S follows them, normalized to a mean eigenvalue of 1 so
    that the schedule (or the adaptive size) keeps setting the noise's overall size:

        S <- (1 - c_1 - c_mu) S + c_1 p p^T + c_mu C,    S <- S / (tr(S) / D).

    Args:
        kind: ``diagonal`` (``shape`` is diag(S), (D,)) or ``full`` (``shape`` is the
            Cholesky factor L of S = L L^T, (D, D)).
        shape: the current shape.
        noise: the draws n_k, flattened, (B, D).
        weights: their normalized weights w_k, (B,).
        path: p, (D,) (see :func:`shape_rates` for its rate).
        c_1: rank-one rate.
        c_mu: rank-mu rate.

    Returns:
        The new shape, as ``shape`` (unchanged if it would not be finite and positive).
    """
    d = noise.shape[-1]
    keep = 1.0 - c_1 - c_mu
    if kind == "diagonal":
        var = jnp.tensordot(weights, noise**2, axes=1)  # diag(C), (D,)
        new = keep * shape + c_1 * path**2 + c_mu * var
        new = new / jnp.maximum(jnp.mean(new), 1e-30)
        ok = jnp.all(jnp.isfinite(new)) & jnp.all(new > 1e-12)
        return jnp.where(ok, new, shape)
    cov = (noise * weights[:, None]).T @ noise  # C, (D, D)
    s_new = keep * shape @ shape.T + c_1 * jnp.outer(path, path) + c_mu * cov
    s_new = 0.5 * (s_new + s_new.T)
    s_new = s_new / jnp.maximum(jnp.trace(s_new) / d, 1e-30) + 1e-10 * jnp.eye(d, dtype=s_new.dtype)
    chol = jnp.linalg.cholesky(s_new)
    return jnp.where(jnp.all(jnp.isfinite(chol)), chol, shape)


def size_update(
    size: Array, path: Array, step: Array, ess: Array, kind: str, shape: Array | None
) -> tuple[Array, Array]:
    """One update of the adaptive noise size by the length of the estimate's path.

    The step of the estimate, Ybar_{i-1} - Ybar_i, divided by the noise size and
    whitened by the noise shape (S^{-1/2}), is a sum of w-weighted N(0, I) draws when the
    reward carries no information; its accumulated path then has the length of a
    N(0, I) vector. A longer path (steps that keep going one way) means the noise is too
    small, a shorter one (steps that cancel) that it is too large. This is CMA-ES's
    cumulative step-size adaptation (Hansen, 2016 tutorial, Eq. 31, 37), with the MBD
    weights' effective sample size m:

        p <- (1 - c) p + sqrt(c (2 - c) m) S^{-1/2} step / sigma
        sigma <- sigma exp(c / d (|p| / E|N(0, I)| - 1))

    with c = (m + 2) / (D + m + 5) and d = 1 + 2 max(0, sqrt((m - 1) / (D + 1)) - 1) + c.

    Args:
        size: sigma, scalar.
        path: p, (D,).
        step: Ybar_{i-1} - Ybar_i, flattened, (D,).
        ess: the weights' effective sample size m, scalar.
        kind: the noise shape (``isotropic``, ``diagonal``, ``full``).
        shape: S as :func:`shape_update` keeps it (None when isotropic).

    Returns:
        (new sigma, new p).
    """
    d = step.shape[-1]
    m = jnp.maximum(ess, 1.0)
    c = (m + 2.0) / (d + m + 5.0)
    damp = 1.0 + 2.0 * jnp.maximum(0.0, jnp.sqrt((m - 1.0) / (d + 1.0)) - 1.0) + c
    z = step / size
    if kind == "diagonal":
        z = z / jnp.sqrt(shape)
    elif kind == "full":
        z = jax.scipy.linalg.solve_triangular(shape, z, lower=True)
    path = (1.0 - c) * path + jnp.sqrt(c * (2.0 - c) * m) * z
    chi = math.sqrt(d) * (1.0 - 1.0 / (4.0 * d) + 1.0 / (21.0 * d * d))
    size = size * jnp.exp(jnp.clip(c / damp * (jnp.linalg.norm(path) / chi - 1.0), -1.0, 1.0))
    return size, path


def initial_shape(kind: str, dim: int) -> Array | None:
    """S = I for a shaped noise (its diagonal, or its Cholesky factor); None if isotropic."""
    if kind == "diagonal":
        return jnp.ones((dim,), jnp.float32)
    if kind == "full":
        return jnp.eye(dim, dtype=jnp.float32)
    return None


def apply_shape(kind: str, shape: Array | None, eps: Array) -> Array:
    """epsilon ~ N(0, I) of shape (B, *s) -> N(0, S) noise of the same shape."""
    if shape is None:
        return eps
    b = eps.shape[0]
    flat = eps.reshape(b, -1)
    out = flat * jnp.sqrt(shape) if kind == "diagonal" else flat @ shape.T
    return out.reshape(eps.shape)


__all__ = ["apply_shape", "initial_shape", "shape_rates", "shape_update", "size_update"]
