"""The native MuJoCo engine: MuJoCo's multi-threaded C rollout, called from JAX.

One control step of every sample in a batch is one ``mujoco.rollout.rollout`` call
(``n_frames`` physics steps per sample, the samples spread over ``threads`` MjData on a
persistent thread pool), reached from the jitted solve through ``jax.pure_callback`` with
``vmap_method="broadcast_all"``: under the solver's ``vmap`` over samples and ``scan``
over time, the callback receives the whole batch (B, nstate) once per control step. XLA
compiles no physics, so a solve starts in about a second.

The state crosses as :class:`~mbd.sim.engines.HostState` (float64 as float32 hi + lo), so
the host sees exactly the float64 state it returned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mbd.problem import Array
from mbd.sim import require
from mbd.sim.engines import HostState, View, cpu_threads, join64, split64


class HostPhysics:
    """The part of the host engines (native, Warp) that JAX sees.

    A subclass sets ``model`` (the ``mujoco.MjModel``), ``bodies``, ``n_frames`` and
    ``_lock`` and implements ``host_step(hi, lo, u) -> (hi, lo, sensordata, body_pos)``
    on NumPy arrays with any leading axes.
    """

    engine = "host"

    def _layout(self, m, bodies: np.ndarray, n_frames: int) -> None:
        mujoco = require("mujoco")
        self._mujoco = mujoco
        self.model = m
        self.bodies = np.asarray(bodies, np.int32).reshape(-1)
        self.n_frames = int(n_frames)
        self.spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.nstate = int(mujoco.mj_stateSize(m, self.spec))
        size, s = mujoco.mj_stateSize, mujoco.mjtState
        self._off_qpos = int(size(m, s.mjSTATE_TIME))
        self._off_qvel = int(size(m, s.mjSTATE_TIME | s.mjSTATE_QPOS))
        self._off_act = int(size(m, s.mjSTATE_TIME | s.mjSTATE_QPOS | s.mjSTATE_QVEL))
        self._lock = threading.Lock()  # devices of one process may call at once

    def fields(self) -> tuple[tuple[str, slice], ...]:
        """(name, slice of the state vector) of qpos, qvel and act."""
        m = self.model
        return (
            ("qpos", slice(self._off_qpos, self._off_qpos + m.nq)),
            ("qvel", slice(self._off_qvel, self._off_qvel + m.nv)),
            ("act", slice(self._off_act, self._off_act + m.na)),
        )

    def host_init(self, qpos: np.ndarray, qvel: np.ndarray):
        """(state float64 (nstate,), sensors (nsensordata,), body positions (K, 3)) of
        (qpos, qvel), forward dynamics run."""
        mj = self._mujoco
        d = mj.MjData(self.model)
        d.qpos[:] = qpos
        d.qvel[:] = qvel
        mj.mj_forward(self.model, d)
        x = np.empty(self.nstate)
        mj.mj_getState(self.model, d, x, self.spec)
        return x, np.array(d.sensordata), np.array(d.xpos[self.bodies])

    def host_step(self, hi: np.ndarray, lo: np.ndarray, u: np.ndarray):
        """One control step of a batch, on the host.

        Args:
            hi, lo: float32 (..., nstate) halves of the states.
            u: float32 (..., nu) controls (same leading axes).

        Returns:
            (hi, lo, sensordata, body_pos) after ``n_frames`` physics steps, float32,
            (..., nstate), (..., nstate), (..., nsensordata), (..., K, 3).
        """
        raise NotImplementedError

    def _pack(self, lead, x: np.ndarray, sens: np.ndarray, body: np.ndarray):
        h, lo = split64(x)
        f32 = np.float32
        return (
            h.reshape(*lead, self.nstate),
            lo.reshape(*lead, self.nstate),
            sens.astype(f32).reshape(*lead, self.model.nsensordata),
            body.astype(f32).reshape(*lead, len(self.bodies), 3),
        )

    def _kinematics(self, x: np.ndarray, d) -> Iterator[Any]:
        """``d`` after ``mj_kinematics`` at each float64 state of x (F, nstate), in turn."""
        mj, m = self._mujoco, self.model
        for row in x:
            mj.mj_setState(m, d, row, self.spec)
            mj.mj_kinematics(m, d)
            yield d

    def init(self, qpos: np.ndarray, qvel: np.ndarray) -> HostState:
        """The state x_0 at (qpos, qvel) (forward dynamics run, sensors fresh)."""
        return HostState(*map(jnp.asarray, self._pack((), *self.host_init(qpos, qvel))))

    def step(self, state: HostState, u: Array) -> HostState:
        """``n_frames`` physics steps holding ctrl = u; batched under ``vmap``.

        Args:
            state: :class:`HostState` (any leading axes, matching ``u``'s).
            u: (nu,) controls.
        """
        lead = state.hi.shape[:-1]
        shapes = (
            jax.ShapeDtypeStruct(state.hi.shape, jnp.float32),
            jax.ShapeDtypeStruct(state.lo.shape, jnp.float32),
            jax.ShapeDtypeStruct((*lead, self.model.nsensordata), jnp.float32),
            jax.ShapeDtypeStruct((*lead, len(self.bodies), 3), jnp.float32),
        )
        out = jax.pure_callback(
            self.host_step,
            shapes,
            state.hi,
            state.lo,
            jnp.asarray(u, jnp.float32),
            vmap_method="broadcast_all",
        )
        return HostState(*out)

    def view(self, state: HostState) -> View:
        """The :class:`~mbd.sim.engines.View` of a state (float32)."""
        x = state.hi
        q, v, a = (x[..., sl] for _, sl in self.fields())
        return View(x[..., 0], q, v, a, state.sensordata, state.body_pos)

    def poses(self, states: Any) -> tuple[np.ndarray, np.ndarray]:
        """World poses of bodies 1.. for stacked states (leading axis F).

        Returns:
            (pos (F, nbody-1, 3), quat (F, nbody-1, 4)), from ``mj_kinematics``.
        """
        x = join64(np.asarray(states.hi), np.asarray(states.lo)).reshape(-1, self.nstate)
        frames = [
            (d.xpos[1:].copy(), d.xquat[1:].copy())
            for d in self._kinematics(x, self._mujoco.MjData(self.model))
        ]
        return np.stack([p for p, _ in frames]), np.stack([q for _, q in frames])


class NativePhysics(HostPhysics):
    """Native MuJoCo stepping of :class:`~mbd.sim.engines.HostState` values.

    Args:
        m: the ``mujoco.MjModel``.
        bodies: ids (K,) of the bodies whose world positions the states carry.
        n_frames: physics steps per control step.
        threads: MjData / threads of the rollout pool (default: the usable CPUs).
    """

    engine = "mujoco"

    def __init__(self, m, bodies: np.ndarray, n_frames: int, threads: int | None = None):
        self._layout(m, bodies, n_frames)
        self._rollout = require("mujoco.rollout")
        self.threads = cpu_threads() if threads is None else int(threads)
        self._datas = [self._mujoco.MjData(m) for _ in range(self.threads)]

    def _body_positions(self, x: np.ndarray) -> np.ndarray:
        """(B, K, 3) world positions of the tracked bodies of float64 states (B, nstate)."""
        if not len(self.bodies):
            return np.zeros((x.shape[0], 0, 3))
        return np.stack([d.xpos[self.bodies] for d in self._kinematics(x, self._datas[0])])

    def host_step(self, hi: np.ndarray, lo: np.ndarray, u: np.ndarray):
        """One control step of a batch: ``mujoco.rollout`` over the thread pool."""
        m = self.model
        x = join64(hi, lo).reshape(-1, self.nstate)
        ctrl = np.asarray(u, np.float64).reshape(-1, 1, m.nu)
        with self._lock:
            state, sens = self._rollout.rollout(
                m, self._datas, x, ctrl, nstep=self.n_frames, persistent_pool=True
            )
            last = state[:, -1]
            body = self._body_positions(last)
        return self._pack(hi.shape[:-1], last, sens[:, -1], body)


__all__ = ["HostPhysics", "NativePhysics"]
