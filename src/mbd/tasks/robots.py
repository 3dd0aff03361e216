"""The paper's robot tasks (Sec. 5.1-5.3, Tables 2-4, A.4.1), defined as the authors did.

Every task is a :class:`~mbd.problem.Problem` over a Brax environment (state = the Brax
``envs.State``), built by :mod:`mbd.sim.brax_adapter`. Brax is imported only when a task
is made; ``pip install 'mbd[brax]'`` provides it. Rewards are per step; a trajectory's
score is the mean per-step reward.

=================  ==========================================================  ===========
task               model, reward r_t (of the state after the step)             backends
=================  ==========================================================  ===========
hopper             Brax hopper.xml, n_frames 20 (dt 0.04);                     positional*
                   x_torso - 0.5 clip(|z_torso - 1.0|, -1, 1)                   generalized, mjx
walker2d           Brax walker2d.xml, n_frames 20; same with z target 1.1       positional*, ...
halfcheetah        Brax's stock env and reward                                  positional*, ...
ant                Brax's stock env and reward                                  positional*, ...
humanoidrun        humanoid, timestep 0.006, gears 350 (hips, knees) / 100,     positional*, ...
                   ctrlrange +-0.4, n_frames 7;
                   x_torso - clip(|z - 1.3|, -1, 1) - 0.1 |y|
humanoidstandup    the same model lying on its back (torso z 0.15);             positional*, ...
                   1.5 - clip(|z - 1.3|, -2, 1) - 0.1 |x| - 0.1 |y|
humanoidjog        the same model, n_frames 5 (dt 0.03);                        positional*, ...
                   1 - |vx_torso - 1.6| - |z - 1.3| - 0.1 |y|; ``demo``: mocap
pusht              planar push-T scene written here (zero gravity, Euler,        generalized*, mjx
                   dt 0.01, n_frames 5); random goal per seed;
                   1 - (|g_xy - T_xy| + |g_th - T_th| / pi + max(|p - T_xy| - 0.2, 0))
=================  ==========================================================  ===========

(* the paper's backend, the default.) Controls are the actuators' ``ctrlrange`` box
(+-1 for the stock models, +-0.4 for the humanoid), mapped from the solver's [-1, 1].

Recommended hyper-parameters. Two sources, both kept here:

- ``TABLE4``: the paper's Table 4 (N = 100 diffusion steps, horizon 50, lambda 0.1;
  Nsample 100, halfcheetah lambda 0.4, humanoidrun Nsample 300, pushT H 40, Nsample 200,
  lambda 0.2);
- ``AUTHORS``: what the authors' public code runs, which produced Tables 2 and 3:
  Nsample 2048 everywhere, halfcheetah lambda 0.4, pushT lambda 0.2, N 200, H 40,
  humanoidrun N 300, Nsample 8192.

The registered task configuration is ``AUTHORS`` (the setting that the paper's numbers
were measured with); ``mbd plan TASK --num-samples 100`` gives Table 4's sample count.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from importlib import resources
from typing import Any
from xml.etree import ElementTree

import jax
import jax.numpy as jnp
import numpy as np

from mbd.problem import Demo, Problem
from mbd.sim import engines
from mbd.solver import MBDConfig

# --------------------------------------------------------------------------------------
# Hyper-parameters (paper Table 4 and the authors' per-task overrides)
# --------------------------------------------------------------------------------------

HORIZONS: dict[str, int] = {
    "hopper": 50,
    "walker2d": 50,
    "halfcheetah": 50,
    "ant": 50,
    "humanoidrun": 50,
    "humanoidstandup": 50,
    "humanoidjog": 50,
    "pusht": 40,
}

TABLE4: dict[str, MBDConfig] = {
    "hopper": MBDConfig(num_samples=100, num_steps=100, temperature=0.1),
    "walker2d": MBDConfig(num_samples=100, num_steps=100, temperature=0.1),
    "halfcheetah": MBDConfig(num_samples=100, num_steps=100, temperature=0.4),
    "ant": MBDConfig(num_samples=100, num_steps=100, temperature=0.1),
    "humanoidrun": MBDConfig(num_samples=300, num_steps=100, temperature=0.1),
    "humanoidstandup": MBDConfig(num_samples=100, num_steps=100, temperature=0.1),
    "humanoidjog": MBDConfig(num_samples=100, num_steps=100, temperature=0.1),
    "pusht": MBDConfig(num_samples=200, num_steps=100, temperature=0.2),
}
"""Paper Table 4 (humanoidjog is not in the table; the common setting is used)."""

AUTHORS: dict[str, MBDConfig] = {
    "hopper": MBDConfig(num_samples=2048, num_steps=100, temperature=0.1),
    "walker2d": MBDConfig(num_samples=2048, num_steps=100, temperature=0.1),
    "halfcheetah": MBDConfig(num_samples=2048, num_steps=100, temperature=0.4),
    "ant": MBDConfig(num_samples=2048, num_steps=100, temperature=0.1),
    "humanoidrun": MBDConfig(num_samples=8192, num_steps=300, temperature=0.1),
    "humanoidstandup": MBDConfig(num_samples=2048, num_steps=100, temperature=0.1),
    "humanoidjog": MBDConfig(num_samples=2048, num_steps=100, temperature=0.1),
    "pusht": MBDConfig(num_samples=2048, num_steps=200, temperature=0.2),
}
"""The authors' code defaults and per-task overrides (what produced Tables 2-3)."""

PAPER_RESULTS: dict[str, dict[str, float]] = {
    "hopper": {"cmaes": 1.12, "cem": 0.65, "mppi": 0.91, "rl": 1.40, "mbd": 1.53},
    "halfcheetah": {"cmaes": 0.44, "cem": 0.22, "mppi": 0.20, "rl": 1.59, "mbd": 2.31},
    "ant": {"cmaes": 1.18, "cem": 0.85, "mppi": 0.33, "rl": 3.26, "mbd": 3.80},
    "walker2d": {"cmaes": 0.83, "cem": 1.06, "mppi": 0.90, "rl": 1.09, "mbd": 2.63},
    "humanoidstandup": {"cmaes": 0.58, "cem": 0.47, "mppi": 0.53, "rl": 0.83, "mbd": 0.99},
    "humanoidrun": {"cmaes": 0.60, "cem": 0.41, "mppi": 0.59, "rl": 1.80, "mbd": 2.92},
    "pusht": {"cmaes": 0.39, "cem": 0.25, "mppi": -0.13, "rl": -0.63, "mbd": 0.67},
}
"""The paper's Table 2: mean per-step reward per task and method (RTX 4070 Ti, the
authors' budget, 8 seeds, open-loop replay; RL after 6.5M-100M training steps)."""

PAPER_MBD_SECONDS: dict[str, float] = {
    "hopper": 26.5,
    "halfcheetah": 26.8,
    "ant": 16.2,
    "walker2d": 34.6,
    "humanoidstandup": 17.7,
    "humanoidrun": 30.0,
    "pusht": 632.8,
}
"""The paper's Table 3: MBD's time per run on the GPU, seconds."""

PAPER_TABLE2: dict[str, float] = {t: r["mbd"] for t, r in PAPER_RESULTS.items()}
"""MBD's mean per-step reward in the paper's Table 2 (8 seeds, open-loop replay)."""

LOCOMOTION_BACKENDS = ("positional", "generalized", "mjx")
PUSHT_BACKENDS = ("generalized", "mjx")

# --------------------------------------------------------------------------------------
# Models written by this project: the modified humanoid and the push-T scene
# --------------------------------------------------------------------------------------

HUMANOID_TIMESTEP = 0.006
HUMANOID_STRONG_GEAR = 350.0  # hips and knees
HUMANOID_GEAR = 100.0  # abdomen, shoulders, elbows
HUMANOID_CTRL = 0.4
STANDUP_TORSO_Z = 0.15
# lying on the back: rotate -90 degrees about y, so the legs point along +x, face up
STANDUP_QUAT = (math.sqrt(0.5), 0.0, -math.sqrt(0.5), 0.0)
STANDUP_CONTACT_GEOMS = (
    "torso1", "head", "uwaist", "butt", "right_thigh1", "left_thigh1", "right_larm", "left_larm",
)  # fmt: skip


def _brax_asset(name: str) -> str:
    """An MJCF file shipped with Brax, read without importing Brax (2 s here)."""
    import importlib.util
    from pathlib import Path

    from mbd.sim import EXTRA_HINT, MissingExtraError

    spec = importlib.util.find_spec("brax")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            f"this needs the optional dependency 'brax' (its model files); install it with: "
            f"{EXTRA_HINT}"
        )
    return (Path(spec.submodule_search_locations[0]) / "envs" / "assets" / name).read_text()


def humanoid_xml(standup: bool = False) -> str:
    """The humanoid of the paper's humanoid tasks, as MJCF text.

    Starts from Brax's stock ``humanoid.xml`` and changes what the paper changed:
    timestep 0.006, motor gears 350 on hips and knees and 100 elsewhere, ctrlrange
    +-0.4 on every motor. With ``standup``, the torso starts lying on its back at height
    0.15 (rotated -90 degrees about y) and the torso, head, waist, butt, thighs and lower
    arms collide with the floor.

    Args:
        standup: the lying start pose of humanoidstandup.

    Returns:
        MJCF text.
    """
    root = ElementTree.fromstring(_brax_asset("humanoid.xml"))
    root.set("model", "humanoidstandup" if standup else "humanoid")
    root.find("option").set("timestep", str(HUMANOID_TIMESTEP))
    for motor in root.iter("motor"):
        if motor.get("joint") is not None:
            joint = motor.get("joint")
            strong = "hip" in joint or "knee" in joint
            motor.set("gear", str(HUMANOID_STRONG_GEAR if strong else HUMANOID_GEAR))
        motor.set("ctrllimited", "true")
        motor.set("ctrlrange", f"{-HUMANOID_CTRL} {HUMANOID_CTRL}")
    if standup:
        for body in root.iter("body"):
            if body.get("name") == "torso":
                body.set("pos", f"0 0 {STANDUP_TORSO_Z}")
                body.set("quat", " ".join(f"{q:.7f}" for q in STANDUP_QUAT))
        for geom in root.iter("geom"):
            if geom.get("name") in STANDUP_CONTACT_GEOMS:
                geom.set("contype", "1")
    return ElementTree.tostring(root, encoding="unicode")


PUSHT_XML = """
<mujoco model="pusht">
  <compiler angle="radian"/>
  <option timestep="0.01" gravity="0 0 0" integrator="Euler" iterations="20"/>
  <default>
    <geom contype="1" conaffinity="1" condim="3" friction="0.5 0.05 0.05"/>
  </default>
  <worldbody>
    <geom name="table" type="plane" pos="0 0 -0.05" size="2 2 0.1" contype="0"
          conaffinity="0" rgba="0.5 0.5 0.5 1"/>
    <body name="pusher" pos="0 0 0">
      <joint name="pusher_x" type="slide" axis="1 0 0" limited="false"/>
      <joint name="pusher_y" type="slide" axis="0 1 0" limited="false"/>
      <geom name="pusher" type="sphere" size="0.05" mass="1" rgba="0.2 0.5 0.9 1"/>
    </body>
    <body name="tee" pos="0 0 0">
      <joint name="tee_x" type="slide" axis="1 0 0" damping="3" limited="false"/>
      <joint name="tee_y" type="slide" axis="0 1 0" damping="3" limited="false"/>
      <joint name="tee_theta" type="hinge" axis="0 0 1" damping="0.03" limited="false"/>
      <geom name="tee_stem" type="box" size="0.15 0.05 0.05" mass="0.05"
            rgba="0.9 0.4 0.2 1"/>
      <geom name="tee_bar" type="box" size="0.05 0.15 0.05" pos="-0.1 0 0" mass="0.05"
            rgba="0.9 0.4 0.2 1"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="pusher_x" gear="30" ctrllimited="true" ctrlrange="-1 1"/>
    <motor joint="pusher_y" gear="30" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""
"""The push-T scene (A.4.1 item 7): a pusher sphere (r 0.05, mass 1) on x/y slides driven
by motors with gear 30; a T of two boxes (half-sizes 0.15 x 0.05 and 0.05 x 0.15, the
second offset -0.1 in x; mass 0.05 each) on damped x/y slides and a hinge; zero gravity,
Euler, dt 0.01. The table plane is drawn only (no contacts)."""

PUSHT_PUSHER_START = (0.0, -0.3)
"""Where the pusher starts (this project's choice; the notes fix only the T at the origin)."""
PUSHT_GOAL_SPREAD = (0.2, 0.2, math.pi / 4)
PUSHT_GOAL_CENTER = (-0.4, 0.4, math.pi)


def pusht_goal(seed: int) -> np.ndarray:
    """The random goal pose of a seed: U(-1, 1) * (0.2, 0.2, pi/4) + (-0.4, 0.4, pi).

    Args:
        seed: task seed.

    Returns:
        (3,) goal x, y, theta, float32.
    """
    u = np.asarray(jax.random.uniform(jax.random.key(seed), (3,), minval=-1.0, maxval=1.0))
    return (u * np.array(PUSHT_GOAL_SPREAD) + np.array(PUSHT_GOAL_CENTER)).astype(np.float32)


# --------------------------------------------------------------------------------------
# Mocap demonstration (humanoid jogging, Sec. 5.3)
# --------------------------------------------------------------------------------------

JOG_BODIES = ("torso", "left_thigh", "right_thigh", "left_shin", "right_shin")
JOG_DT = 0.03
JOG_SPEED = 1.6
DEMO_SCALE = 0.5


def load_mocap() -> dict[str, np.ndarray]:
    """The packaged jogging mocap clip: body name -> (46, 3) world positions."""
    path = resources.files("mbd.data") / "mocap_jog_positions.npz"
    with resources.as_file(path) as p, np.load(p) as d:
        return {k: np.asarray(d[k], np.float32) for k in d.files}


def mocap_reference(horizon: int, bodies: tuple[str, ...] = JOG_BODIES) -> np.ndarray:
    """The partial-state reference: positions of ``bodies`` per control step.

    The 46 frames are padded with the last frame up to ``horizon`` (or cut to it).

    Args:
        horizon: T >= 1.
        bodies: mocap keys.

    Returns:
        (T, K, 3) float32.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 (got {horizon})")
    mocap = load_mocap()
    ref = np.stack([mocap[b] for b in bodies], axis=1)  # (46, K, 3)
    if horizon > len(ref):
        ref = np.concatenate([ref, np.repeat(ref[-1:], horizon - len(ref), axis=0)])
    return ref[:horizon].astype(np.float32)


def jog_reward_of_positions(torso: np.ndarray, dt: float = JOG_DT) -> np.ndarray:
    """Jogging reward along a torso path, velocity by finite differences.

    Args:
        torso: (T, 3) torso positions at steps 1..T; step 0 is taken equal to step 1.
        dt: seconds per step.

    Returns:
        (T,) rewards 1 - |vx - 1.6| - |z - 1.3| - 0.1 |y|.
    """
    prev = np.concatenate([torso[:1], torso[:-1]])
    vx = (torso[:, 0] - prev[:, 0]) / dt
    return 1.0 - np.abs(vx - JOG_SPEED) - np.abs(torso[:, 2] - 1.3) - 0.1 * np.abs(torso[:, 1])


# --------------------------------------------------------------------------------------
# Task builders
# --------------------------------------------------------------------------------------


ENGINES: tuple[str, ...] = ("auto", *engines.ENGINES, "brax")
"""``engine=`` of the robot tasks: ``auto`` (native MuJoCo on a CPU, MuJoCo Warp with a
CUDA device), the MuJoCo engines of :mod:`mbd.sim.engines` running the definitions of
:mod:`mbd.tasks.mujoco_tasks`, or ``brax``: the Brax definitions below, the paper's."""


def resolve_engine(engine: str | None, backend: str | None) -> str:
    """The engine a robot task runs on.

    Args:
        engine: one of :data:`ENGINES` or None (``auto``).
        backend: a Brax pipeline, or None; giving one with ``auto`` selects ``brax``.

    Returns:
        ``mujoco``, ``mjx``, ``warp`` or ``brax``.

    Raises:
        ValueError: an unknown engine, or a Brax backend with a MuJoCo engine.
    """
    if engine not in (None, *ENGINES):
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine in (None, "auto") and backend is not None:
        return "brax"
    if engine == "brax":
        return engine
    if backend is not None:
        raise ValueError(
            f"backend {backend!r} selects a Brax pipeline: it needs engine 'brax' "
            f"(got engine {engine!r})"
        )
    return engines.check_engine(engine)


def _on_engine(name: str, horizon, demo, seed, engine, backend) -> Problem | None:
    """The task on a MuJoCo engine, or None where it runs on Brax."""
    engine = resolve_engine(engine, backend)
    if engine == "brax":
        return None
    from mbd.tasks import mujoco_tasks

    return mujoco_tasks.make(name, horizon, demo=demo, seed=seed, engine=engine)


def _check_backend(task: str, backend: str | None, allowed: tuple[str, ...]) -> str:
    backend = allowed[0] if backend is None else backend
    if backend not in allowed:
        raise ValueError(f"task {task!r} supports backends {', '.join(allowed)} (got {backend!r})")
    return backend


def _envs():
    from mbd.sim import require

    return require("brax.envs")


def _make_stock(
    task: str,
    env_name: str,
    horizon: int,
    seed: int,
    backend: str | None,
    n_frames: int | None = None,
    torso_z: float | None = None,
) -> Problem:
    from mbd.sim import brax_adapter, quiet_brax

    backend = _check_backend(task, backend, LOCOMOTION_BACKENDS)
    envs = _envs()
    kwargs: dict[str, Any] = {"backend": backend}
    if n_frames is not None:
        kwargs["n_frames"] = n_frames
    with quiet_brax():
        env = envs.get_environment(env_name, **kwargs)
    reward = None
    if torso_z is not None:
        i = int(brax_adapter.link_index(env.sys, ["torso"])[0])

        def reward(state, u, nxt):
            p = nxt.pipeline_state.x.pos[i]
            return p[0] - 0.5 * jnp.clip(jnp.abs(p[2] - torso_z), -1.0, 1.0)

    return brax_adapter.make_brax_problem(env, horizon, reward=reward, key=seed, name=task)


def make_hopper(
    horizon: int = 50, demo: bool = False, seed: int = 0, backend=None, engine=None
) -> Problem:
    """hopper: x_torso - 0.5 clip(|z_torso - 1|, -1, 1), n_frames 20 (see module doc)."""
    if (p := _on_engine("hopper", horizon, demo, seed, engine, backend)) is not None:
        return p
    del demo
    return _make_stock("hopper", "hopper", horizon, seed, backend, n_frames=20, torso_z=1.0)


def make_walker2d(
    horizon: int = 50, demo: bool = False, seed: int = 0, backend=None, engine=None
) -> Problem:
    """walker2d: x_torso - 0.5 clip(|z_torso - 1.1|, -1, 1), n_frames 20."""
    if (p := _on_engine("walker2d", horizon, demo, seed, engine, backend)) is not None:
        return p
    del demo
    return _make_stock("walker2d", "walker2d", horizon, seed, backend, n_frames=20, torso_z=1.1)


def make_halfcheetah(
    horizon: int = 50, demo: bool = False, seed: int = 0, backend=None, engine=None
) -> Problem:
    """halfcheetah: Brax's stock env (its per-backend timestep and n_frames) and reward."""
    if (p := _on_engine("halfcheetah", horizon, demo, seed, engine, backend)) is not None:
        return p
    del demo
    return _make_stock("halfcheetah", "halfcheetah", horizon, seed, backend)


def make_ant(
    horizon: int = 50, demo: bool = False, seed: int = 0, backend=None, engine=None
) -> Problem:
    """ant: Brax's stock env and reward."""
    if (p := _on_engine("ant", horizon, demo, seed, engine, backend)) is not None:
        return p
    del demo
    return _make_stock("ant", "ant", horizon, seed, backend)


def _humanoid_env(standup: bool, n_frames: int, backend: str):
    from mbd.sim import brax_adapter

    sys = brax_adapter.load_system(humanoid_xml(standup))
    return brax_adapter.ModelEnv(sys, backend=backend, n_frames=n_frames)


def make_humanoidrun(
    horizon: int = 50, demo: bool = False, seed: int = 0, backend=None, engine=None
) -> Problem:
    """humanoidrun: x_torso - clip(|z - 1.3|, -1, 1) - 0.1 |y|, n_frames 7."""
    if (p := _on_engine("humanoidrun", horizon, demo, seed, engine, backend)) is not None:
        return p
    from mbd.sim import brax_adapter

    del demo
    backend = _check_backend("humanoidrun", backend, LOCOMOTION_BACKENDS)
    env = _humanoid_env(False, 7, backend)
    i = int(brax_adapter.link_index(env.sys, ["torso"])[0])

    def reward(state, u, nxt):
        p = nxt.pipeline_state.x.pos[i]
        return p[0] - jnp.clip(jnp.abs(p[2] - 1.3), -1.0, 1.0) - 0.1 * jnp.abs(p[1])

    return brax_adapter.make_brax_problem(env, horizon, reward, key=seed, name="humanoidrun")


def make_humanoidstandup(
    horizon: int = 50, demo: bool = False, seed: int = 0, backend=None, engine=None
) -> Problem:
    """humanoidstandup: 1.5 - clip(|z - 1.3|, -2, 1) - 0.1 |x| - 0.1 |y|, lying start."""
    if (p := _on_engine("humanoidstandup", horizon, demo, seed, engine, backend)) is not None:
        return p
    from mbd.sim import brax_adapter

    del demo
    backend = _check_backend("humanoidstandup", backend, LOCOMOTION_BACKENDS)
    env = _humanoid_env(True, 7, backend)
    i = int(brax_adapter.link_index(env.sys, ["torso"])[0])

    def reward(state, u, nxt):
        p = nxt.pipeline_state.x.pos[i]
        return (
            1.5
            - jnp.clip(jnp.abs(p[2] - 1.3), -2.0, 1.0)
            - 0.1 * jnp.abs(p[0])
            - 0.1 * jnp.abs(p[1])
        )

    return brax_adapter.make_brax_problem(env, horizon, reward, key=seed, name="humanoidstandup")


def make_humanoidjog(
    horizon: int = 50, demo: bool = False, seed: int = 0, backend=None, engine=None
) -> Problem:
    """humanoidjog: 1 - |vx_torso - 1.6| - |z - 1.3| - 0.1 |y|, n_frames 5 (dt 0.03).

    With ``demo``, the partial-state mocap reference (torso, thighs, shins; Eq. 13) with
    log p_demo = -mean_t,k (min(|p_tk - ref_tk|, 0.5) / 0.5)^2 over those 5 bodies'
    world positions ``pipeline_state.x.pos``; r_demo is the jogging reward along the mocap
    torso path.
    """
    if (p := _on_engine("humanoidjog", horizon, demo, seed, engine, backend)) is not None:
        return p
    from mbd.sim import brax_adapter

    backend = _check_backend("humanoidjog", backend, LOCOMOTION_BACKENDS)
    env = _humanoid_env(False, 5, backend)
    i = int(brax_adapter.link_index(env.sys, ["torso"])[0])
    tracked = brax_adapter.link_index(env.sys, list(JOG_BODIES))

    def reward(state, u, nxt):
        p = nxt.pipeline_state.x.pos[i]
        vx = nxt.pipeline_state.xd.vel[i, 0]
        return 1.0 - jnp.abs(vx - JOG_SPEED) - jnp.abs(p[2] - 1.3) - 0.1 * jnp.abs(p[1])

    d = None
    if demo:
        ref = mocap_reference(horizon)
        d = Demo(
            reference=ref,
            scale=DEMO_SCALE,
            reward=float(np.mean(jog_reward_of_positions(ref[:, 0]))),
            observe=lambda states, controls: brax_adapter.body_positions(states, tracked),
        )
    return brax_adapter.make_brax_problem(
        env, horizon, reward, key=seed, demo=d, name="humanoidjog"
    )


def make_pusht(
    horizon: int = 40, demo: bool = False, seed: int = 0, backend=None, engine=None
) -> Problem:
    """pusht: push the T to a random goal pose (per seed), planar, no gravity."""
    if (p := _on_engine("pusht", horizon, demo, seed, engine, backend)) is not None:
        return p
    from mbd.sim import brax_adapter

    del demo
    backend = _check_backend("pusht", backend, PUSHT_BACKENDS)
    sys = brax_adapter.load_system(PUSHT_XML)
    q0 = np.zeros(sys.q_size(), np.float32)
    q0[:2] = PUSHT_PUSHER_START
    env = brax_adapter.ModelEnv(sys, backend=backend, n_frames=5, init_q=q0)

    def reward(state, u, nxt, goal):  # the goal is a param: one compile for every seed
        q = nxt.pipeline_state.q  # pusher x, y; T x, y, theta
        tee = q[2:4]
        d_goal = jnp.linalg.norm(goal[:2] - tee)
        d_rot = jnp.abs(goal[2] - q[4]) / jnp.pi
        d_push = jnp.maximum(jnp.linalg.norm(q[:2] - tee) - 0.2, 0.0)
        return 1.0 - (d_goal + d_rot + d_push)

    return brax_adapter.make_brax_problem(
        env, horizon, reward, key=seed, name="pusht", params=jnp.asarray(pusht_goal(seed))
    )


# --------------------------------------------------------------------------------------
# Metrics and renders for `mbd plan`
# --------------------------------------------------------------------------------------


def jog_figures(pos: np.ndarray, x0: float) -> dict:
    """The humanoidjog figures of a planned path (any engine).

    Args:
        pos: (T, 5, 3) world positions of the tracked bodies (torso, thighs, shins).
        x0: the torso's x at step 0.

    Returns:
        ``mocap_distance`` (mean over steps and bodies, metres), ``mocap_distance_final``
        (last step), ``demo_loglik`` (Eq. 13 term, in [-1, 0]), ``mean_speed`` (m/s of the
        torso along x).
    """
    ref = mocap_reference(pos.shape[0])
    dist = np.linalg.norm(pos - ref, axis=-1)
    loglik = -np.mean(np.minimum(dist / DEMO_SCALE, 1.0) ** 2)
    return {
        "mocap_distance": float(np.mean(dist)),
        "mocap_distance_final": float(np.mean(dist[-1])),
        "demo_loglik": float(loglik),
        "mean_speed": float((pos[-1, 0, 0] - x0) / (JOG_DT * pos.shape[0])),
    }


def pusht_figures(q: np.ndarray, result) -> dict:
    """Final pose of the T (x, y in m, theta in rad) from the last qpos (5,), and the
    last step's reward."""
    return {
        "tee_final_x": float(q[2]),
        "tee_final_y": float(q[3]),
        "tee_final_theta": float(q[4]),
        "final_step_reward": float(np.asarray(result.rewards)[-1]),
    }


def _on_mujoco_engine(problem: Problem) -> bool:
    return isinstance(problem.step, engines.MuJoCoStep)


def jog_metrics(problem: Problem, result) -> dict:
    """Distance of the tracked bodies (torso, thighs, shins) to the mocap reference.

    Args:
        problem: a humanoidjog problem (Brax or a MuJoCo engine).
        result: its :class:`~mbd.solver.MBDResult`.

    Returns:
        :func:`jog_figures`.
    """
    if _on_mujoco_engine(problem):
        view = problem.step.physics.view
        pos = np.asarray(view(result.states).body_pos)  # (T, 5, 3), torso first
        return jog_figures(pos, float(np.asarray(view(problem.init_state).body_pos)[0, 0]))
    from mbd.sim import brax_adapter

    sys = getattr(problem.step.env, "unwrapped", problem.step.env).sys
    idx = brax_adapter.link_index(sys, list(JOG_BODIES))
    pos = np.asarray(result.states.pipeline_state.x.pos)[:, idx]  # (T, 5, 3)
    x0 = float(np.asarray(problem.init_state.pipeline_state.x.pos)[idx[0], 0])
    return jog_figures(pos, x0)


def pusht_metrics(problem: Problem, result) -> dict:
    """Final pose of the T (x, y in m, theta in rad) and the last step's reward."""
    if _on_mujoco_engine(problem):
        q = np.asarray(problem.step.physics.view(result.states).qpos)[-1]
        return pusht_figures(q, result)
    return pusht_figures(np.asarray(result.states.pipeline_state.q)[-1], result)


JOG_MARKER_LABEL = (
    "mocap reference positions of the torso, thighs and shins at this step "
    "(the demonstration the plan is pulled towards, Eq. 13)"
)


def render(problem: Problem, result, path) -> None:
    """Writes the self-contained 3-D replay ``render.html`` (see :mod:`mbd.sim.render`).

    The pusht camera follows the pusher; humanoidjog's orange markers (with ``--demo``)
    are captioned as the mocap reference of :data:`JOG_BODIES`.
    """
    from mbd.sim.render import MARKER_LABEL, save_html

    track = "pusher" if problem.name == "pusht" else None
    label = JOG_MARKER_LABEL if problem.name == "humanoidjog" else MARKER_LABEL
    save_html(problem, result, path, track=track, marker_label=label)


@dataclasses.dataclass(frozen=True)
class RobotTask:
    """Static description of one robot task (used to register it)."""

    name: str
    summary: str
    make: Callable[..., Problem]
    backends: tuple[str, ...]
    has_demo: bool = False
    metrics: Callable[..., dict] | None = None


TASKS: tuple[RobotTask, ...] = (
    RobotTask("hopper", "hopper (Brax's hopper.xml, n_frames 20) hopping forward (Table 2: 1.53)",
              make_hopper, LOCOMOTION_BACKENDS),
    RobotTask("walker2d", "walker2d (Brax's walker2d.xml) walking forward upright (Table 2: 2.63)",
              make_walker2d, LOCOMOTION_BACKENDS),
    RobotTask("halfcheetah", "halfcheetah (Brax's model and stock reward) running (Table 2: 2.31)",
              make_halfcheetah, LOCOMOTION_BACKENDS),
    RobotTask("ant", "ant (Brax's model and stock reward) running (Table 2: 3.80)",
              make_ant, LOCOMOTION_BACKENDS),
    RobotTask("humanoidrun", "humanoid (dt 0.006, gears 350/100) running (Table 2: 2.92)",
              make_humanoidrun, LOCOMOTION_BACKENDS),
    RobotTask("humanoidstandup", "humanoid standing up from lying on its back "
              "(Table 2: 0.99)", make_humanoidstandup, LOCOMOTION_BACKENDS),
    RobotTask("humanoidjog", "humanoid jogging at 1.6 m/s; --demo adds the partial-state "
              "mocap reference (torso, thighs, shins; Eq. 13)", make_humanoidjog,
              LOCOMOTION_BACKENDS, has_demo=True, metrics=jog_metrics),
    RobotTask("pusht", "push a T to a random goal pose per seed (Table 2: 0.67)",
              make_pusht, PUSHT_BACKENDS, metrics=pusht_metrics),
)  # fmt: skip


__all__ = [
    "AUTHORS",
    "HORIZONS",
    "JOG_BODIES",
    "PAPER_MBD_SECONDS",
    "PAPER_RESULTS",
    "PAPER_TABLE2",
    "PUSHT_XML",
    "TABLE4",
    "TASKS",
    "humanoid_xml",
    "jog_metrics",
    "load_mocap",
    "mocap_reference",
    "pusht_goal",
    "render",
]
