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
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbd import splines

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

    def log_likelihood(self, observed: Array, reference: Array | None = None) -> Array:
        """Truncated-quadratic log-likelihood of observed quantities, in [-1, 0].

        Args:
            observed: array of the shape of ``reference``.
            reference: the reference to compare with (a solve's instance may replace
                the demo's own); ``self.reference`` if None.

        Returns:
            Scalar: ``-mean min(dist / scale, 1)^2`` over time steps and bodies.
        """
        ref = self.reference if reference is None else reference
        ref = jnp.asarray(ref, dtype=observed.dtype)
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


StepFn = Callable[..., tuple[PyTree, Array]]
ConstraintFn = Callable[..., Array]


class Instance(NamedTuple):
    """What changes between solves of one problem structure: the arguments of a
    compiled solve (see :class:`~mbd.solver.ParametricSolve`).

    One compile serves every instance of the same structure and shapes: every seed,
    initial state, goal and control step of a receding-horizon loop.

    Attributes:
        x0: the initial state (a pytree shaped as the problem's ``init_state``), or None
            for an :class:`Objective`.
        params: the problem's per-episode values (a goal, a reference; any pytree shaped
            as ``Problem.params``), or None when the problem has none.
        demo_reference: the demonstration's reference (shape of ``Demo.reference``), or
            None without a demonstration.
        demo_reward: r_demo, float32 scalar, or None without a demonstration.
    """

    x0: PyTree
    params: PyTree
    demo_reference: Array | None
    demo_reward: Array | None


def _as_jax_tree(tree: PyTree) -> PyTree:
    return jax.tree_util.tree_map(jnp.asarray, tree)


def _tree_mismatch(value: PyTree, like: PyTree) -> str | None:
    """How ``value`` differs from ``like`` in tree structure or leaf shapes, or None."""
    ref_leaves, ref_def = jax.tree_util.tree_flatten(like)
    leaves, tdef = jax.tree_util.tree_flatten(value)
    if tdef != ref_def:
        return f"has the structure {tdef}, not {ref_def}"
    for i, (v, r) in enumerate(zip(leaves, ref_leaves, strict=True)):
        if tuple(np.shape(v)) != tuple(np.shape(r)):
            return f"leaf {i} has shape {tuple(np.shape(v))}, expected {tuple(np.shape(r))}"
    return None


def check_like(name: str, value: PyTree, like: PyTree) -> PyTree:
    """Checks that ``value`` has the tree structure, shapes and finiteness of ``like``.

    Args:
        name: what the value is, for the message (e.g. ``x0``).
        value: the candidate pytree (concrete arrays or tracers).
        like: the reference pytree.

    Returns:
        ``value`` with every leaf as a JAX array of its reference leaf's dtype.

    Raises:
        ValueError: naming the first mismatch, or a non-finite concrete entry.
    """
    why = _tree_mismatch(value, like)
    if why is not None:
        raise ValueError(f"{name} {why} as in the problem")
    _check_finite(name, value)
    return jax.tree_util.tree_map(
        lambda v, r: jnp.asarray(v, dtype=jnp.result_type(r)), value, like
    )


def _struct(tree: PyTree) -> PyTree:
    """Shape-dtype structs of a pytree's leaves (for ``jax.eval_shape``)."""
    return jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a)), tree
    )


def _trace(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``jax.eval_shape(fn, *args)``, with a failure reported as one line naming ``name``."""
    try:
        return jax.eval_shape(fn, *args)
    except Exception as e:  # any error of the user's function while traced
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{name} fails when traced with JAX: {type(e).__name__}: {first}") from e


def _check_scalar(name: str, out: Any) -> None:
    shape = getattr(out, "shape", None)
    if shape is None or int(np.prod(shape)) != 1 or len(shape) > 1:
        raise ValueError(
            f"{name} must return a scalar reward, shape (), but returned "
            f"{'shape ' + str(tuple(shape)) if shape is not None else type(out).__name__}"
        )


def _check_state(name: str, out: PyTree, like: PyTree) -> None:
    why = _tree_mismatch(out, like)
    if why is not None:
        raise ValueError(f"{name} must return a state shaped as x0: {why}")


def _check_finite(name: str, tree: PyTree) -> None:
    for i, leaf in enumerate(jax.tree_util.tree_leaves(tree)):
        if isinstance(leaf, jax.core.Tracer):
            continue
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite everywhere (leaf {i} holds NaN or inf)")


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

    The solver searches normalized controls in [-1, 1]^{T x nu} (or knots in
    [-1, 1]^{K x nu}, see ``knots``); they are mapped affinely to
    ``[action_low, action_high]`` before they reach ``step``.

    A problem is a *structure* plus an :class:`Instance`: ``init_state``, ``params`` and
    the demonstration's reference are defaults that a compiled solve takes as arguments,
    so one compile serves every seed, initial state and goal (``solve(key, x0=...,
    params=...)``). Everything else (the functions, horizon, bounds, knots) is the
    structure; changing it compiles again.

    Attributes:
        init_state: x_0, any pytree of arrays.
        step: ``step(x_t, u_t) -> (x_{t+1}, r_t)`` with u_t of shape (nu,) in real units
            and r_t a scalar stage reward (to maximize); ``step(x_t, u_t, params)`` when
            the problem has ``params``. Must be traceable by JAX.
        horizon: T >= 1, number of control steps.
        action_dim: nu >= 1.
        action_low: lower action bounds, shape (nu,) (a scalar broadcasts).
        action_high: upper action bounds, shape (nu,).
        constraint: optional ``g(x_t, u_t) -> (ng,)`` (``g(x_t, u_t, params)`` with
            params); a trajectory is feasible when every entry is <= 0 at every step
            (Eq. 1d, p_g).
        demo: optional :class:`Demo` for demonstration-augmented weighting (Eq. 13).
        name: label used in results.
        params: optional pytree of per-episode values (a goal, a target speed), passed
            to ``step`` and ``constraint`` as their third argument; None: the functions
            take two.
        knots: optional K in [1, T]: search K spline knots per actuator instead of T
            controls (see :mod:`mbd.splines`); None searches the controls themselves.
        spline: interpolation between knots: ``zero``, ``linear`` or ``cubic``.
        dt: seconds per control step, which a real-time loop paces its plant by
            (:mod:`mbd.mpc.realtime`); None: the step's own ``dt`` where it has one
            (MuJoCo and Brax steps do), else unknown.
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
    params: PyTree = None
    knots: int | None = None
    spline: str = "linear"
    dt: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.horizon, int | np.integer) or self.horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1 (got {self.horizon!r})")
        if not isinstance(self.action_dim, int | np.integer) or self.action_dim < 1:
            raise ValueError(f"action_dim must be an integer >= 1 (got {self.action_dim!r})")
        if not callable(self.step):
            raise TypeError("step must be a function (state, u) -> (state, reward)")
        if self.constraint is not None and not callable(self.constraint):
            raise TypeError("constraint must be a function (state, u) -> g, or None")
        if self.knots is not None and (
            not isinstance(self.knots, int | np.integer)
            or isinstance(self.knots, bool)
            or not 1 <= self.knots <= self.horizon
        ):
            raise ValueError(
                f"knots must be an integer in [1, horizon = {self.horizon}] or None "
                f"(got {self.knots!r})"
            )
        if self.spline not in splines.SPLINES:
            raise ValueError(
                f"spline must be one of {', '.join(splines.SPLINES)} (got {self.spline!r})"
            )
        dt = getattr(self.step, "dt", None) if self.dt is None else self.dt
        if dt is not None:
            if isinstance(dt, bool) or not isinstance(dt, int | float | np.floating):
                raise ValueError(f"dt must be a number of seconds > 0 (got {dt!r})")
            if not (math.isfinite(dt) and dt > 0):
                raise ValueError(f"dt must be finite and > 0 seconds (got {dt!r})")
            object.__setattr__(self, "dt", float(dt))
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
        _check_finite("init_state", self.init_state)
        if self.params is not None:
            _check_finite("params", self.params)
        self._check_functions()

    def _check_functions(self) -> None:
        """Traces step, constraint and demo.observe once (``jax.eval_shape``): a wrong
        shape fails here, with the function named, instead of deep inside a solve."""
        x = _struct(self.init_state)
        u = jax.ShapeDtypeStruct((self.action_dim,), jnp.float32)
        extra = () if self.params is None else (_struct(self.params),)
        out = _trace("step(x, u)", self.step, x, u, *extra)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError("step(x, u) must return a pair (next_state, reward)")
        _check_state("step(x, u)", out[0], self.init_state)
        _check_scalar("step(x, u)", out[1])
        if self.constraint is not None:
            g = _trace("constraint(x, u)", self.constraint, x, u, *extra)
            if getattr(g, "ndim", 2) > 1:
                raise ValueError(
                    f"constraint(x, u) must return a vector g of shape (ng,) (or a scalar), "
                    f"got shape {getattr(g, 'shape', type(g).__name__)}"
                )
        demo = self.demo
        if demo is not None and demo.observe is not None:
            t = self.horizon
            states = jax.tree_util.tree_map(
                lambda a: jax.ShapeDtypeStruct((t, *a.shape), a.dtype), x
            )
            controls = jax.ShapeDtypeStruct((t, self.action_dim), jnp.float32)
            obs = _trace("demo.observe(states, controls)", demo.observe, states, controls)
            ref_shape = np.shape(demo.reference)
            if tuple(getattr(obs, "shape", ())) != tuple(ref_shape):
                raise ValueError(
                    f"demo.observe(states, controls) returned shape "
                    f"{tuple(getattr(obs, 'shape', ()))}, but the reference has shape "
                    f"{tuple(ref_shape)}"
                )

    @property
    def shape(self) -> tuple[int, int]:
        """Shape (T, nu) of the decision variable, or (K, nu) with ``knots``."""
        rows = self.horizon if self.knots is None else int(self.knots)
        return (rows, self.action_dim)

    @functools.cached_property
    def _knot_matrix(self) -> np.ndarray:
        return splines.control_matrix(self.horizon, int(self.knots), self.spline)

    def controls(self, z: Array) -> Array:
        """Maps normalized decision values to real-unit controls.

        Args:
            z: normalized controls, shape (..., T, nu), or knots (..., K, nu) with
                ``knots``; interpolated to T steps, then clipped to [-1, 1].

        Returns:
            Controls in [action_low, action_high], shape (..., T, nu).
        """
        if self.knots is not None:
            z = jnp.einsum("tk,...kn->...tn", jnp.asarray(self._knot_matrix, z.dtype), z)
        lo = jnp.asarray(self.action_low, dtype=z.dtype)
        hi = jnp.asarray(self.action_high, dtype=z.dtype)
        return lo + (jnp.clip(z, -1.0, 1.0) + 1.0) * 0.5 * (hi - lo)

    def normalize(self, u: Array) -> Array:
        """Inverse of :meth:`controls` on the box: real-unit controls to decision values.

        Args:
            u: controls in real units, shape (..., T, nu).

        Returns:
            Normalized controls, same shape; with ``knots``, the least-squares knots
            (..., K, nu).
        """
        lo = jnp.asarray(self.action_low, dtype=u.dtype)
        hi = jnp.asarray(self.action_high, dtype=u.dtype)
        z = 2.0 * (u - lo) / (hi - lo) - 1.0
        if self.knots is not None:
            pinv = jnp.asarray(np.linalg.pinv(self._knot_matrix), z.dtype)
            z = jnp.einsum("kt,...tn->...kn", pinv, z)
        return z

    def instance(self) -> Instance:
        """The problem's own :class:`Instance`: its x_0, params and demo reference."""
        return self._own_instance

    @functools.cached_property
    def _own_instance(self) -> Instance:
        demo = self.demo
        return Instance(
            x0=_as_jax_tree(self.init_state),
            params=None if self.params is None else _as_jax_tree(self.params),
            demo_reference=None if demo is None else jnp.asarray(demo.reference, jnp.float32),
            demo_reward=None if demo is None else jnp.asarray(demo.reward, jnp.float32),
        )

    def make_instance(
        self,
        x0: PyTree = None,
        params: PyTree = None,
        demo_reference: Array | None = None,
        demo_reward: Any = None,
    ) -> Instance:
        """An :class:`Instance` of this problem, checked; None takes the problem's own.

        Args:
            x0: initial state shaped as ``init_state``; must be finite.
            params: values shaped as ``params`` (only for a problem with params).
            demo_reference: a reference shaped as ``demo.reference`` (needs a demo).
            demo_reward: r_demo of that reference, scalar (needs a demo).

        Returns:
            The :class:`Instance` (JAX arrays, or tracers passed through).

        Raises:
            ValueError: for a structure or shape that differs from the problem's, a
                non-finite x0, or params / a reference the problem has no place for.
        """
        own = self.instance()
        if x0 is not None:
            x0 = check_like("x0", x0, self.init_state)
        if params is not None:
            if self.params is None:
                raise ValueError(
                    f"problem {self.name!r} takes no params (build it with params=... "
                    "so that step receives them)"
                )
            params = check_like("params", params, self.params)
        if (demo_reference is not None or demo_reward is not None) and self.demo is None:
            raise ValueError(f"problem {self.name!r} has no demonstration to replace")
        if demo_reference is not None:
            demo_reference = check_like("demo_reference", demo_reference, own.demo_reference)
        if demo_reward is not None:
            demo_reward = check_like("demo_reward", demo_reward, own.demo_reward)
        return Instance(
            x0=own.x0 if x0 is None else x0,
            params=own.params if params is None else params,
            demo_reference=own.demo_reference if demo_reference is None else demo_reference,
            demo_reward=own.demo_reward if demo_reward is None else demo_reward,
        )

    def call_step(self, x: PyTree, u: Array, params: PyTree = None) -> tuple[PyTree, Array]:
        """``step(x, u)``, or ``step(x, u, params)`` for a problem with params."""
        if self.params is None:
            return self.step(x, u)
        return self.step(x, u, self.params if params is None else params)

    def call_constraint(self, x: PyTree, u: Array, params: PyTree = None) -> Array:
        """``constraint(x, u)`` (with ``params`` as third argument where the problem has them)."""
        if self.params is None:
            return self.constraint(x, u)
        return self.constraint(x, u, self.params if params is None else params)


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


def rollout(problem: Problem, controls: Array, x0: PyTree = None, params: PyTree = None) -> Rollout:
    """Rolls controls out through the dynamics (Alg. 2, line 4): a ``lax.scan`` of the
    step over time or, where the step offers ``step.rollout(x0, controls[, params]) ->
    (states, rewards)`` (the native MuJoCo engine's whole horizon in one host call), that.

    Args:
        problem: the problem.
        controls: real-unit controls, shape (T, nu).
        x0: initial state; ``problem.init_state`` if None.
        params: the problem's params; ``problem.params`` if None.

    Returns:
        A :class:`Rollout`; vmap this function for a batch of control sequences.
    """

    def violation(x, u, r):
        if problem.constraint is None:
            return jnp.zeros((), dtype=jnp.result_type(r))
        g = jnp.asarray(problem.call_constraint(x, u, params))
        return jnp.sum(jnp.maximum(g, 0.0))

    start = problem.init_state if x0 is None else x0
    whole = getattr(problem.step, "rollout", None)
    if callable(whole):
        # The engine rolls out the whole horizon at once (native MuJoCo: one host call).
        p = () if problem.params is None else (problem.params if params is None else params,)
        states, rewards = whole(start, controls, *p)
        before = jax.tree_util.tree_map(
            lambda a, s: jnp.concatenate([jnp.asarray(a)[None], s[:-1]]), start, states
        )
        viol = jax.vmap(violation)(before, controls, rewards)
        return Rollout(states=states, rewards=rewards, violation=jnp.sum(viol))

    def body(x, u):
        x_next, r = problem.call_step(x, u, params)
        return x_next, (x_next, jnp.asarray(r), violation(x, u, r))

    _, (states, rewards, viol) = jax.lax.scan(body, start, controls)
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
    params: PyTree = None,
    knots: int | None = None,
    spline: str = "linear",
    dt: float | None = None,
) -> Problem:
    """Builds a :class:`Problem` from plain ``dynamics(x, u)`` and ``reward(x, u)``.

    The stage reward r_t = reward(x_t, u_t) is taken at the state before the step. With
    ``params``, every function takes them as a third argument: ``dynamics(x, u, p)``,
    ``reward(x, u, p)``, ``constraint(x, u, p)``.

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
        params: optional per-episode values (any pytree), arguments of a compiled solve.
        knots: optional number of spline knots K (see :class:`Problem`).
        spline: ``zero``, ``linear`` or ``cubic`` interpolation between knots.
        dt: optional seconds per control step (for real-time loops).

    Returns:
        The :class:`Problem`.
    """
    if not callable(dynamics):
        raise TypeError(f"dynamics must be a function (state, u) -> state (got {dynamics!r})")
    if not callable(reward):
        raise TypeError(f"reward must be a function (state, u) -> scalar (got {reward!r})")
    _check_finite("init_state", init_state)
    x = _struct(init_state)
    u = jax.ShapeDtypeStruct((int(action_dim),), jnp.float32)
    extra = () if params is None else (_struct(params),)
    _check_state("dynamics(x, u)", _trace("dynamics(x, u)", dynamics, x, u, *extra), init_state)
    _check_scalar("reward(x, u)", _trace("reward(x, u)", reward, x, u, *extra))

    def step(x, u, *p):
        return dynamics(x, u, *p), reward(x, u, *p)

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
        params=params,
        knots=knots,
        spline=spline,
        dt=dt,
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
        y = jax.ShapeDtypeStruct(shape, jnp.float32)
        _check_scalar("fn(y)", _trace("fn(y)", self.fn, y))
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

    def make_instance(self, x0: PyTree = None, params: PyTree = None, **demo: Any) -> Instance:
        """The objective's :class:`Instance`; an objective has no x0 or params.

        Raises:
            ValueError: when ``x0`` or ``params`` is given, or a demo value without a demo.
        """
        if x0 is not None or params is not None:
            raise ValueError("an Objective has no initial state or params to replace")
        own = self.instance()
        ref, rew = demo.get("demo_reference"), demo.get("demo_reward")
        if (ref is not None or rew is not None) and self.demo is None:
            raise ValueError(f"objective {self.name!r} has no demonstration to replace")
        return own._replace(
            demo_reference=own.demo_reference
            if ref is None
            else check_like("demo_reference", ref, own.demo_reference),
            demo_reward=own.demo_reward
            if rew is None
            else check_like("demo_reward", rew, own.demo_reward),
        )

    def instance(self) -> Instance:
        """The objective's :class:`Instance` (its demonstration's reference, if any)."""
        demo = self.demo
        return Instance(
            x0=None,
            params=None,
            demo_reference=None if demo is None else jnp.asarray(demo.reference, jnp.float32),
            demo_reward=None if demo is None else jnp.asarray(demo.reward, jnp.float32),
        )

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
