"""Problems as values: what MBD optimizes, kept apart from the solver and the simulators.

A trajectory problem (paper Eq. 1) is a :class:`Problem`: an initial state x_0 (any
pytree), a step function ``(x_t, u_t) -> (x_{t+1}, r_t)`` (Eq. 1c with the stage reward,
the negative of l_t in Eq. 1a), a horizon T, action bounds, optional constraints
``g(x_t, u_t) <= 0`` (Eq. 1d) and an optional demonstration (Sec. 4.3). A generic problem
(Alg. 1) is an :class:`Objective`: a reward ``f(y)`` of one array ``y`` to maximize.

The sign convention of the whole library: rewards are maximized (p_J = exp(-J / lambda)
with J = -reward). The score of a trajectory is its mean per-step reward.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PyTree = Any


@dataclasses.dataclass(frozen=True)
class Demo:
    """A demonstration, possibly partial-state and dynamically infeasible (Sec. 4.3).

    Its log-likelihood term (in reward units, Eq. 11-13) is
    ``log p_demo = -mean_{t,k} min(|o_{t,k} - ref_{t,k}| / scale, 1)^2`` where
    ``o = observe(...)`` are the quantities the demonstration shows, ``k`` runs over the
    observed bodies and ``|.|`` is the Euclidean norm over the last axis.

    Attributes:
        reference: demonstrated quantities, shape (T, d) or (T, K, d) for a trajectory
            problem (one row per time step), or any shape for an :class:`Objective`.
        scale: distance at which the likelihood bottoms out (> 0), in the units of
            ``reference``.
        reward: r_demo, the mean per-step reward of the demonstrated trajectory (the
            p_J(Y_demo) term of Eq. 11, before the temperature).
        observe: maps a rollout to the observed quantities. For a :class:`Problem`:
            ``observe(states, controls) -> (T, ...)`` with ``states`` the pytree of
            x_1 .. x_T stacked on a leading axis of length T and ``controls`` of shape
            (T, nu); ``None`` observes the controls. For an :class:`Objective`:
            ``observe(y)``; ``None`` observes ``y`` itself.
    """

    reference: Array
    scale: float
    reward: float
    observe: Callable[..., Array] | None = None

    def __post_init__(self) -> None:
        ref = np.asarray(self.reference)
        if not np.all(np.isfinite(ref)):
            raise ValueError("demo reference must be finite everywhere")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"demo scale must be finite and > 0 (got {self.scale})")
        if not np.isfinite(self.reward):
            raise ValueError(f"demo reward must be finite (got {self.reward})")

    def log_likelihood(self, observed: Array) -> Array:
        """Truncated-quadratic log-likelihood of observed quantities, in [-1, 0].

        Args:
            observed: array of the shape of ``reference``.

        Returns:
            Scalar: ``-mean min(dist / scale, 1)^2`` over time steps and bodies.
        """
        ref = jnp.asarray(self.reference, dtype=observed.dtype)
        if observed.shape != ref.shape:
            raise ValueError(
                f"demo observe returned shape {observed.shape}, "
                f"but the reference has shape {ref.shape}"
            )
        diff = observed - ref
        if diff.ndim == 0:
            dist = jnp.abs(diff)
        else:
            dist = jnp.sqrt(jnp.sum(diff**2, axis=-1) + 1e-12)
        return -jnp.mean(jnp.minimum(dist / self.scale, 1.0) ** 2)


StepFn = Callable[[PyTree, Array], tuple[PyTree, Array]]
ConstraintFn = Callable[[PyTree, Array], Array]


def _as_bounds(low: Any, high: Any, size: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    lo = np.broadcast_to(np.asarray(low, dtype=np.float32), (size,)).copy()
    hi = np.broadcast_to(np.asarray(high, dtype=np.float32), (size,)).copy()
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(f"{what} bounds must be finite (got low={low}, high={high})")
    if np.any(hi <= lo):
        raise ValueError(f"{what} bounds need low < high everywhere (got low={low}, high={high})")
    return lo, hi


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A trajectory optimization problem (paper Eq. 1), as a value.

    The solver searches normalized controls in [-1, 1]^{T x nu}; they are mapped affinely
    to ``[action_low, action_high]`` before they reach ``step``.

    Attributes:
        init_state: x_0, any pytree of arrays.
        step: ``step(x_t, u_t) -> (x_{t+1}, r_t)`` with u_t of shape (nu,) in real units
            and r_t a scalar stage reward (to maximize). Must be traceable by JAX.
        horizon: T >= 1, number of control steps.
        action_dim: nu >= 1.
        action_low: lower action bounds, shape (nu,) (a scalar broadcasts).
        action_high: upper action bounds, shape (nu,).
        constraint: optional ``g(x_t, u_t) -> (ng,)``; a trajectory is feasible when
            every entry is <= 0 at every step (Eq. 1d, p_g).
        demo: optional :class:`Demo` for demonstration-augmented weighting (Eq. 13).
        name: label used in results.
    """

    init_state: PyTree
    step: StepFn
    horizon: int
    action_dim: int
    action_low: Any = -1.0
    action_high: Any = 1.0
    constraint: ConstraintFn | None = None
    demo: Demo | None = None
    name: str = "problem"

    def __post_init__(self) -> None:
        if not isinstance(self.horizon, int | np.integer) or self.horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1 (got {self.horizon!r})")
        if not isinstance(self.action_dim, int | np.integer) or self.action_dim < 1:
            raise ValueError(f"action_dim must be an integer >= 1 (got {self.action_dim!r})")
        if not callable(self.step):
            raise TypeError("step must be a function (state, u) -> (state, reward)")
        if self.constraint is not None and not callable(self.constraint):
            raise TypeError("constraint must be a function (state, u) -> g, or None")
        lo, hi = _as_bounds(self.action_low, self.action_high, self.action_dim, "action")
        object.__setattr__(self, "action_low", lo)
        object.__setattr__(self, "action_high", hi)
        if self.demo is not None:
            ref = np.asarray(self.demo.reference)
            if ref.ndim == 0 or ref.shape[0] != self.horizon:
                raise ValueError(
                    f"demo reference has {ref.shape[0] if ref.ndim else 0} time steps, "
                    f"but the horizon is {self.horizon}: give one row per control step"
                )

    @property
    def shape(self) -> tuple[int, int]:
        """Shape (T, nu) of the decision variable."""
        return (self.horizon, self.action_dim)

    def controls(self, z: Array) -> Array:
        """Maps normalized controls to real units.

        Args:
            z: normalized controls, shape (..., T, nu); clipped to [-1, 1].

        Returns:
            Controls in [action_low, action_high], same shape.
        """
        lo = jnp.asarray(self.action_low, dtype=z.dtype)
        hi = jnp.asarray(self.action_high, dtype=z.dtype)
        return lo + (jnp.clip(z, -1.0, 1.0) + 1.0) * 0.5 * (hi - lo)

    def normalize(self, u: Array) -> Array:
        """Inverse of :meth:`controls` on the box: real-unit controls to [-1, 1].

        Args:
            u: controls in real units, shape (..., T, nu).

        Returns:
            Normalized controls, same shape.
        """
        lo = jnp.asarray(self.action_low, dtype=u.dtype)
        hi = jnp.asarray(self.action_high, dtype=u.dtype)
        return 2.0 * (u - lo) / (hi - lo) - 1.0


class Rollout(NamedTuple):
    """One rollout of a control sequence.

    Attributes:
        states: pytree of x_1 .. x_T, each leaf with a leading axis of length T.
        rewards: stage rewards r_0 .. r_{T-1}, shape (T,).
        violation: total positive constraint violation sum_t sum_j max(g_tj, 0), scalar
            (0 where the problem has no constraints).
    """

    states: PyTree
    rewards: Array
    violation: Array


def rollout(problem: Problem, controls: Array) -> Rollout:
    """Rolls controls out through the dynamics with ``lax.scan`` (Alg. 2, line 4).

    Args:
        problem: the problem.
        controls: real-unit controls, shape (T, nu).

    Returns:
        A :class:`Rollout`; vmap this function for a batch of control sequences.
    """

    def body(x, u):
        x_next, r = problem.step(x, u)
        if problem.constraint is None:
            v = jnp.zeros((), dtype=jnp.result_type(r))
        else:
            v = jnp.sum(jnp.maximum(jnp.asarray(problem.constraint(x, u)), 0.0))
        return x_next, (x_next, jnp.asarray(r), v)

    _, (states, rewards, viol) = jax.lax.scan(body, problem.init_state, controls)
    return Rollout(states=states, rewards=rewards, violation=jnp.sum(viol))


def make_problem(
    init_state: PyTree,
    dynamics: Callable[[PyTree, Array], PyTree],
    reward: Callable[[PyTree, Array], Array],
    horizon: int,
    action_dim: int,
    action_low: Any = -1.0,
    action_high: Any = 1.0,
    constraint: ConstraintFn | None = None,
    demo: Demo | None = None,
    name: str = "problem",
) -> Problem:
    """Builds a :class:`Problem` from plain ``dynamics(x, u)`` and ``reward(x, u)``.

    The stage reward r_t = reward(x_t, u_t) is taken at the state before the step.

    Args:
        init_state: x_0, any pytree.
        dynamics: ``dynamics(x_t, u_t) -> x_{t+1}`` (Eq. 1c).
        reward: ``reward(x_t, u_t) -> scalar`` (to maximize; -l_t in Eq. 1a).
        horizon: T.
        action_dim: nu.
        action_low: lower bounds, scalar or (nu,).
        action_high: upper bounds, scalar or (nu,).
        constraint: optional ``g(x_t, u_t) -> (ng,)``, feasible where <= 0.
        demo: optional :class:`Demo`.
        name: label used in results.

    Returns:
        The :class:`Problem`.
    """

    def step(x, u):
        return dynamics(x, u), reward(x, u)

    return Problem(
        init_state=init_state,
        step=step,
        horizon=horizon,
        action_dim=action_dim,
        action_low=action_low,
        action_high=action_high,
        constraint=constraint,
        demo=demo,
        name=name,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Objective:
    """A generic optimization problem for Alg. 1: maximize ``fn(y)`` over an array ``y``.

    With bounds, the solver searches normalized y in [-1, 1]^shape, clipped and mapped
    affinely to ``[low, high]``; without bounds, it searches y directly.

    Attributes:
        fn: ``fn(y) -> scalar`` reward to maximize; y of shape ``shape``.
        shape: shape of the decision variable, e.g. ``(d,)``.
        low: optional lower bounds (broadcast to ``shape``); give both or neither.
        high: optional upper bounds.
        constraint: optional ``g(y) -> (ng,)``, feasible where every entry <= 0.
        demo: optional :class:`Demo` (``observe(y)``).
        name: label used in results.
    """

    fn: Callable[[Array], Array]
    shape: tuple[int, ...]
    low: Any = None
    high: Any = None
    constraint: Callable[[Array], Array] | None = None
    demo: Demo | None = None
    name: str = "objective"

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in np.atleast_1d(self.shape))
        if any(s < 1 for s in shape):
            raise ValueError(f"shape must have sizes >= 1 (got {self.shape})")
        object.__setattr__(self, "shape", shape)
        if not callable(self.fn):
            raise TypeError("fn must be a function y -> scalar reward")
        if (self.low is None) != (self.high is None):
            raise ValueError("give both low and high bounds, or neither")
        if self.low is not None:
            size = int(np.prod(shape))
            lo, hi = _as_bounds(
                np.broadcast_to(self.low, shape).ravel(),
                np.broadcast_to(self.high, shape).ravel(),
                size,
                "objective",
            )
            object.__setattr__(self, "low", lo.reshape(shape))
            object.__setattr__(self, "high", hi.reshape(shape))

    @property
    def bounded(self) -> bool:
        """Whether the search is over a box."""
        return self.low is not None

    def decode(self, z: Array) -> Array:
        """Maps a normalized point to the objective's domain.

        Args:
            z: shape (..., *shape).

        Returns:
            y of the same shape: clipped and mapped to [low, high] where bounded, else z.
        """
        if not self.bounded:
            return z
        lo = jnp.asarray(self.low, dtype=z.dtype)
        hi = jnp.asarray(self.high, dtype=z.dtype)
        return lo + (jnp.clip(z, -1.0, 1.0) + 1.0) * 0.5 * (hi - lo)

    def encode(self, y: Array) -> Array:
        """Inverse of :meth:`decode` on the box.

        Args:
            y: shape (..., *shape), in the objective's domain.

        Returns:
            z of the same shape.
        """
        if not self.bounded:
            return y
        lo = jnp.asarray(self.low, dtype=y.dtype)
        hi = jnp.asarray(self.high, dtype=y.dtype)
        return 2.0 * (y - lo) / (hi - lo) - 1.0
