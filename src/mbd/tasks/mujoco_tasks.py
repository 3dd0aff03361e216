"""The paper's robot tasks defined once on MuJoCo models, for every MuJoCo engine.

Each task is an MJCF model, a control period (``n_frames`` physics steps of the model's
own time step) and a reward on :class:`~mbd.sim.engines.View` values, run by the native
engine, MJX or MuJoCo Warp (:mod:`mbd.sim.engines`). The rewards are those of
``../shared/reference/NOTES.md`` as :mod:`mbd.tasks.robots` writes them for Brax, read
from the torso's world position (``View.body_pos``, the body frame Brax calls ``x.pos``):

=================  ==========================  ========  ==========  ===================
task               model                       timestep  n_frames    x_0 noise (uniform)
=================  ==========================  ========  ==========  ===================
hopper             Brax hopper.xml             0.002     20 (0.04 s)  +-0.005 qpos, qvel
walker2d           Brax walker2d.xml           0.002     20 (0.04 s)  +-0.005
halfcheetah        Brax half_cheetah.xml       0.01      5 (0.05 s)   +-0.1
ant                Brax ant.xml                0.01      5 (0.05 s)   +-0.1
humanoidrun        :func:`humanoid_xml`        0.006     7            none
humanoidstandup    ``humanoid_xml(True)``      0.006     7            none
humanoidjog        :func:`humanoid_xml`        0.006     5 (0.03 s)   none
pusht              ``PUSHT_XML``               0.01      5            none
=================  ==========================  ========  ==========  ===================

The models are the MJCF files as MuJoCo reads them, which is what Brax's ``generalized``
and ``mjx`` pipelines simulate; Brax's ``positional`` pipeline (the paper's) changes
some of them (ant: timestep 0.005, gear 200; halfcheetah: timestep 0.003125) and
simulates different contact physics, so rewards differ between Brax positional and these
engines (``docs/results.md`` compares them). The control period matches the paper's in
every task. halfcheetah and ant keep Brax's stock rewards: forward velocity of the torso
minus 0.1 |u|^2 (halfcheetah), plus 1 minus 0.5 |u|^2 (ant).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import jax.numpy as jnp
import numpy as np

from mbd.problem import Demo, Problem
from mbd.tasks import robots

FALL_HEIGHT: dict[str, float] = {
    "hopper": 0.7,
    "hopper-hop": 0.7,
    "walker2d": 0.8,
    "humanoidrun": 1.0,
    "humanoidjog": 1.0,
}
"""Torso heights (m) below which a closed loop counts the robot as fallen (gymnasium's
healthy-height bounds for the hopper, walker and humanoid)."""

HUMANOID_STAND_HEIGHT = 1.1
"""Torso height (m) at which a humanoid getting up counts as standing: 85 % of the 1.3 m
its standing reward aims at."""
STAND_TASKS = ("humanoidstandup", "humanoidstand")
"""Tasks whose closed loop reports ``time_to_stand`` (s) and ``standing_at_end``."""


def _hopper_like(target_z: float) -> Callable:
    def reward(before, u, after):
        p = after.body_pos[0]
        return p[0] - 0.5 * jnp.clip(jnp.abs(p[2] - target_z), -1.0, 1.0)

    return reward


HOP_SPEED = 0.5
"""hopper-hop: the forward speed (m/s) its reward asks for."""
HOP_HEIGHT = 1.25
"""hopper-hop: the torso height (m) its reward pulls towards (the model's initial pose,
its foot 4 cm above the floor; standing, the torso settles near 1.20 m)."""
HOP_WEIGHTS = types.MappingProxyType(
    {"alive": 2.0, "speed": 1.0, "pitch": 1.0, "pitch_rate": 0.05, "height": 10.0, "control": 1e-3}
)
"""hopper-hop's reward terms (see :func:`_hop_reward`)."""


def _hop_reward(dt: float) -> Callable:
    # Closed-loop locomotion: every step alive and upright pays, so that no forward speed
    # pays for a fall (the paper's hopper reward, made for open-loop plans, does). The
    # dense terms (pitch, pitch rate, height) say how close to a fall a plan goes; with
    # the alive term alone a short horizon sees a fall only once it is under way, and
    # sampling MPC fell within 10 s however it was tuned (docs/results.md).
    w = HOP_WEIGHTS

    def reward(before, u, after):
        p = after.body_pos[0]
        vx = (p[0] - before.body_pos[0, 0]) / dt
        pitch, pitch_rate = after.qpos[2], after.qvel[2]  # hopper.xml's rooty joint
        healthy = (p[2] > FALL_HEIGHT["hopper"] + 0.1) & (jnp.abs(pitch) < 0.2)
        return (
            jnp.where(healthy, w["alive"] - w["speed"] * jnp.abs(vx - HOP_SPEED), 0.0)
            - w["pitch"] * pitch**2
            - w["pitch_rate"] * pitch_rate**2
            - w["height"] * (p[2] - HOP_HEIGHT) ** 2
            - w["control"] * jnp.sum(u**2)
        )

    return reward


def _halfcheetah_reward(dt: float) -> Callable:
    def reward(before, u, after):
        vx = (after.body_pos[0, 0] - before.body_pos[0, 0]) / dt
        return vx - 0.1 * jnp.sum(u**2)

    return reward


def _ant_reward(dt: float) -> Callable:
    def reward(before, u, after):
        vx = (after.body_pos[0, 0] - before.body_pos[0, 0]) / dt
        return vx + 1.0 - 0.5 * jnp.sum(u**2)

    return reward


def _run_reward(before, u, after):
    p = after.body_pos[0]
    return p[0] - jnp.clip(jnp.abs(p[2] - 1.3), -1.0, 1.0) - 0.1 * jnp.abs(p[1])


def _standup_reward(before, u, after):
    p = after.body_pos[0]
    return (
        1.5 - jnp.clip(jnp.abs(p[2] - 1.3), -2.0, 1.0) - 0.1 * jnp.abs(p[0]) - 0.1 * jnp.abs(p[1])
    )


def _jog_reward(before, u, after):
    p = after.body_pos[0]
    vx = after.qvel[0]  # the free joint's linear velocity, world frame
    return 1.0 - jnp.abs(vx - robots.JOG_SPEED) - jnp.abs(p[2] - 1.3) - 0.1 * jnp.abs(p[1])


def _pusht_reward(before, u, after, goal):
    q = after.qpos  # pusher x, y; T x, y, theta
    tee = q[2:4]
    d_goal = jnp.linalg.norm(goal[:2] - tee)
    d_rot = jnp.abs(goal[2] - q[4]) / jnp.pi
    d_push = jnp.maximum(jnp.linalg.norm(q[:2] - tee) - 0.2, 0.0)
    return 1.0 - (d_goal + d_rot + d_push)


def _cheetah_xml() -> str:
    # MuJoCo deprecates ``settotalmass`` (and says so on stdout); the total is applied
    # after compiling instead (mj_setTotalmass, then mj_setConst), as MuJoCo advises.
    root = ElementTree.fromstring(robots._brax_asset("half_cheetah.xml"))
    compiler = root.find("compiler")
    if compiler is not None:
        compiler.attrib.pop("settotalmass", None)
    return ElementTree.tostring(root, encoding="unicode")


CHEETAH_TOTAL_MASS = 14.0
"""half_cheetah.xml's ``settotalmass``."""


@dataclasses.dataclass(frozen=True)
class MuJoCoTask:
    """An engine-neutral task definition.

    Attributes:
        name: task name.
        xml: ``xml() -> MJCF text``.
        n_frames: physics steps per control step.
        reward: ``reward(dt) -> reward(before, u, after[, params])``.
        noise: half-width of the uniform noise on x_0's qpos and qvel (seeded).
        total_mass: optional total mass applied after compiling.
    """

    name: str
    xml: Callable[[], str]
    n_frames: int
    reward: Callable[[float], Callable]
    noise: float = 0.0
    total_mass: float | None = None


TASKS: dict[str, MuJoCoTask] = {
    t.name: t
    for t in (
        MuJoCoTask("hopper", lambda: robots._brax_asset("hopper.xml"), 20,
                   lambda dt: _hopper_like(1.0), noise=5e-3),
        MuJoCoTask("hopper-hop", lambda: robots._brax_asset("hopper.xml"), 20, _hop_reward,
                   noise=5e-3),
        MuJoCoTask("walker2d", lambda: robots._brax_asset("walker2d.xml"), 20,
                   lambda dt: _hopper_like(1.1), noise=5e-3),
        MuJoCoTask("halfcheetah", _cheetah_xml, 5, _halfcheetah_reward, noise=0.1,
                   total_mass=CHEETAH_TOTAL_MASS),
        MuJoCoTask("ant", lambda: robots._brax_asset("ant.xml"), 5, _ant_reward, noise=0.1),
        MuJoCoTask("humanoidrun", lambda: robots.humanoid_xml(False), 7,
                   lambda dt: _run_reward),
        MuJoCoTask("humanoidstandup", lambda: robots.humanoid_xml(True), 7,
                   lambda dt: _standup_reward),
        MuJoCoTask("humanoidjog", lambda: robots.humanoid_xml(False), 5,
                   lambda dt: _jog_reward),
        MuJoCoTask("pusht", lambda: robots.PUSHT_XML, 5, lambda dt: _pusht_reward),
    )
}  # fmt: skip


def make(
    name: str,
    horizon: int,
    demo: bool = False,
    seed: int = 0,
    engine: str | None = None,
    threads: int | None = None,
) -> Problem:
    """Builds a paper task on a MuJoCo engine.

    Args:
        name: one of :data:`TASKS`.
        horizon: control steps T.
        demo: humanoidjog's mocap demonstration (Eq. 13: torso, thighs, shins).
        seed: seed of x_0's noise (and of push-T's goal).
        engine: ``mujoco``, ``mjx``, ``warp`` or None for the machine's default.
        threads: threads of the native engine.

    Returns:
        The :class:`~mbd.problem.Problem`; ``problem.step`` is a
        :class:`~mbd.sim.engines.MuJoCoStep`.
    """
    from mbd.sim import engines, require

    task = TASKS[name]
    m = engines.compile_model(task.xml())
    if task.total_mass is not None:
        mujoco = require("mujoco")
        mujoco.mj_setTotalmass(m, task.total_mass)
        mujoco.mj_setConst(m, mujoco.MjData(m))  # what the compiler does after scaling
    dt = float(m.opt.timestep) * task.n_frames
    rng = np.random.default_rng(seed)
    qpos = np.array(m.qpos0)
    qvel = np.zeros(m.nv)
    if task.noise:
        qpos = qpos + rng.uniform(-task.noise, task.noise, m.nq)
        qvel = qvel + rng.uniform(-task.noise, task.noise, m.nv)
    bodies: tuple[str, ...] = ("torso",)
    params: Any = None
    if name == "pusht":
        bodies = ("pusher",)
        qpos[:2] = robots.PUSHT_PUSHER_START
        params = jnp.asarray(robots.pusht_goal(seed))
    d = None
    if name == "humanoidjog":
        bodies = robots.JOG_BODIES  # torso first
        if demo:
            ref = robots.mocap_reference(horizon)
            d = Demo(
                reference=ref,
                scale=robots.DEMO_SCALE,
                reward=float(np.mean(robots.jog_reward_of_positions(ref[:, 0]))),
                observe=lambda views, controls: views.body_pos,
            )
    return engines.make_mujoco_problem(
        m,
        task.reward(dt),
        horizon,
        engine=engine,
        n_frames=task.n_frames,
        init_qpos=qpos,
        init_qvel=qvel,
        bodies=bodies,
        demo=d,
        params=params,
        name=name,
        threads=threads,
    )


HOP_CLEARANCE = 0.02
"""hopper-hop: height (m) of the foot's lowest point above the floor from which a control
step counts as in flight (resting contact sinks the foot a few mm into the floor)."""


def foot_clearance(model, qpos: np.ndarray) -> np.ndarray:
    """The height above z = 0 of the lowest point of the geoms with a nonzero ``contype``
    outside the world body (for Brax's ``hopper.xml``, its one foot), per state.

    Args:
        model: the ``mujoco.MjModel``; its colliding non-world geoms are capsules or
            spheres.
        qpos: (T, nq) joint positions.

    Returns:
        (T,) metres (negative: sunk into the floor).
    """
    import mujoco

    geoms = np.flatnonzero((model.geom_contype != 0) & (model.geom_bodyid != 0))
    kinds = {int(mujoco.mjtGeom.mjGEOM_CAPSULE), int(mujoco.mjtGeom.mjGEOM_SPHERE)}
    if not len(geoms) or any(int(model.geom_type[g]) not in kinds for g in geoms):
        raise ValueError("foot_clearance needs colliding geoms that are capsules or spheres")
    d = mujoco.MjData(model)
    out = np.empty(len(qpos))
    for t, q in enumerate(np.asarray(qpos, np.float64)):
        d.qpos[:] = q
        mujoco.mj_kinematics(model, d)
        low = np.inf
        for g in geoms:
            radius, half = model.geom_size[g, 0], model.geom_size[g, 1]
            if int(model.geom_type[g]) == int(mujoco.mjtGeom.mjGEOM_SPHERE):
                half = 0.0
            axis_z = d.geom_xmat[g].reshape(3, 3)[2, 2]  # the capsule's axis, z part
            low = min(low, d.geom_xpos[g, 2] - abs(axis_z) * half - radius)
        out[t] = low
    return out


def hop_gait(model, qpos: np.ndarray) -> dict:
    """Whether a hopper hopped: the fraction of control steps with its foot off the floor
    (above :data:`HOP_CLEARANCE`), the take-offs (floor to flight) and the foot's highest
    lowest point. Read once per control step (0.04 s): a flight shorter than that can be
    missed, and the first steps, before the foot (4 cm up at the start) lands, count as
    flight.

    Args:
        model: the ``mujoco.MjModel``.
        qpos: (T, nq) joint positions, one per control step.

    Returns:
        ``{"airborne_fraction", "takeoffs", "foot_clearance_max"}``.
    """
    h = foot_clearance(model, qpos)
    air = h > HOP_CLEARANCE
    return {
        "airborne_fraction": float(air.mean()),
        "takeoffs": int(np.sum(air[1:] & ~air[:-1])),
        "foot_clearance_max": float(h.max()),
    }


def loop_metrics(name: str, problem: Problem, states) -> dict:
    """What a closed loop of a robot task did, from its states (a MuJoCo engine's or
    Brax's, one per control step): the torso's height (min, end), whether it fell
    (below :data:`FALL_HEIGHT`), its forward progress and mean forward velocity; for a
    humanoid getting up (:data:`STAND_TASKS`), the time its torso first reached
    :data:`HUMANOID_STAND_HEIGHT` (None: never) and whether it is there at the end; for
    hopper-hop on a MuJoCo engine, whether it hopped (:func:`hop_gait`).

    Args:
        name: the task's name (its fall height).
        problem: the plant's problem (its initial state gives the start).
        states: the plant's states, leading axis T.

    Returns:
        A JSON-ready dict; empty for states of neither kind.
    """
    physics = getattr(problem.step, "physics", None)
    if physics is not None and hasattr(physics, "view"):
        torso = np.asarray(physics.view(states).body_pos)[:, 0]
        x0 = float(np.asarray(physics.view(problem.init_state).body_pos)[0, 0])
    elif hasattr(states, "pipeline_state"):  # Brax: the torso is the first link
        torso = np.asarray(states.pipeline_state.x.pos)[:, 0]
        x0 = float(np.asarray(problem.init_state.pipeline_state.x.pos)[0, 0])
    else:
        return {}
    z = torso[:, 2]
    out = {
        "torso_height_min": float(z.min()),
        "torso_height_end": float(z[-1]),
        "forward_progress": float(torso[-1, 0] - x0),
        "mean_forward_velocity": float((torso[-1, 0] - x0) / (len(z) * problem.dt)),
    }
    if name in FALL_HEIGHT:
        out["fell"] = bool(z.min() < FALL_HEIGHT[name])
    model = getattr(physics, "model", None)
    if name == "hopper-hop" and model is not None:
        out.update(hop_gait(model, np.asarray(physics.view(states).qpos)))
    if name in STAND_TASKS:
        up = np.flatnonzero(z >= HUMANOID_STAND_HEIGHT)
        out["time_to_stand"] = float((up[0] + 1) * problem.dt) if len(up) else None
        out["standing_at_end"] = bool(z[-1] >= HUMANOID_STAND_HEIGHT)
    return out


__all__ = [
    "FALL_HEIGHT",
    "TASKS",
    "MuJoCoTask",
    "foot_clearance",
    "hop_gait",
    "loop_metrics",
    "make",
]
