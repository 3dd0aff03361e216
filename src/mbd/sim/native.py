"""The native MuJoCo engine: MuJoCo's multi-threaded C physics, called from JAX.

An open-loop rollout knows every sample's controls before it starts, so the whole
horizon of a batch is one host call (:meth:`NativePhysics.rollout`): the jitted solve
hands the batch (B, T, nu) to ``jax.pure_callback`` once per update, and MuJoCo's batch
stepper (``mujoco.batch.Batch``, a persistent thread pool over ``threads`` MjData) runs
T control steps of ``n_frames`` physics steps each for every sample, recording the
states, the sensors and the tracked bodies' world positions in C, with no Python loop
over samples. The reward is then evaluated in JAX on the returned trajectory. A plant
steps one control step at a time (:meth:`NativePhysics.step`, the same host call with
T = 1). XLA compiles no physics, so a solve starts in about a
second.

Both paths run exactly what ``mujoco.rollout`` ran one control step at a time: each
control step starts from the full physics state (``mjSTATE_FULLPHYSICS``) with MuJoCo's
defaults for everything else (the constraint solver's warm start zero), so a whole-horizon
rollout, a replay and a plant stepped per control step are bitwise equal
(``tests/test_engines.py``).

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
    ``_lock`` and implements ``run(x0, ctrl) -> (x, sensordata, body_pos)``, T control
    steps of a batch on float64 NumPy arrays: :meth:`rollout` hands it the whole horizon
    in one host call, and :meth:`step` (a plant's step) is that rollout with T = 1.
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

    def run(self, x0: np.ndarray, ctrl: np.ndarray):
        """T control steps of a batch on the host: (x (B, T, nstate) float64, sensordata
        (B, T, nsensordata), body_pos (B, T, K, 3)) from x0 (B, nstate) float64 and ctrl
        (B, T, nu), equal bitwise to T calls of the engine's step."""
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

    def _packed_rollout(self, packed: np.ndarray) -> np.ndarray:
        """``run`` behind one array each way (a host callback pays per array).

        Args:
            packed: float32 (..., 2 nstate + T nu): hi, lo, then the controls.

        Returns:
            float32 (..., T, 2 nstate + nsensordata + 3 K): hi, lo, sensors, positions.
        """
        ns, nu = self.nstate, self.model.nu
        packed = np.asarray(packed)
        lead = packed.shape[:-1]
        flat = packed.reshape(-1, packed.shape[-1])
        T = (flat.shape[1] - 2 * ns) // nu
        x0 = join64(flat[:, :ns], flat[:, ns : 2 * ns])
        x, sens, body = self.run(x0, flat[:, 2 * ns :].reshape(-1, T, nu).astype(np.float64))
        hi, lo = split64(x)
        out = np.concatenate([hi, lo, sens.astype(np.float32), body.reshape(*x.shape[:2], -1)], -1)
        return out.astype(np.float32, copy=False).reshape(*lead, T, -1)

    def rollout(self, state: HostState, controls: Array) -> HostState:
        """T control steps from ``state``, holding ``controls[t]`` for ``n_frames``
        physics steps each, in one host call (the subclass's ``run``); batched under
        ``vmap``; equal to T calls of :meth:`step` bitwise.

        Args:
            state: :class:`HostState` x_0 (any leading axes, matching ``controls``').
            controls: (T, nu) controls.

        Returns:
            :class:`HostState` of x_1 .. x_T, leaves with a leading axis T.
        """
        ns, nsens, K = self.nstate, self.model.nsensordata, len(self.bodies)
        lead, T = state.hi.shape[:-1], controls.shape[-2]
        u = jnp.asarray(controls, jnp.float32).reshape(*controls.shape[:-2], -1)
        packed = jnp.concatenate([state.hi, state.lo, u], axis=-1)
        shape = jax.ShapeDtypeStruct((*lead, T, 2 * ns + nsens + 3 * K), jnp.float32)
        out = jax.pure_callback(self._packed_rollout, shape, packed, vmap_method="broadcast_all")
        cuts = np.cumsum([ns, ns, nsens])
        hi, lo, sens, body = jnp.split(out, cuts, axis=-1)
        return HostState(hi, lo, sens, body.reshape(*body.shape[:-1], K, 3))

    def step(self, state: HostState, u: Array) -> HostState:
        """``n_frames`` physics steps holding ctrl = u (a plant's step): :meth:`rollout`
        with T = 1; batched under ``vmap``."""
        nxt = self.rollout(state, jnp.asarray(u)[..., None, :])
        at = (slice(None),) * (state.hi.ndim - 1) + (0,)  # T = 1 follows the leading axes
        return jax.tree_util.tree_map(lambda a: a[at], nxt)

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
        threads: threads of the batch stepper (default: the usable CPUs).
    """

    engine = "mujoco"

    def __init__(self, m, bodies: np.ndarray, n_frames: int, threads: int | None = None):
        self._layout(m, bodies, n_frames)
        self.threads = cpu_threads() if threads is None else int(threads)
        self._batch_cls = require("mujoco.batch").Batch
        self._batches: dict[int, Any] = {}  # (Batch, its lock) per batch size B
        mj, s = self._mujoco, self._mujoco.mjtState
        # Columns of the batch's state rows (mjSTATE_INTEGRATION, components in bit
        # order) that hold the FULLPHYSICS state, and those of the warm start.
        offsets, cols, at = {}, [], 0
        for bit in sorted(
            int(b) for b in s.__members__.values() if int(b) & int(s.mjSTATE_INTEGRATION)
        ):
            if bit & (bit - 1):
                continue  # a union of components, not one
            size = int(mj.mj_stateSize(m, bit))
            offsets[bit] = (at, size)
            if bit & int(self.spec):
                cols.extend(range(at, at + size))
            at += size
        self._full_cols: Any = np.asarray(cols, np.intp)
        if len(cols) and cols[-1] - cols[0] == len(cols) - 1:  # contiguous: a slice
            self._full_cols = slice(cols[0], cols[-1] + 1)
        ws_at, ws_size = offsets[int(s.mjSTATE_WARMSTART)]
        self._warm_cols = slice(ws_at, ws_at + ws_size)
        assert len(cols) == self.nstate
        # RK4 recomputes kinematics at its stages, so xpos after a physics step is not
        # the pre-step state's: positions then come from a position stage per control step.
        self._rk4 = int(m.opt.integrator) == int(mj.mjtIntegrator.mjINT_RK4)
        self._ctrl_spec = int(s.mjSTATE_CTRL)

    def _batch(self, n: int):
        """(the Batch of n simulations, its lock): one per batch size, so that a plant's
        one-sample step never waits for a planner's rollout of many samples."""
        with self._lock:
            entry = self._batches.get(n)
            if entry is None:
                b = self._batch_cls(self.model, n, nthread=min(self.threads, n))
                entry = self._batches[n] = (b, threading.Lock())
        return entry

    def run(self, x0: np.ndarray, ctrl: np.ndarray):
        """T control steps of a batch from float64 states, on the host.

        Args:
            x0: float64 (B, nstate) initial states.
            ctrl: (B, T, nu) controls.

        Returns:
            (x (B, T, nstate) float64, sensordata (B, T, nsensordata), body_pos
            (B, T, K, 3)) after each control step.
        """
        m, mj = self.model, self._mujoco
        n, T = ctrl.shape[:2]
        F, K, full = self.n_frames, len(self.bodies), int(self.spec)
        x = np.empty((n, T, self.nstate))
        sens = np.empty((n, T, m.nsensordata))
        body = np.empty((n, T, K, 3))
        items = (full, "sensordata") if self._rk4 or not K else (full, "sensordata", "xpos")
        out = {full: np.empty((n, F, self.nstate)), "sensordata": np.empty((n, F, m.nsensordata))}
        if "xpos" in items:
            out["xpos"] = np.empty((n, F, m.nbody, 3))
        # The batch stepper's own call with fixed buffers: Batch.rollout's checks and
        # copies cost more than the physics of a small model.
        records = [(None if i == full else i, full if i == full else 0, out[i]) for i in items]
        u = np.empty((n, F, m.nu))
        b, lock = self._batch(n)
        with lock:
            b.reset(stage=mj.mjtStage.mjSTAGE_NONE)  # MuJoCo's defaults
            b.state[:, self._full_cols] = x0
            xpos = b.bind("xpos") if K else None
            for t in range(T):
                # Each control step is what one mujoco.rollout call runs: a fresh
                # warm start and fresh warning counters.
                b.state[:, self._warm_cols] = 0.0
                b.warning[...] = 0
                u[...] = ctrl[:, t : t + 1]
                b._check(None, b._b.rollout(None, F, u, self._ctrl_spec, records))
                x[:, t] = out[full][:, -1]
                # The state as a control step hands it on (float32 hi + lo, as a
                # per-step rollout carries it through JAX), so both paths agree bitwise.
                b.state[:, self._full_cols] = join64(*split64(x[:, t]))
                sens[:, t] = out["sensordata"][:, -1]
                if not K:
                    continue
                if self._rk4:
                    b.forward(stage=mj.mjtStage.mjSTAGE_POS)
                    body[:, t] = xpos[:, self.bodies]
                elif t:
                    # mj_step computes kinematics before it integrates: the first physics
                    # step's xpos is that of the state the last control step reached.
                    body[:, t - 1] = out["xpos"][:, 0, self.bodies]
            if K and not self._rk4:
                b.forward(stage=mj.mjtStage.mjSTAGE_POS)
                body[:, T - 1] = xpos[:, self.bodies]
        return x, sens, body


__all__ = ["HostPhysics", "NativePhysics"]
