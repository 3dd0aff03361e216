"""The ``warp`` engine: MuJoCo Warp (``mujoco-warp``), every sample one Warp world.

Made for a GPU, where it is the default engine when JAX sees a CUDA device. Warp also
runs its kernels on the CPU (it compiles them with LLVM on first use, then caches them),
which is how this project tests it on CPU-only machines; there it is far slower than the
native engine.

Like the native engine, a whole horizon of control steps of the batch (a rollout of
every sample, :meth:`WarpPhysics.run`; a plant's step is one of them) is one host
callback: the states (:class:`~mbd.sim.engines.HostState`, the ``mjSTATE_FULLPHYSICS``
layout) are copied into ``nworld = B`` Warp worlds, stepped ``n_frames`` times with
``ctrl = u``, forward kinematics run, and copied back, once per control step. MuJoCo
Warp computes in float32, so ``lo`` is always 0. The solver warm start is cleared before
each control step so that a step is a function of its inputs alone. On a GPU the states
still cross the host once per control step (``warp.jax_experimental`` could keep them on
the device; not done yet).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mbd.sim import require
from mbd.sim.engines import adapt_model, join64, split64
from mbd.sim.native import HostPhysics


def quiet_warp(wp) -> None:
    """No banner and no per-module load lines on stdout when Warp starts and compiles
    (``config.log_level`` since Warp 1.10 or so, ``config.quiet`` before); its warnings
    still reach stderr."""
    wp.config.quiet = True
    if hasattr(wp, "LOG_WARNING") and hasattr(wp.config, "log_level"):
        wp.config.log_level = wp.LOG_WARNING


class WarpPhysics(HostPhysics):
    """MuJoCo Warp stepping of :class:`~mbd.sim.engines.HostState` values.

    Args:
        m: the ``mujoco.MjModel``; options MuJoCo Warp lacks are switched off with a
            warning or refused.
        bodies: ids (K,) of the bodies whose world positions the states carry.
        n_frames: physics steps per control step.
        device: Warp device (default: Warp's preferred one, a CUDA GPU when present).
    """

    engine = "warp"

    def __init__(self, m, bodies: np.ndarray, n_frames: int, device: str | None = None):
        self._wp = require("warp")
        quiet_warp(self._wp)
        self._mjw = require("mujoco_warp")
        self.device = device
        with self._wp.ScopedDevice(device):
            m, self.warp_model = adapt_model(m, "warp", self._mjw.put_model)
        self._layout(m, bodies, n_frames)
        self._data: dict[int, Any] = {}  # Warp data per batch size

    def _world_data(self, n: int):
        if n not in self._data:
            self._data[n] = self._mjw.make_data(self.model, nworld=n)
        return self._data[n]

    def run(self, x0: np.ndarray, ctrl: np.ndarray):
        """T control steps of a batch in one host call, with the arrays of
        :meth:`~mbd.sim.native.HostPhysics.run`; the state is handed on between them as
        hi + lo, so a whole-horizon rollout equals T one-step ones bitwise (on a GPU it
        saves T - 1 round trips through JAX)."""
        n, T = ctrl.shape[:2]
        x = np.empty((n, T, self.nstate))
        sens = np.empty((n, T, self.model.nsensordata))
        body = np.empty((n, T, len(self.bodies), 3))
        state = x0
        with self._lock, self._wp.ScopedDevice(self.device):
            d = self._world_data(n)
            for t in range(T):
                x[:, t], sens[:, t], body[:, t] = self._control_step(d, state, ctrl[:, t])
                state = join64(*split64(x[:, t]))
        return x, sens, body

    def _control_step(self, d, x: np.ndarray, u: np.ndarray):
        """``n_frames`` steps of the worlds ``d`` from float64 states x (B, nstate) holding
        u (B, nu); returns the float64 states, sensors and tracked bodies' positions."""
        mjw, m = self._mjw, self.model
        n = x.shape[0]
        d.time.assign(x[:, 0].astype(np.float32))
        for field, sl in self.fields():
            if sl.stop > sl.start:
                getattr(d, field).assign(x[:, sl].astype(np.float32))
        d.ctrl.assign(np.asarray(u, np.float32).reshape(n, m.nu))
        d.qacc_warmstart.zero_()
        for _ in range(self.n_frames):
            mjw.step(self.warp_model, d)
        mjw.kinematics(self.warp_model, d)
        out = x.copy()
        out[:, 0] = d.time.numpy()
        for field, sl in self.fields():
            if sl.stop > sl.start:
                out[:, sl] = getattr(d, field).numpy()
        sens = d.sensordata.numpy().reshape(n, m.nsensordata)
        return out, sens, d.xpos.numpy()[:, self.bodies]


__all__ = ["WarpPhysics"]
