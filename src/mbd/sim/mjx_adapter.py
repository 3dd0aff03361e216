"""A MuJoCo model of your own as an MBD problem, simulated by MuJoCo MJX.

Give an MJCF file (or string) and a reward of the MJX data; get a
:class:`~mbd.problem.Problem` whose state is the ``mjx.Data`` pytree::

    from mbd.sim.mjx_adapter import make_mjx_problem

    def reward(d, u):                       # d: mjx.Data after the step, u: (nu,)
        return jnp.cos(d.qpos[0]) - 0.01 * jnp.sum(u**2)

    problem = make_mjx_problem("pendulum.xml", reward, horizon=40, n_frames=5)
    result = mbd.make_solver(problem, mbd.MBDConfig(num_samples=256)).solve(key)

One control step holds ``ctrl = u`` for ``n_frames`` physics steps (``mjx.step``, the
model's own integrator and ``opt.timestep``). Controls live in the actuators'
``ctrlrange`` (or [-1, 1] for an actuator without one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mbd.problem import Array, Demo, Problem, PyTree
from mbd.sim import require

MJXRewardFn = Callable[[Any, Array], Array]
"""``reward(mjx_data_after_step, u) -> scalar``."""


def load_model(model: Any):
    """Loads a ``mujoco.MjModel`` from an MJCF file, an MJCF string, or passes one through.

    Args:
        model: a ``mujoco.MjModel``, MJCF text (starting with ``<``), or a file path.

    Returns:
        The ``mujoco.MjModel`` (a copy of one given).

    Raises:
        ValueError: when the file is missing or MuJoCo rejects the model (with its reason).
    """
    from mbd.sim.engines import compile_model

    return compile_model(model)


@dataclasses.dataclass(frozen=True, eq=False)
class MJXStep:
    """``step(data, u) -> (next_data, reward)`` with MJX; keeps the models at hand.

    Attributes:
        mj_model: the ``mujoco.MjModel`` (renders read its geometry).
        mjx_model: the device model used by ``mjx.step``.
        reward: ``reward(next_data, u) -> scalar``.
        n_frames: physics steps per control step.
    """

    mj_model: Any
    mjx_model: Any
    reward: MJXRewardFn
    n_frames: int = 1

    @property
    def dt(self) -> float:
        """Seconds per control step."""
        return float(self.mj_model.opt.timestep) * self.n_frames

    def __call__(self, data: PyTree, u: Array) -> tuple[PyTree, Array]:
        mjx = require("mujoco.mjx")
        data = data.replace(ctrl=u)

        def physics(d, _):
            return mjx.step(self.mjx_model, d), None

        nxt, _ = jax.lax.scan(physics, data, None, length=self.n_frames)  # Eq. 1c
        return nxt, jnp.asarray(self.reward(nxt, u), jnp.float32).reshape(())


def make_mjx_problem(
    model: Any,
    reward: MJXRewardFn,
    horizon: int,
    n_frames: int = 1,
    init_qpos: Array | None = None,
    init_qvel: Array | None = None,
    timestep: float | None = None,
    demo: Demo | None = None,
    name: str | None = None,
) -> Problem:
    """Builds a :class:`~mbd.problem.Problem` from a MuJoCo model and a reward.

    Args:
        model: MJCF file path, MJCF string, or ``mujoco.MjModel``.
        reward: ``reward(d, u) -> scalar`` with ``d`` the ``mjx.Data`` after the control
            step and ``u`` (nu,) the control; rewards are maximized.
        horizon: number of control steps T.
        n_frames: physics steps per control step (>= 1).
        init_qpos: x_0's joint positions (nq,); the model's ``qpos0`` if None.
        init_qvel: x_0's joint velocities (nv,); zeros if None.
        timestep: optional physics time step replacing ``opt.timestep``.
        demo: optional :class:`~mbd.problem.Demo`; ``observe(states, controls)`` gets the
            stacked ``mjx.Data`` (leading axis T).
        name: label; the model's name if None.

    Returns:
        The problem; ``problem.step`` is an :class:`MJXStep`.
    """
    from mbd.sim.engines import action_box, adapt_model, compile_model, model_name

    mjx = require("mujoco.mjx")
    m = compile_model(model, timestep)
    if m.nu < 1:
        raise ValueError("the model has no actuator: nothing to plan")
    if not isinstance(n_frames, int | np.integer) or n_frames < 1:
        raise ValueError(f"n_frames must be an integer >= 1 (got {n_frames!r})")
    if not callable(reward):
        raise TypeError("reward must be a function (mjx_data, u) -> scalar")
    m, mx = adapt_model(m, "mjx", mjx.put_model)  # options MJX lacks: warned or refused
    d = mjx.make_data(mx)
    qpos = m.qpos0 if init_qpos is None else init_qpos
    qvel = np.zeros(m.nv) if init_qvel is None else init_qvel
    qpos = jnp.asarray(qpos, jnp.float32)
    qvel = jnp.asarray(qvel, jnp.float32)
    if qpos.shape != (m.nq,) or qvel.shape != (m.nv,):
        raise ValueError(
            f"init_qpos must have shape ({m.nq},) and init_qvel ({m.nv},) "
            f"(got {qpos.shape} and {qvel.shape})"
        )
    d = jax.jit(mjx.forward)(mx, d.replace(qpos=qpos, qvel=qvel))
    lo, hi = action_box(m)
    return Problem(
        init_state=d,
        step=MJXStep(mj_model=m, mjx_model=mx, reward=reward, n_frames=int(n_frames)),
        horizon=int(horizon),
        action_dim=int(m.nu),
        action_low=lo,
        action_high=hi,
        demo=demo,
        name=name or model_name(m, default="mjx_model"),
    )


class MJXPhysics:
    """The ``mjx`` engine of :mod:`mbd.sim.engines`: ``mjx.Data`` states, ``mjx.step``.

    Args:
        m: the ``mujoco.MjModel``; options MJX lacks are switched off with a warning or
            refused (:func:`~mbd.sim.engines.adapt_model`).
        bodies: ids (K,) of the bodies whose world positions the views carry.
        n_frames: physics steps per control step.
    """

    engine = "mjx"

    def __init__(self, m, bodies: np.ndarray, n_frames: int):
        from mbd.sim.engines import adapt_model

        mjx = require("mujoco.mjx")
        self._mjx = mjx
        self.model, self.mjx_model = adapt_model(m, "mjx", mjx.put_model)
        self.bodies = np.asarray(bodies, np.int32).reshape(-1)
        self.n_frames = int(n_frames)

    def init(self, qpos: np.ndarray, qvel: np.ndarray):
        """``mjx.Data`` at (qpos, qvel), forward dynamics run."""
        mjx = self._mjx
        d = mjx.make_data(self.mjx_model)
        d = d.replace(qpos=jnp.asarray(qpos, jnp.float32), qvel=jnp.asarray(qvel, jnp.float32))
        return jax.jit(mjx.forward)(self.mjx_model, d)

    def step(self, d, u: Array):
        """``n_frames`` ``mjx.step`` calls holding ctrl = u, then forward kinematics (so
        that ``xpos`` / ``xquat`` are those of the new state)."""

        def physics(d, _):
            return self._mjx.step(self.mjx_model, d), None

        nxt, _ = jax.lax.scan(physics, d.replace(ctrl=u), None, length=self.n_frames)
        return self._mjx.kinematics(self.mjx_model, nxt)

    def view(self, d):
        """The engine-neutral :class:`~mbd.sim.engines.View` of ``mjx.Data``."""
        from mbd.sim.engines import View

        body = jnp.take(d.xpos, jnp.asarray(self.bodies), axis=-2)
        return View(d.time, d.qpos, d.qvel, d.act, d.sensordata, body)

    def poses(self, states) -> tuple[np.ndarray, np.ndarray]:
        """(pos (F, nbody-1, 3), quat (F, nbody-1, 4)) of stacked ``mjx.Data``."""
        return np.asarray(states.xpos)[:, 1:], np.asarray(states.xquat)[:, 1:]


def body_positions(states: PyTree, index: Array) -> Array:
    """World positions of bodies from (stacked) ``mjx.Data``.

    Args:
        states: ``mjx.Data``, possibly with leading axes (e.g. (T,)).
        index: MuJoCo body ids (K,).

    Returns:
        (..., K, 3): ``xpos`` of those bodies.
    """
    return jnp.take(states.xpos, jnp.asarray(index), axis=-2)


def frames(problem: Problem, states: PyTree) -> tuple[np.ndarray, np.ndarray]:
    """Body poses for a render: x_0 then the rollout states, bodies 1.. (world dropped).

    Args:
        problem: a problem made by :func:`make_mjx_problem`.
        states: stacked ``mjx.Data`` x_1 .. x_T.

    Returns:
        (pos (T+1, nbody-1, 3), quat (T+1, nbody-1, 4)).
    """
    d0 = problem.init_state
    pos = np.concatenate([np.asarray(d0.xpos)[None], np.asarray(states.xpos)])[:, 1:]
    rot = np.concatenate([np.asarray(d0.xquat)[None], np.asarray(states.xquat)])[:, 1:]
    return pos, rot


__all__ = ["MJXPhysics", "MJXStep", "body_positions", "frames", "load_model", "make_mjx_problem"]
