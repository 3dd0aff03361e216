"""dm_control's cart-pole and acrobot as MuJoCo tasks, for real-time MPC (``mbd mpc``).

The models are the dm_control suite's own MJCF files (``cartpole.xml``, ``acrobot.xml``;
RK4 at 0.01 s), read from the installed ``dm-control`` package (``pip install
'mbd[dmc]'``; the package is not imported, its files are read) and run on any MuJoCo
engine (native by default on a CPU). A control step holds the command for ``n_frames``
physics steps (0.05 s).

The plant is that model (``make(..., plant=True)``, the task's ``plant``); the planner
plans on the same model integrated with semi-implicit Euler at the same time step,
which costs a quarter of RK4's four force evaluations per step and so buys four times
the samples within a deadline (``python benchmarks/bench_realtime.py`` measures what
that does in closed loop). Both start hanging down and must swing up and hold:

- ``dmc-cartpole``: qpos (cart x, pole angle, 0 upright), start (0, pi); reward
  ``cos(angle) - 0.1 x^2 - 0.05 x'^2 - 0.01 angle'^2 - 0.001 u^2`` (at most 1: upright,
  centred, still). The cart's velocity term keeps a sampling planner from holding the
  pole a little tilted while the cart accelerates under it into the end of its rail
  (1.8 m), where the pole falls; ``docs/results.md`` has the closed loops with and
  without it;
- ``dmc-acrobot``: qpos (shoulder, elbow), both 0 upright, only the elbow driven (2 N m),
  start (pi, 0); reward the mean of cos(shoulder) and cos(shoulder + elbow) (the heights
  of the elbow and of the tip, 1 when upright) minus ``0.005 |qvel|^2``.

Seeds perturb the start angles uniformly by +-0.05 rad. :func:`loop_metrics` reads how the run
went from the states: the fraction of the last 3 s spent upright (within 0.3 rad,
every link) and the first time from which it stayed upright.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

from mbd.problem import Problem

N_FRAMES = 5
HORIZONS = {"dmc-cartpole": 30, "dmc-acrobot": 50}
UPRIGHT_COS = float(np.cos(0.3))
HOLD_SECONDS = 3.0


def model_file(name: str) -> Path:
    """The dm_control suite's MJCF file ``name`` (e.g. ``cartpole.xml``).

    Raises:
        mbd.sim.MissingExtraError: naming ``pip install 'mbd[dmc]'`` when dm-control is
            not installed.
    """
    import importlib.util

    from mbd.sim import MissingExtraError

    spec = importlib.util.find_spec("dm_control")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            "this task reads dm_control's model files; install them with: pip install 'mbd[dmc]'"
        )
    return Path(spec.submodule_search_locations[0]) / "suite" / name


def _cartpole_reward(before, u, after):
    q, v = after.qpos, after.qvel
    return (
        jnp.cos(q[1]) - 0.1 * q[0] ** 2 - 0.05 * v[0] ** 2 - 0.01 * v[1] ** 2
        - 0.001 * jnp.sum(u**2)
    )  # fmt: skip


def _acrobot_reward(before, u, after):
    q, v = after.qpos, after.qvel
    return 0.5 * (jnp.cos(q[0]) + jnp.cos(q[0] + q[1])) - 0.005 * jnp.sum(v**2)


def make(
    name: str,
    horizon: int | None = None,
    demo: bool = False,
    seed: int = 0,
    engine: str | None = None,
    threads: int | None = None,
    plant: bool = False,
) -> Problem:
    """Builds ``dmc-cartpole`` or ``dmc-acrobot`` (see the module doc).

    Args:
        name: the task.
        horizon: control steps T (the task's default if None).
        demo: unsupported (no demonstration).
        seed: seed of the start angles' perturbation.
        engine: ``mujoco``, ``mjx``, ``warp`` or None for the machine's default.
        threads: threads of the native engine.
        plant: the plant's model (dm_control's RK4) instead of the planner's (Euler).

    Returns:
        The problem (``dt`` 0.05 s).
    """
    from mbd.sim import require
    from mbd.sim.engines import compile_model, make_mujoco_problem

    if demo:
        raise ValueError(f"{name} has no demonstration")
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-0.05, 0.05, 2)
    if name == "dmc-cartpole":
        path, reward, q0 = model_file("cartpole.xml"), _cartpole_reward, [0.0, np.pi]
        q0 = np.array(q0) + np.array([0.0, jitter[1]])
    elif name == "dmc-acrobot":
        path, reward, q0 = model_file("acrobot.xml"), _acrobot_reward, [np.pi, 0.0]
        q0 = np.array(q0) + jitter
    else:
        raise ValueError(f"unknown dm_control task {name!r}")
    m = compile_model(path)
    if not plant:
        m.opt.integrator = int(require("mujoco").mjtIntegrator.mjINT_EULER)
    return make_mujoco_problem(
        m,
        reward,
        HORIZONS[name] if horizon is None else horizon,
        engine=engine,
        n_frames=N_FRAMES,
        init_qpos=q0,
        name=name,
        threads=threads,
    )


def upright(name: str, qpos: np.ndarray) -> np.ndarray:
    """Whether each state (qpos rows) is upright within 0.3 rad, every link."""
    q = np.asarray(qpos)
    if name == "dmc-cartpole":
        return np.cos(q[:, 1]) > UPRIGHT_COS
    return (np.cos(q[:, 0]) > UPRIGHT_COS) & (np.cos(q[:, 0] + q[:, 1]) > UPRIGHT_COS)


def loop_metrics(name: str, qpos: np.ndarray, dt: float) -> dict:
    """How a closed loop went, from its states (qpos (T, 2): x_1 .. x_T, the state after
    control step t at time (t + 1) dt).

    Returns:
        ``upright_last_3s`` (fraction of the last 3 s upright), ``swung_up`` (upright
        through all of the last 3 s), ``time_to_upright`` (seconds until it was upright
        for good; None if it never was at the end).
    """
    up = upright(name, qpos)
    last = up[-max(1, round(HOLD_SECONDS / dt)) :]
    stay = None
    if up[-1]:  # row i is the state at time (i + 1) dt
        fall = np.flatnonzero(~up)
        stay = float((fall[-1] + 2) * dt) if len(fall) else float(dt)
    return {
        "upright_last_3s": float(np.mean(last)),
        "swung_up": bool(np.all(last)),
        "time_to_upright": stay,
    }


def closed_loop_metrics(name: str, problem: Problem, states) -> dict:
    """:func:`loop_metrics` of a closed loop's engine states."""
    qpos = np.asarray(problem.step.physics.view(states).qpos)
    return loop_metrics(name, qpos, problem.dt)


__all__ = [
    "HORIZONS",
    "N_FRAMES",
    "closed_loop_metrics",
    "loop_metrics",
    "make",
    "model_file",
    "upright",
]
