"""Black-box test functions and the objectives MBD optimizes (paper Appendix A.2).

Each test function is minimized by convention (value 0 at its optimum); MBD maximizes,
so the objective's reward is ``-f(y)``. Domains follow the authors' script: [-5, 10]^d
for Ackley, [-5, 5]^d otherwise; the solver searches z in [-1, 1]^d mapped affinely onto
the domain (:meth:`mbd.Objective.decode`).

By default the optimum is moved (``shift``) to a random point of the middle half of the
domain, drawn from the seed, as COCO/BBOB does: with the textbook functions the optimum of
Rastrigin and the sphere is the centre of the box, which is also where MBD, CMA-ES and
SNES start, so an unshifted benchmark rewards the starting point rather than the search.
The ill-conditioned functions (ellipsoid, discus, bent cigar, sharp ridge, different
powers) and the rotated Rosenbrock and Rastrigin are also turned by a random rotation per
seed about their optimum, so that no method gains from the box's axes; Schwefel, whose
optimum sits near a corner of its box, gets a random sign per coordinate instead.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mbd.problem import Array, Objective


def ackley(y: Array) -> Array:
    """Ackley (1987): 20 + e - 20 exp(-0.2 sqrt(mean y^2)) - exp(mean cos(2 pi y)).

    Args:
        y: point, shape (d,).

    Returns:
        Scalar >= 0, 0 at y = 0.
    """
    a = -20.0 * jnp.exp(-0.2 * jnp.sqrt(jnp.mean(y**2) + 1e-20))
    b = -jnp.exp(jnp.mean(jnp.cos(2.0 * jnp.pi * y)))
    return a + b + 20.0 + jnp.e


def rastrigin(y: Array) -> Array:
    """Rastrigin: 10 d + sum(y^2 - 10 cos(2 pi y)); 0 at y = 0. y: (d,) -> scalar."""
    return 10.0 * y.shape[-1] + jnp.sum(y**2 - 10.0 * jnp.cos(2.0 * jnp.pi * y))


def levy(y: Array) -> Array:
    """Levy: with w = 1 + (y - 1) / 4, sin^2(pi w_1) + sum_{i<d} (w_i - 1)^2
    (1 + 10 sin^2(pi w_i + 1)) + (w_d - 1)^2 (1 + sin^2(2 pi w_d)); 0 at y = 1.
    y: (d,) -> scalar."""
    w = 1.0 + (y - 1.0) / 4.0
    head = jnp.sin(jnp.pi * w[0]) ** 2
    mid = jnp.sum((w[:-1] - 1.0) ** 2 * (1.0 + 10.0 * jnp.sin(jnp.pi * w[:-1] + 1.0) ** 2))
    tail = (w[-1] - 1.0) ** 2 * (1.0 + jnp.sin(2.0 * jnp.pi * w[-1]) ** 2)
    return head + mid + tail


def rosenbrock(y: Array) -> Array:
    """Rosenbrock: sum_{i<d} 100 (y_{i+1} - y_i^2)^2 + (1 - y_i)^2; 0 at y = 1.
    For d = 1 it is (1 - y)^2. y: (d,) -> scalar."""
    if y.shape[-1] == 1:
        return jnp.sum((1.0 - y) ** 2)
    return jnp.sum(100.0 * (y[1:] - y[:-1] ** 2) ** 2 + (1.0 - y[:-1]) ** 2)


def sphere(y: Array) -> Array:
    """Sphere: sum y^2; 0 at y = 0. y: (d,) -> scalar."""
    return jnp.sum(y**2)


def _ramp(d: int) -> Array:
    """(i - 1) / (d - 1) for i = 1 .. d (0 for d = 1), shape (d,)."""
    return jnp.arange(d, dtype=jnp.float32) / max(d - 1, 1)


def ellipsoid(y: Array) -> Array:
    """Ellipsoid (BBOB f2/f10): sum 10^(6 (i-1)/(d-1)) y_i^2, condition 10^6; 0 at y = 0.
    y: (d,) -> scalar."""
    return jnp.sum(10.0 ** (6.0 * _ramp(y.shape[-1])) * y**2)


def discus(y: Array) -> Array:
    """Discus (BBOB f11): 10^6 y_1^2 + sum_{i>1} y_i^2; one short axis. y: (d,) -> scalar."""
    return 1e6 * y[0] ** 2 + jnp.sum(y[1:] ** 2)


def bent_cigar(y: Array) -> Array:
    """Bent cigar (BBOB f12, without its asymmetry): y_1^2 + 10^6 sum_{i>1} y_i^2; one long
    axis. y: (d,) -> scalar."""
    return y[0] ** 2 + 1e6 * jnp.sum(y[1:] ** 2)


def sharp_ridge(y: Array) -> Array:
    """Sharp ridge (BBOB f13): y_1^2 + 100 sqrt(sum_{i>1} y_i^2); non-smooth on the ridge.
    y: (d,) -> scalar."""
    return y[0] ** 2 + 100.0 * jnp.sqrt(jnp.sum(y[1:] ** 2) + 1e-30)


def different_powers(y: Array) -> Array:
    """Different powers (BBOB f14): sqrt(sum |y_i|^(2 + 4 (i-1)/(d-1))); 0 at y = 0.
    y: (d,) -> scalar."""
    return jnp.sqrt(jnp.sum(jnp.abs(y) ** (2.0 + 4.0 * _ramp(y.shape[-1]))) + 1e-30)


def schwefel(y: Array) -> Array:
    """Schwefel (1981): sum_i (418.9829 - y_i sin(sqrt|y_i|)) on [-500, 500]^d; its minimum,
    ~0, at y_i = 420.9687, far from the next best minima. In float32 each term carries an
    error of ~3e-5 (a difference of two numbers near 419), so values below ~1e-4 d are
    rounding. y: (d,) -> scalar."""
    return jnp.sum(418.9828872724 - y * jnp.sin(jnp.sqrt(jnp.abs(y))))


@dataclasses.dataclass(frozen=True)
class TestFunction:
    """A registered test function (minimized).

    Attributes:
        name: registry key.
        fn: ``fn(y) -> scalar`` for y of shape (d,).
        low: lower bound of the domain (every coordinate).
        high: upper bound of the domain.
        optimum: coordinate of the minimizer (every coordinate equal), where f = 0.
        summary: one line for listings.
        rotated: :func:`make_test_problem` turns the function by a random rotation per
            seed about its optimum (f(R (y - y*) + x*)), so its axes are not the box's.
        mirrored: the shift is a random sign per coordinate (f(s * y), s in {-1, 1}^d)
            instead of a translation, for a function defined only on its box whose
            optimum is off-centre already (Schwefel).
    """

    __test__ = False  # not a pytest class

    name: str
    fn: Callable[[Array], Array]
    low: float
    high: float
    optimum: float
    summary: str
    rotated: bool = False
    mirrored: bool = False


FUNCTIONS: dict[str, TestFunction] = {
    f.name: f
    for f in (
        TestFunction("ackley", ackley, -5.0, 10.0, 0.0, "Ackley, [-5, 10]^d, many shallow minima"),
        TestFunction("rastrigin", rastrigin, -5.0, 5.0, 0.0, "Rastrigin, [-5, 5]^d, 10^d minima"),
        TestFunction("levy", levy, -5.0, 5.0, 1.0, "Levy, [-5, 5]^d, rugged"),
        TestFunction("rosenbrock", rosenbrock, -5.0, 5.0, 1.0, "Rosenbrock, [-5, 5]^d, valley"),
        TestFunction("sphere", sphere, -5.0, 5.0, 0.0, "sphere, [-5, 5]^d, convex"),
        # Ill-conditioned and rotated (BBOB-style; condition 10^6 where it applies).
        *(
            TestFunction(name, fn, -5.0, 5.0, opt, f"{label}, [-5, 5]^d, rotated{more}", True)
            for name, fn, opt, label, more in (
                ("ellipsoid", ellipsoid, 0.0, "ellipsoid", ", condition 1e6"),
                ("discus", discus, 0.0, "discus", ", one short axis"),
                ("bent_cigar", bent_cigar, 0.0, "bent cigar", ", one long axis"),
                ("rosenbrock_rotated", rosenbrock, 1.0, "Rosenbrock", ""),
                ("sharp_ridge", sharp_ridge, 0.0, "sharp ridge", ", non-smooth"),
                ("different_powers", different_powers, 0.0, "different powers", ""),
                ("rastrigin_rotated", rastrigin, 0.0, "Rastrigin", ", 10^d minima"),
            )
        ),
        TestFunction(
            "schwefel",
            schwefel,
            -500.0,
            500.0,
            420.9687,
            "Schwefel, [-500, 500]^d, deceptive",
            mirrored=True,
        ),
    )
}


def get_function(name: str) -> TestFunction:
    """Looks a test function up by name.

    Raises:
        KeyError: naming the known functions, when ``name`` is unknown.
    """
    if name not in FUNCTIONS:
        raise KeyError(f"unknown function {name!r}; known functions: {', '.join(FUNCTIONS)}")
    return FUNCTIONS[name]


def _check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1 (got {dim!r})")
    return int(dim)


@dataclasses.dataclass(frozen=True, eq=False)
class BBOProblem:
    """A minimization problem on a box, and the :class:`~mbd.Objective` MBD maximizes.

    Attributes:
        name: label, e.g. ``ackley-200d``.
        dim: d.
        minimize: ``minimize(y) -> scalar`` on real points y of shape (d,).
        low: lower bounds, shape (d,).
        high: upper bounds, shape (d,).
        optimum: the minimizer (d,) if known, else None.
        best_value: the minimum if known, else None.
    """

    name: str
    dim: int
    minimize: Callable[[Array], Array]
    low: np.ndarray
    high: np.ndarray
    optimum: np.ndarray | None = None
    best_value: float | None = None

    def objective(self) -> Objective:
        """The :class:`~mbd.Objective` of MBD: reward ``-minimize(y)`` on the box."""
        f = self.minimize
        return Objective(
            fn=lambda y: -f(y), shape=(self.dim,), low=self.low, high=self.high, name=self.name
        )

    def decode(self, z: Array) -> Array:
        """Maps normalized z in [-1, 1]^d (clipped) to the box; shape (..., d)."""
        lo = jnp.asarray(self.low, z.dtype)
        hi = jnp.asarray(self.high, z.dtype)
        return lo + (jnp.clip(z, -1.0, 1.0) + 1.0) * 0.5 * (hi - lo)

    def batch_values(self) -> Callable[[Array], Array]:
        """A jitted ``values(z (B, d)) -> (B,)``: the function values of normalized points."""
        f = self.minimize
        return jax.jit(jax.vmap(lambda z: f(self.decode(z))))


def random_rotation(dim: int, seed: int) -> np.ndarray:
    """A random rotation of R^d (Haar-distributed, determinant +1), fixed by ``seed``.

    Returns:
        float32 (d, d) orthogonal matrix.
    """
    rng = np.random.default_rng([seed, 104729])
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))  # the sign fix makes Q Haar-distributed
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.astype(np.float32)


def make_test_problem(name: str, dim: int, shift: bool = True, seed: int = 0) -> BBOProblem:
    """Builds a registered test function as a :class:`BBOProblem`.

    Args:
        name: a key of :data:`FUNCTIONS`.
        dim: dimension d >= 1.
        shift: move the optimum to a random point of the middle half of the domain
            (drawn from ``seed``); else the textbook optimum.
        seed: seed of the shift and, for the rotated functions, of the rotation
            (:func:`random_rotation`) about the optimum.

    Returns:
        The problem; ``optimum`` is where the value is 0.

    Raises:
        KeyError: unknown name. ValueError: dim < 1.
    """
    spec = get_function(name)
    d = _check_dim(dim)
    low = np.full(d, spec.low, np.float32)
    high = np.full(d, spec.high, np.float32)
    textbook = np.full(d, spec.optimum, np.float32)
    rng = np.random.default_rng([seed, 7919])
    if shift and spec.mirrored:
        sign = np.where(rng.random(d) < 0.5, -1.0, 1.0).astype(np.float32)
        flip = jnp.asarray(sign)
        optimum = sign * textbook

        def minimize(y):
            return spec.fn(flip * y)
    else:
        optimum = textbook
        if shift:
            width = spec.high - spec.low
            optimum = rng.uniform(spec.low + 0.25 * width, spec.high - 0.25 * width, d)
            optimum = optimum.astype(np.float32)
        at = jnp.asarray(optimum)
        to = jnp.asarray(textbook)
        if spec.rotated:
            rot = jnp.asarray(random_rotation(d, seed))

            def minimize(y):
                return spec.fn(rot @ (y - at) + to)
        elif shift:

            def minimize(y):
                return spec.fn(y - at + to)
        else:
            minimize = spec.fn
    return BBOProblem(
        name=f"{name}-{d}d",
        dim=d,
        minimize=minimize,
        low=low,
        high=high,
        optimum=optimum,
        best_value=0.0,
    )


def make_user_problem(
    fn: Callable[[Array], Array],
    dim: int,
    low: Any,
    high: Any,
    name: str = "user",
    maximize: bool = False,
    check: bool = True,
) -> BBOProblem:
    """Wraps a user's JAX function of a vector, with box bounds, as a :class:`BBOProblem`.

    Args:
        fn: ``fn(y) -> scalar`` for y of shape (d,), traceable by JAX (jit and vmap).
        dim: d >= 1.
        low: lower bounds, scalar or (d,).
        high: upper bounds, scalar or (d,), above ``low`` everywhere.
        name: label.
        maximize: True if ``fn`` is to be maximized (it is minimized otherwise).
        check: evaluate ``fn`` at the box centre and two corners first, and raise if it is
            not a finite scalar there.

    Returns:
        The problem (optimum unknown).

    Raises:
        ValueError: dim < 1, bad bounds, or ``fn`` not returning a finite scalar.
    """
    d = _check_dim(dim)
    if not callable(fn):
        raise TypeError("fn must be a function y (d,) -> scalar")
    lo = np.broadcast_to(np.asarray(low, np.float32), (d,)).copy()
    hi = np.broadcast_to(np.asarray(high, np.float32), (d,)).copy()
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("bounds must be finite")
    if np.any(hi <= lo):
        raise ValueError("bounds need low < high in every coordinate")

    def minimize(y):
        v = jnp.asarray(fn(y))
        if v.size != 1:
            raise ValueError(f"fn must return a scalar (got shape {v.shape})")
        v = v.reshape(())
        return -v if maximize else v

    prob = BBOProblem(name=name, dim=d, minimize=minimize, low=lo, high=hi)
    if check:
        pts = np.stack([0.5 * (lo + hi), lo, hi])
        try:
            vals = np.asarray(jax.vmap(minimize)(jnp.asarray(pts)))
        except (TypeError, ValueError) as e:
            raise ValueError(f"fn could not be evaluated on a vector of shape ({d},): {e}") from e
        bad = [
            p
            for p, v in zip(("centre", "low corner", "high corner"), vals, strict=True)
            if not math.isfinite(float(v))
        ]
        if bad:
            raise ValueError(
                f"fn returned a non-finite value (NaN or inf) at the box {', '.join(bad)}; "
                "MBD gives such samples zero weight, but a function that is not finite at "
                "these points is most likely wrong"
            )
    return prob
