"""One MuJoCo task, three engines: native MuJoCo on the CPU, MJX, MuJoCo Warp.

A task is an MJCF model plus a reward written against :class:`View`, an engine-neutral
view of the simulation state (time, qpos, qvel, act, the model's sensors and the world
positions of bodies you name). The engine that simulates it is picked per machine::

    from mbd.sim.engines import make_mujoco_problem

    def reward(before, u, after):           # View, (nu,), View -> scalar
        return jnp.cos(after.qpos[1]) - 0.01 * jnp.sum(u**2)

    problem = make_mujoco_problem("cartpole.xml", reward, horizon=50, n_frames=2)
    result = mbd.make_solver(problem, mbd.MBDConfig(num_samples=256)).solve(key)

Engines (``engine=``):

- ``"mujoco"``: native MuJoCo. Each control step of a batch of samples is one call of
  MuJoCo's multi-threaded C rollout (``mujoco.rollout``) from the jitted solve, through a
  host callback: XLA compiles none of the physics. The default on a CPU.
- ``"mjx"``: MuJoCo MJX, physics compiled by XLA (``mjx.step``).
- ``"warp"``: MuJoCo Warp (``mujoco-warp``), all samples as Warp worlds; the default when
  JAX sees a CUDA device and ``mujoco_warp`` is installed. It is called through a host
  callback too, so on a GPU its states cross the host once per control step.

A control step holds ``ctrl = u`` for ``n_frames`` physics steps of the model's own
integrator and time step. The host engines carry the full physics state
(``mjSTATE_FULLPHYSICS``) as two float32 arrays whose sum is the float64 state, so a
rollout replayed from the returned plan is bitwise the one the solver scored.

``qpos``, ``qvel``, ``act`` and ``body_pos`` (forward kinematics run after the step) are
the state after the control step in every engine. ``sensordata`` is what the engine
reports after its last ``mj_step``, which evaluates sensors *before* it integrates: they
describe the state one physics step earlier (and, for RK4, engines differ in which stage
they keep), so rewards that must agree across engines read the other fields.

Options an engine does not support are switched off with a one-line warning (MJX's
``energy`` flag, which dm_control's models set) or refused with a one-line error.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbd.problem import Array, Demo, Problem, PyTree
from mbd.sim import require

ENGINES: tuple[str, ...] = ("mujoco", "mjx", "warp")
"""The engines of :func:`make_mujoco_problem`."""

RewardFn = Callable[..., Array]
"""``reward(before: View, u: (nu,), after: View[, params]) -> scalar``."""


class View(NamedTuple):
    """The engine-neutral simulation state a reward reads (any leading axes allowed).

    Attributes:
        time: simulation time, shape ().
        qpos: joint positions (nq,).
        qvel: joint velocities (nv,).
        act: actuator activations (na,).
        sensordata: the model's sensors (nsensordata,), as the engine reports them.
        body_pos: world positions (``xpos``) of the bodies named in ``bodies=``, (K, 3).
    """

    time: Array
    qpos: Array
    qvel: Array
    act: Array
    sensordata: Array
    body_pos: Array


class HostState(NamedTuple):
    """Physics state of the host engines: float64 ``mjSTATE_FULLPHYSICS`` as hi + lo.

    Attributes:
        hi: float32 (nstate,), the state rounded to float32.
        lo: float32 (nstate,), the rest (state - hi), so hi + lo restores the float64.
        sensordata: float32 (nsensordata,), the sensors after the step.
        body_pos: float32 (K, 3), world positions of the tracked bodies.
    """

    hi: Array
    lo: Array
    sensordata: Array
    body_pos: Array


def split64(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Splits float64 values into float32 (hi, lo) with hi + lo == x to ~48 bits."""
    hi = x.astype(np.float32)
    return hi, (x - hi.astype(np.float64)).astype(np.float32)


def join64(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split64`: float64 hi + lo."""
    return np.asarray(hi, np.float64) + np.asarray(lo, np.float64)


def cuda_present() -> bool:
    """Whether JAX sees a CUDA device."""
    try:
        return any(d.platform == "gpu" for d in jax.devices())
    except RuntimeError:
        return False


def default_engine() -> str:
    """``warp`` where JAX sees a CUDA device and ``mujoco_warp`` imports, else ``mujoco``."""
    if cuda_present():
        try:
            require("mujoco_warp")
            return "warp"
        except ImportError:
            return "mujoco"
    return "mujoco"


def check_engine(engine: str | None) -> str:
    """Resolves ``None`` / ``"auto"`` to :func:`default_engine` and checks the name.

    Raises:
        ValueError: naming the engines.
    """
    if engine in (None, "auto"):
        return default_engine()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of auto, {', '.join(ENGINES)}")
    return engine


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


def compile_model(model: Any, timestep: float | None = None):
    """Loads and compiles an MJCF model.

    Args:
        model: MJCF file path, MJCF text (starting with ``<``), or a ``mujoco.MjModel``.
        timestep: optional physics time step replacing ``opt.timestep``.

    Returns:
        The ``mujoco.MjModel`` (a copy of one given, so the caller's is never changed).

    Raises:
        ValueError: a missing file, an MJCF MuJoCo rejects (its reason in one line), a bad
            timestep.
    """
    import copy

    mujoco = require("mujoco")
    if isinstance(model, mujoco.MjModel):
        m = copy.copy(model)
    else:
        text = str(model)
        try:
            if isinstance(model, Path) or not text.lstrip().startswith("<"):
                path = Path(model)
                if not path.is_file():
                    raise ValueError(f"MJCF model file {str(path)!r} does not exist")
                m = mujoco.MjModel.from_xml_path(str(path))
            else:
                m = mujoco.MjModel.from_xml_string(text)
        except ValueError as e:
            msg = " ".join(str(e).split())
            if msg.startswith("MJCF model file"):
                raise
            raise ValueError(f"cannot load the MJCF model: {msg}") from None
    if timestep is not None:
        if not (np.isfinite(timestep) and timestep > 0):
            raise ValueError(f"timestep must be finite and > 0 (got {timestep})")
        m.opt.timestep = float(timestep)
    return m


def body_ids(m, bodies: Sequence[str]) -> np.ndarray:
    """MuJoCo body ids of named bodies.

    Args:
        m: ``mujoco.MjModel``.
        bodies: body names.

    Returns:
        int32 (K,).

    Raises:
        ValueError: naming the unknown bodies and the known ones.
    """
    known = [m.body(i).name for i in range(m.nbody)]
    missing = [b for b in bodies if b not in known]
    if missing:
        raise ValueError(f"unknown bodies {missing}; the model has {known[1:]}")
    return np.array([known.index(b) for b in bodies], dtype=np.int32)


def action_box(m) -> tuple[np.ndarray, np.ndarray]:
    """The actuators' ``ctrlrange`` (nu,) each; [-1, 1] for an actuator without one."""
    limited = np.asarray(m.actuator_ctrllimited, dtype=bool)
    rng = np.asarray(m.actuator_ctrlrange, dtype=np.float32).reshape(-1, 2)
    lo = np.where(limited, rng[:, 0], -1.0).astype(np.float32)
    hi = np.where(limited, rng[:, 1], 1.0).astype(np.float32)
    return lo, hi


def model_name(m, default: str = "mujoco_model") -> str:
    """The model's own name (``<mujoco model=...>``, which opens MuJoCo's name buffer),
    or ``default``."""
    return bytes(m.names).split(b"\0", 1)[0].decode() or default


REPORTING_FLAGS: tuple[str, ...] = ("mjENBL_ENERGY", "mjENBL_FWDINV")
"""Enable flags that change only what MuJoCo reports, not the motion: an engine that lacks
them may switch them off."""


def _enable_flag_names() -> dict[str, int]:
    mujoco = require("mujoco")
    members = mujoco.mjtEnableBit.__members__
    return {n: int(members[n]) for n in REPORTING_FLAGS if n in members}


def adapt_model(m, engine: str, put: Callable[[Any], Any]) -> tuple[Any, Any]:
    """Converts an ``MjModel`` for an engine, switching off what the engine lacks.

    ``put`` (``mjx.put_model``, ``mujoco_warp.put_model``) raises NotImplementedError
    naming what it does not support. A :data:`REPORTING_FLAGS` flag (``mjENBL_ENERGY``,
    set by dm_control's models, changes only what MuJoCo reports, not the motion) is
    switched off with a one-line warning and the conversion retried; anything else is
    refused.

    Args:
        m: the ``mujoco.MjModel`` (not modified; a copy is).
        engine: the engine's name, for the messages.
        put: the engine's model conversion.

    Returns:
        (the possibly modified ``MjModel``, the engine's model).

    Raises:
        ValueError: one line naming the option the engine cannot simulate.
    """
    import copy

    m = copy.copy(m)
    flags = _enable_flag_names()
    for _ in range(len(flags) + 1):
        try:
            return m, put(m)
        except NotImplementedError as e:
            what = " ".join(str(e).split()) or type(e).__name__
            name = what.rsplit(".", 1)[-1]
            if name in flags and m.opt.enableflags & flags[name]:
                m.opt.enableflags &= ~flags[name]
                warnings.warn(
                    f"{engine} does not support the model option {name}; switched off",
                    stacklevel=3,
                )
                continue
            raise ValueError(f"the {engine} engine cannot simulate this model: {what}") from None
    raise ValueError(f"the {engine} engine cannot simulate this model")  # pragma: no cover


# --------------------------------------------------------------------------------------
# The problem
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class MuJoCoStep:
    """``step(state, u[, params]) -> (next_state, reward)`` on one engine.

    Attributes:
        physics: the engine (``NativePhysics``, ``MJXPhysics`` or ``WarpPhysics``): its
            ``step(state, u)``, ``view(state)``, ``model`` and ``n_frames``.
        reward: ``reward(before, u, after[, params]) -> scalar`` on :class:`View` values.
    """

    physics: Any
    reward: RewardFn

    def __call__(self, state: PyTree, u: Array, *params: PyTree) -> tuple[PyTree, Array]:
        nxt = self.physics.step(state, u)  # Eq. 1c: n_frames physics steps holding u
        return nxt, self._reward(state, u, nxt, *params)

    def _reward(self, state: PyTree, u: Array, nxt: PyTree, *params: PyTree) -> Array:
        r = jnp.asarray(
            self.reward(self.physics.view(state), u, self.physics.view(nxt), *params),
            jnp.float32,
        )
        if r.size != 1:
            raise ValueError(
                f"reward(before, u, after) must return a scalar, got shape {tuple(r.shape)}"
            )
        return r.reshape(())

    @property
    def rollout(self) -> Callable[..., tuple[PyTree, Array]] | None:
        """``rollout(x0, controls[, params]) -> (states x_1..x_T, rewards (T,))``: the
        whole horizon in one engine call, where the engine has one (native MuJoCo), else
        None. :func:`mbd.problem.rollout` uses it; it equals T calls of the step bitwise.
        """
        if not hasattr(self.physics, "rollout"):
            return None
        return self._whole_horizon

    def _whole_horizon(self, x0: PyTree, controls: Array, *params: PyTree):
        states = self.physics.rollout(x0, controls)
        before = jax.tree_util.tree_map(lambda a, s: jnp.concatenate([a[None], s[:-1]]), x0, states)

        # A scan (not a vmap) over time: the reward compiles as in the per-step path, so
        # it rounds the same, batched or not.
        def reward(_, bua):
            return None, self._reward(*bua, *params)

        _, rewards = jax.lax.scan(reward, None, (before, controls, states))
        return states, rewards

    @property
    def engine(self) -> str:
        """The engine's name."""
        return self.physics.engine

    @property
    def mj_model(self):
        """The ``mujoco.MjModel`` being simulated (renders read its geometry)."""
        return self.physics.model

    @property
    def dt(self) -> float:
        """Seconds per control step."""
        return float(self.physics.model.opt.timestep) * self.physics.n_frames


def make_physics(m, bodies: np.ndarray, engine: str, n_frames: int, threads: int | None = None):
    """The engine object of :class:`MuJoCoStep` for a compiled model.

    Args:
        m: ``mujoco.MjModel`` (from :func:`compile_model`).
        bodies: ids (K,) of the bodies whose positions the views carry.
        engine: ``mujoco``, ``mjx`` or ``warp``.
        n_frames: physics steps per control step.
        threads: native engine threads (default: the CPU count).
    """
    engine = check_engine(engine)
    if engine == "mujoco":
        from mbd.sim.native import NativePhysics

        return NativePhysics(m, bodies, n_frames, threads)
    if engine == "mjx":
        from mbd.sim.mjx_adapter import MJXPhysics

        return MJXPhysics(m, bodies, n_frames)
    from mbd.sim.warp_engine import WarpPhysics

    return WarpPhysics(m, bodies, n_frames)


def make_mujoco_problem(
    model: Any,
    reward: RewardFn,
    horizon: int,
    engine: str | None = None,
    n_frames: int = 1,
    init_qpos: Array | None = None,
    init_qvel: Array | None = None,
    timestep: float | None = None,
    bodies: Sequence[str] = (),
    demo: Demo | None = None,
    params: PyTree = None,
    name: str | None = None,
    threads: int | None = None,
) -> Problem:
    """Builds a :class:`~mbd.problem.Problem` from a MuJoCo model, on any engine.

    Args:
        model: MJCF file path, MJCF text, or ``mujoco.MjModel`` (dm_control suite and
            gymnasium files load as they are).
        reward: ``reward(before, u, after) -> scalar`` on :class:`View` values of the
            states before and after the control step, u (nu,) in real units;
            ``reward(before, u, after, params)`` with ``params``. Rewards are maximized.
        horizon: number of control steps T.
        engine: ``mujoco``, ``mjx``, ``warp``, or None / ``auto`` for
            :func:`default_engine`.
        n_frames: physics steps per control step (>= 1).
        init_qpos: x_0's joint positions (nq,); the model's ``qpos0`` if None.
        init_qvel: x_0's joint velocities (nv,); zeros if None.
        timestep: optional physics time step replacing ``opt.timestep``.
        bodies: body names whose world positions the views carry (``View.body_pos``).
        demo: optional :class:`~mbd.problem.Demo` whose ``observe(views, controls)`` reads
            the stacked :class:`View` of x_1 .. x_T (leading axis T), engine-neutral like
            the reward (the problem's ``demo.observe`` takes the engine's states).
        params: optional per-episode values, the reward's fourth argument.
        name: label; the model's name if None.
        threads: threads of the native engine (default: the CPU count).

    Returns:
        The problem; ``problem.step`` is a :class:`MuJoCoStep`.
    """
    if not isinstance(n_frames, int | np.integer) or isinstance(n_frames, bool) or n_frames < 1:
        raise ValueError(f"n_frames must be an integer >= 1 (got {n_frames!r})")
    if not callable(reward):
        raise TypeError("reward must be a function (before, u, after) -> scalar")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an integer >= 1 (got {threads!r})")
    m = compile_model(model, timestep)
    if m.nu < 1:
        raise ValueError("the model has no actuator: nothing to plan")
    ids = body_ids(m, tuple(bodies))
    physics = make_physics(m, ids, engine, int(n_frames), threads)
    qpos = np.asarray(m.qpos0 if init_qpos is None else init_qpos, np.float64)
    qvel = np.zeros(m.nv) if init_qvel is None else np.asarray(init_qvel, np.float64)
    if qpos.shape != (m.nq,) or qvel.shape != (m.nv,):
        raise ValueError(
            f"init_qpos must have shape ({m.nq},) and init_qvel ({m.nv},) "
            f"(got {qpos.shape} and {qvel.shape})"
        )
    if not (np.all(np.isfinite(qpos)) and np.all(np.isfinite(qvel))):
        raise ValueError("init_qpos and init_qvel must be finite")
    if demo is not None and demo.observe is not None:
        observe = demo.observe
        demo = dataclasses.replace(
            demo, observe=lambda states, controls: observe(physics.view(states), controls)
        )
    lo, hi = action_box(m)
    return Problem(
        init_state=physics.init(qpos, qvel),
        step=MuJoCoStep(physics=physics, reward=reward),
        horizon=int(horizon),
        action_dim=int(m.nu),
        action_low=lo,
        action_high=hi,
        demo=demo,
        name=name or model_name(m),
        params=params,
    )


def frames(problem: Problem, states: PyTree) -> tuple[np.ndarray, np.ndarray]:
    """Body poses for a render: x_0 then the rollout states, bodies 1.. (world dropped).

    Args:
        problem: a problem made by :func:`make_mujoco_problem`.
        states: stacked engine states x_1 .. x_T.

    Returns:
        (pos (T+1, nbody-1, 3), quat (T+1, nbody-1, 4)).
    """
    physics = problem.step.physics
    x0 = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], problem.init_state)
    both = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, np.asarray(b)]), x0, states)
    return physics.poses(both)


def cpu_threads() -> int:
    """Threads the native engine uses by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


__all__ = [
    "ENGINES",
    "HostState",
    "MuJoCoStep",
    "View",
    "action_box",
    "adapt_model",
    "body_ids",
    "check_engine",
    "compile_model",
    "cpu_threads",
    "default_engine",
    "frames",
    "join64",
    "make_mujoco_problem",
    "make_physics",
    "split64",
]
