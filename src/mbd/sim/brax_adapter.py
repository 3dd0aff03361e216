"""Brax environments as MBD problems (paper Sec. 5.1: the locomotion and push-T tasks).

Any Brax ``PipelineEnv`` becomes a :class:`~mbd.problem.Problem` whose state is the Brax
``envs.State`` pytree and whose step is ``env.step``; the stage reward is the env's own
``State.reward`` or a function of your own. Controls live in the env's action box (the
actuators' ``ctrlrange``); the solver's normalized z in [-1, 1] maps onto it::

    from brax import envs
    from mbd.sim.brax_adapter import make_brax_problem

    env = envs.get_environment("hopper", backend="positional", n_frames=20)
    problem = make_brax_problem(env, horizon=50)
    result = mbd.make_solver(problem, mbd.MBDConfig(num_samples=256)).solve(key)

A model of your own (an MJCF string or file) runs through :class:`ModelEnv`, a minimal
``PipelineEnv`` with observation (q, qd) and reward 0, so that the reward comes from a
function of the pipeline state::

    env = ModelEnv.from_xml(xml, backend="generalized", n_frames=5)
    problem = make_brax_problem(env, 40, reward=lambda s, u, s1: s1.pipeline_state.q[0])

Brax itself is no longer actively maintained and points to MuJoCo MJX; see
:mod:`mbd.sim.mjx_adapter` for models you write yourself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mbd.problem import Array, Demo, Problem, PyTree
from mbd.sim import quiet_brax, require

BACKENDS: tuple[str, ...] = ("positional", "generalized", "mjx")
"""Brax physics pipelines this adapter supports (``spring`` works too but is untested)."""

RewardFn = Callable[..., Array]
"""``reward(state, u, next_state) -> scalar`` (``reward(state, u, next_state, params)``
for a problem with params): states are Brax ``envs.State`` values."""


def check_backend(backend: str, allowed: Sequence[str] = BACKENDS) -> str:
    """Checks a backend name.

    Args:
        backend: a Brax pipeline name.
        allowed: the names accepted here.

    Returns:
        The name.

    Raises:
        ValueError: naming the valid choices.
    """
    if backend not in allowed:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(allowed)}")
    return backend


def load_system(model: str | Path, timestep: float | None = None):
    """Loads a Brax ``System`` from an MJCF string or file, with a clear error.

    Args:
        model: MJCF text (starting with ``<``) or a path to an ``.xml`` file.
        timestep: optional physics time step that replaces the model's ``opt.timestep``.

    Returns:
        The ``brax.base.System``.

    Raises:
        ValueError: when the file is missing or the MJCF does not parse or compile.
    """
    mjcf = require("brax.io.mjcf")
    text = _read_model(model)
    try:
        with quiet_brax():
            sys = mjcf.loads(text)
    except Exception as e:  # ElementTree.ParseError, MuJoCo's ValueError, Brax's own
        raise ValueError(f"cannot load the MJCF model {_describe(model)}: {e}") from None
    return sys if timestep is None else set_timestep(sys, timestep)


def _read_model(model: str | Path) -> str:
    if isinstance(model, Path) or not str(model).lstrip().startswith("<"):
        path = Path(model)
        if not path.is_file():
            raise ValueError(f"MJCF model file {str(path)!r} does not exist")
        return path.read_text()
    return str(model)


def _describe(model: str | Path) -> str:
    text = str(model)
    return "string" if text.lstrip().startswith("<") else repr(text)


def set_timestep(sys, dt: float):
    """Returns the system with physics time step ``dt``, for every backend.

    A Brax ``System`` is an ``mjx.Model`` whose time step lives in ``opt.timestep``
    (there is no ``dt`` field: ``sys.replace(dt=...)`` fails), so the nested field is
    replaced with ``tree_replace``. Positional, generalized and mjx pipelines all read it.

    Args:
        sys: a ``brax.base.System``.
        dt: time step in seconds (> 0).

    Returns:
        A new ``System``.
    """
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"timestep must be finite and > 0 (got {dt})")
    return sys.tree_replace({"opt.timestep": jnp.asarray(dt, dtype=jnp.float32)})


def _model_env_class():
    envs_base = require("brax.envs.base")

    class ModelEnv(envs_base.PipelineEnv):
        """A bare Brax environment for a model of your own: reward 0, obs (q, qd).

        Use it with :func:`make_brax_problem` and a reward function.
        """

        def __init__(
            self,
            sys,
            backend: str = "generalized",
            n_frames: int = 1,
            init_q: Array | None = None,
            init_qd: Array | None = None,
        ):
            check_backend(backend)
            super().__init__(sys=sys, backend=backend, n_frames=n_frames)
            q0 = sys.init_q if init_q is None else jnp.asarray(init_q, jnp.float32)
            qd0 = jnp.zeros(sys.qd_size()) if init_qd is None else jnp.asarray(init_qd)
            if q0.shape != (sys.q_size(),) or qd0.shape != (sys.qd_size(),):
                raise ValueError(
                    f"init_q must have shape ({sys.q_size()},) and init_qd "
                    f"({sys.qd_size()},) (got {q0.shape} and {qd0.shape})"
                )
            self._q0 = q0
            self._qd0 = qd0

        @classmethod
        def from_xml(cls, model: str | Path, timestep: float | None = None, **kwargs):
            """Builds the env from MJCF text or a file (see :func:`load_system`)."""
            return cls(load_system(model, timestep), **kwargs)

        def reset(self, rng):
            del rng
            ps = self.pipeline_init(self._q0, self._qd0)
            zero = jnp.zeros(())
            return envs_base.State(ps, self._obs(ps), zero, zero, {}, {})

        def step(self, state, action):
            ps = self.pipeline_step(state.pipeline_state, action)
            return state.replace(pipeline_state=ps, obs=self._obs(ps))

        def _obs(self, ps):
            return jnp.concatenate([ps.q, ps.qd])

    return ModelEnv


def __getattr__(name: str):
    # ``ModelEnv`` subclasses Brax's PipelineEnv, so it is built on first access.
    if name == "ModelEnv":
        cls = _model_env_class()
        globals()["ModelEnv"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class BraxStep:
    """``step(state, u) -> (next_state, reward)`` over a Brax env; keeps the env at hand
    (renders read ``env.sys``).

    Attributes:
        env: the Brax environment.
        reward: optional ``reward(state, u, next_state)``; None uses ``next_state.reward``.
    """

    env: Any
    reward: RewardFn | None = None

    @property
    def dt(self) -> float:
        """Seconds per control step (the env's ``dt``)."""
        return float(getattr(self.env, "unwrapped", self.env).dt)

    def __call__(self, state: PyTree, u: Array, *params: PyTree) -> tuple[PyTree, Array]:
        nxt = self.env.step(state, u)  # Eq. 1c: one control step = n_frames physics steps
        r = nxt.reward if self.reward is None else self.reward(state, u, nxt, *params)
        return nxt, jnp.asarray(r, jnp.float32).reshape(())


def action_box(sys) -> tuple[np.ndarray, np.ndarray]:
    """The actuators' control box (``ctrlrange``), [-1, 1] where a range is unlimited.

    Args:
        sys: a Brax ``System``.

    Returns:
        (low, high), each of shape (nu,).
    """
    rng = np.asarray(sys.actuator.ctrl_range, dtype=np.float32).reshape(-1, 2)
    lo, hi = rng[:, 0].copy(), rng[:, 1].copy()
    bad = ~(np.isfinite(lo) & np.isfinite(hi) & (hi > lo))
    lo[bad], hi[bad] = -1.0, 1.0
    return lo, hi


def make_brax_problem(
    env,
    horizon: int,
    reward: RewardFn | None = None,
    key: Array | int = 0,
    init_state: PyTree | None = None,
    demo: Demo | None = None,
    name: str | None = None,
    action_low: Any = None,
    action_high: Any = None,
    params: PyTree = None,
) -> Problem:
    """Turns a Brax environment into a :class:`~mbd.problem.Problem`.

    Args:
        env: a Brax ``Env`` (a ``PipelineEnv`` or a wrapper of one), any backend.
        horizon: number of control steps T.
        reward: optional ``reward(state, u, next_state) -> scalar`` on Brax
            ``envs.State`` values; None takes the env's own per-step ``reward``.
        key: key (or integer seed) of ``env.reset``; the env's reset noise depends on it.
        init_state: optional Brax state x_0 instead of ``env.reset(key)``.
        demo: optional :class:`~mbd.problem.Demo`; its ``observe(states, controls)``
            receives the stacked Brax states (leading axis T).
        name: label; the env's class name if None.
        action_low: lower action bounds (nu,); the actuators' ``ctrlrange`` if None.
        action_high: upper action bounds (nu,).
        params: optional per-episode values passed to ``reward`` as its fourth argument
            (arguments of a compiled solve, see :class:`~mbd.problem.Problem`).

    Returns:
        The problem; ``problem.step`` is a :class:`BraxStep` (``problem.step.env``).
    """
    if isinstance(key, int):
        key = jax.random.key(key)
    unwrapped = getattr(env, "unwrapped", env)
    sys = unwrapped.sys
    lo, hi = action_box(sys)
    lo = lo if action_low is None else action_low
    hi = hi if action_high is None else action_high
    if init_state is None:
        with quiet_brax():
            init_state = jax.jit(env.reset)(key)
    return Problem(
        init_state=init_state,
        step=BraxStep(env, reward),
        horizon=int(horizon),
        action_dim=int(env.action_size),
        action_low=lo,
        action_high=hi,
        demo=demo,
        name=name or type(unwrapped).__name__.lower(),
        params=params,
    )


def link_index(sys, names: Sequence[str]) -> np.ndarray:
    """Indices into ``pipeline_state.x`` of named bodies (Brax links).

    Args:
        sys: a Brax ``System``.
        names: body names of the MJCF.

    Returns:
        int array (len(names),).

    Raises:
        ValueError: naming the unknown bodies and the known ones.
    """
    known = list(sys.link_names)
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"unknown bodies {missing}; the model has {known}")
    return np.array([known.index(n) for n in names], dtype=np.int32)


def body_positions(states: PyTree, index: Array) -> Array:
    """World positions of bodies from (stacked) Brax env states.

    Args:
        states: Brax ``envs.State``, possibly with leading axes (e.g. (T,)).
        index: link indices (K,), see :func:`link_index`.

    Returns:
        (..., K, 3): ``pipeline_state.x.pos`` of those links.
    """
    return jnp.take(states.pipeline_state.x.pos, jnp.asarray(index), axis=-2)


def frames(problem: Problem, states: PyTree) -> tuple[np.ndarray, np.ndarray]:
    """Body poses for a render: x_0 followed by the rollout states.

    Args:
        problem: a problem made by :func:`make_brax_problem`.
        states: stacked Brax states x_1 .. x_T (leading axis T).

    Returns:
        (pos (T+1, L, 3), quat (T+1, L, 4)) of the L links (bodies 1.. of ``mj_model``).
    """
    x0 = problem.init_state.pipeline_state.x
    xs = states.pipeline_state.x
    pos = np.concatenate([np.asarray(x0.pos)[None], np.asarray(xs.pos)])
    rot = np.concatenate([np.asarray(x0.rot)[None], np.asarray(xs.rot)])
    return pos, rot


__all__ = [
    "BACKENDS",
    "BraxStep",
    "ModelEnv",  # noqa: F822 (built on first access, see __getattr__)
    "action_box",
    "body_positions",
    "check_backend",
    "frames",
    "link_index",
    "load_system",
    "make_brax_problem",
    "set_timestep",
]
