"""Control parameterization: splines over a few knots instead of one control per step.

With ``Problem(..., knots=K, spline=kind)`` the decision variable is K knot values per
actuator, shape (K, nu), instead of T controls, shape (T, nu); the controls applied at
steps t = 0 .. T-1 are interpolated from knots placed evenly at times
tau_j = j (T - 1) / (K - 1). Every interpolation used here is linear in the knot values,
so it is one precomputed matrix M of shape (T, K): controls = M @ knots. That keeps the
sampling, weighting and score step of every solver unchanged: they search the knots.

Kinds:

- ``zero``: zero-order hold, u_t = knot_j for the last knot time tau_j <= t;
- ``linear``: piecewise linear between neighbouring knots;
- ``cubic``: the natural cubic spline through the knots (second derivative zero at both
  ends; with K = 2 it is the line).

Times outside [tau_0, tau_{K-1}] hold the end value. :func:`shift_matrix` gives the
receding-horizon warm start (the plan moved one control step earlier) in knot space.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

SplineKind = Literal["zero", "linear", "cubic"]
SPLINES: tuple[str, ...] = ("zero", "linear", "cubic")


def knot_times(horizon: int, knots: int) -> np.ndarray:
    """Evenly spaced knot times over the control steps.

    Args:
        horizon: T >= 1, number of control steps.
        knots: K >= 1 (K = 1 puts the one knot at t = 0).

    Returns:
        (K,) float64 times tau_j = j (T - 1) / (K - 1), in control steps.
    """
    if knots == 1:
        return np.zeros(1)
    return np.linspace(0.0, horizon - 1.0, knots)


def _natural_second_derivatives(tau: np.ndarray) -> np.ndarray:
    """Linear map from knot values y (K,) to the natural spline's y'' at the knots (K, K)."""
    k = tau.size
    out = np.zeros((k, k))
    if k < 3:
        return out
    h = np.diff(tau)
    n = k - 2  # interior knots
    a = np.zeros((n, n))
    d = np.zeros((n, k))
    for i in range(1, k - 1):
        r = i - 1
        a[r, r] = 2.0 * (h[i - 1] + h[i])
        if r > 0:
            a[r, r - 1] = h[i - 1]
        if r < n - 1:
            a[r, r + 1] = h[i]
        # 6 ((y_{i+1} - y_i) / h_i - (y_i - y_{i-1}) / h_{i-1})
        d[r, i + 1] += 6.0 / h[i]
        d[r, i] -= 6.0 / h[i] + 6.0 / h[i - 1]
        d[r, i - 1] += 6.0 / h[i - 1]
    out[1:-1] = np.linalg.solve(a, d)
    return out


def interpolation_matrix(query: np.ndarray, tau: np.ndarray, kind: str) -> np.ndarray:
    """The matrix that maps knot values to interpolated values at query times.

    Args:
        query: (Q,) times, in control steps.
        tau: (K,) increasing knot times.
        kind: ``zero``, ``linear`` or ``cubic``.

    Returns:
        (Q, K) float64 matrix M with values = M @ knot_values.
    """
    if kind not in SPLINES:
        raise ValueError(f"spline must be one of {', '.join(SPLINES)} (got {kind!r})")
    query = np.clip(np.asarray(query, np.float64), tau[0], tau[-1])
    k = tau.size
    m = np.zeros((query.size, k))
    if k == 1:
        m[:, 0] = 1.0
        return m
    # Segment index i with tau_i <= t < tau_{i+1} (the last segment holds t = tau_{K-1}).
    seg = np.clip(np.searchsorted(tau, query, side="right") - 1, 0, k - 2)
    rows = np.arange(query.size)
    if kind == "zero":
        at_end = np.isclose(query, tau[-1])
        m[rows, np.where(at_end, k - 1, seg)] = 1.0
        return m
    h = tau[seg + 1] - tau[seg]
    b = (query - tau[seg]) / h
    a = 1.0 - b
    m[rows, seg] += a
    m[rows, seg + 1] += b
    if kind == "cubic":
        second = _natural_second_derivatives(tau)
        c_lo = (a**3 - a) * h**2 / 6.0
        c_hi = (b**3 - b) * h**2 / 6.0
        m += c_lo[:, None] * second[seg] + c_hi[:, None] * second[seg + 1]
    return m


def control_matrix(horizon: int, knots: int, kind: str) -> np.ndarray:
    """Knots to controls: the (T, K) matrix M with u_{0..T-1} = M @ knots.

    Args:
        horizon: T.
        knots: K.
        kind: ``zero``, ``linear`` or ``cubic``.

    Returns:
        (T, K) float32.
    """
    tau = knot_times(horizon, knots)
    return interpolation_matrix(np.arange(horizon), tau, kind).astype(np.float32)


def shift_matrix(horizon: int, knots: int | None, kind: str = "linear") -> np.ndarray:
    """The receding-horizon shift: the plan one control step later, in decision space.

    Without knots this moves every control one step earlier and repeats the last one;
    with knots it evaluates the spline at tau_j + 1 (the end held), so that the shifted
    knots draw the same controls from the next step on.

    Args:
        horizon: T.
        knots: K, or None for one decision row per control step.
        kind: the spline kind (ignored without knots).

    Returns:
        (R, R) float32 with R = K (or T): shifted = S @ decision.
    """
    if knots is None:
        s = np.zeros((horizon, horizon), np.float32)
        s[np.arange(horizon), np.minimum(np.arange(horizon) + 1, horizon - 1)] = 1.0
        return s
    tau = knot_times(horizon, knots)
    return interpolation_matrix(tau + 1.0, tau, kind).astype(np.float32)


__all__ = [
    "SPLINES",
    "SplineKind",
    "control_matrix",
    "interpolation_matrix",
    "knot_times",
    "shift_matrix",
]
