"""Classic swing-up tasks in pure JAX, for receding-horizon control (``mbd mpc``).

- ``pendulum``: a torque-limited pendulum hanging down must swing up and balance. The
  torque limit (4 N m) is below m g l (9.81 N m), so it has to pump energy first.
  State (theta, omega), theta = 0 upright; semi-implicit Euler at dt = 0.05 s.
- ``cartpole``: a cart (1 kg) pushes a pole (0.1 kg, half-length 0.5 m) from hanging to
  upright, with |F| <= 10 N; state (x, theta, x', theta'), theta = 0 upright; the
  frictionless cart-pole of Barto, Sutton and Anderson (1983), two semi-implicit Euler
  substeps per control step of 0.05 s.

Both take their physical parameters as problem params (``{"mass": ...}``), so one
compile plans for any mass, and a closed loop can run a plant whose mass differs from
the planner's model (:func:`mbd.mpc.closed_loop` with ``plant_params``).

Rewards (per step, to maximize): pendulum ``cos(theta) - 0.01 omega^2 - 0.001 u^2``;
cart-pole ``cos(theta) - 0.05 x^2 - 0.01 theta'^2 - 0.0001 F^2``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from mbd.problem import Problem, make_problem

GRAVITY = 9.81
PENDULUM_DT = 0.05
PENDULUM_LENGTH = 1.0
PENDULUM_MASS = 1.0
PENDULUM_TORQUE = 4.0
PENDULUM_HORIZON = 30

CARTPOLE_DT = 0.05
CARTPOLE_SUBSTEPS = 2
CART_MASS = 1.0
POLE_MASS = 0.1
POLE_HALF_LENGTH = 0.5
CARTPOLE_FORCE = 10.0
CARTPOLE_HORIZON = 40


def pendulum_dynamics(x: jnp.ndarray, u: jnp.ndarray, params: dict) -> jnp.ndarray:
    """One step of the pendulum.

    Args:
        x: (2,) angle from upright (rad) and angular velocity (rad/s).
        u: (1,) torque (N m).
        params: ``{"mass": scalar}`` (kg).

    Returns:
        (2,) next state.
    """
    th, om = x[0], x[1]
    m, length = params["mass"], PENDULUM_LENGTH
    acc = GRAVITY / length * jnp.sin(th) + u[0] / (m * length**2)
    om = om + PENDULUM_DT * acc
    return jnp.stack([th + PENDULUM_DT * om, om])


def pendulum_reward(x: jnp.ndarray, u: jnp.ndarray, params: dict) -> jnp.ndarray:
    """cos(theta) - 0.01 omega^2 - 0.001 u^2 (1 when upright and still)."""
    del params
    return jnp.cos(x[0]) - 0.01 * x[1] ** 2 - 0.001 * u[0] ** 2


def pendulum(
    horizon: int = PENDULUM_HORIZON, demo: bool = False, seed: int = 0, mass: float = PENDULUM_MASS
) -> Problem:
    """The pendulum swing-up from hanging down, at rest.

    Args:
        horizon: T.
        demo: unsupported (must be False).
        seed: unused (deterministic).
        mass: pendulum mass in kg (a param).

    Returns:
        :class:`~mbd.problem.Problem`, state (2,), torque (1,) in [-4, 4].
    """
    del seed
    if demo:
        raise ValueError("pendulum has no demonstration")
    return make_problem(
        jnp.array([np.pi, 0.0], jnp.float32),
        pendulum_dynamics,
        pendulum_reward,
        horizon,
        1,
        -PENDULUM_TORQUE,
        PENDULUM_TORQUE,
        name="pendulum",
        dt=PENDULUM_DT,
        params={"mass": jnp.float32(mass)},
    )


def cartpole_dynamics(x: jnp.ndarray, u: jnp.ndarray, params: dict) -> jnp.ndarray:
    """One control step of the cart-pole (two Euler substeps).

    Args:
        x: (4,) cart position (m), pole angle from upright (rad), their velocities.
        u: (1,) force on the cart (N).
        params: ``{"mass": scalar, ...}``, the pole's mass (kg).

    Returns:
        (4,) next state.
    """
    mp, mc, l = params["mass"], CART_MASS, POLE_HALF_LENGTH
    total = mc + mp
    h = CARTPOLE_DT / CARTPOLE_SUBSTEPS
    for _ in range(CARTPOLE_SUBSTEPS):
        pos, th, vel, om = x[0], x[1], x[2], x[3]
        s, c = jnp.sin(th), jnp.cos(th)
        temp = (u[0] + mp * l * om**2 * s) / total
        th_acc = (GRAVITY * s - c * temp) / (l * (4.0 / 3.0 - mp * c**2 / total))
        x_acc = temp - mp * l * th_acc * c / total
        vel = vel + h * x_acc
        om = om + h * th_acc
        x = jnp.stack([pos + h * vel, th + h * om, vel, om])
    return x


def cartpole_reward(x: jnp.ndarray, u: jnp.ndarray, params: dict) -> jnp.ndarray:
    """cos(theta) - 0.05 (x - target)^2 - 0.01 theta'^2 - 0.0001 F^2; the target cart
    position is the param ``target`` (0 if absent)."""
    dx = x[0] - params.get("target", 0.0)
    return jnp.cos(x[1]) - 0.05 * dx**2 - 0.01 * x[3] ** 2 - 1e-4 * u[0] ** 2


def cartpole(
    horizon: int = CARTPOLE_HORIZON,
    demo: bool = False,
    seed: int = 0,
    mass: float = POLE_MASS,
    target: float = 0.0,
) -> Problem:
    """The cart-pole swing-up from hanging down, at rest at x = 0.

    Args:
        horizon: T.
        demo: unsupported (must be False).
        seed: unused (deterministic).
        mass: pole mass in kg (a param).
        target: the cart position (m) to balance at (a param: a command).

    Returns:
        :class:`~mbd.problem.Problem`, state (4,), force (1,) in [-10, 10].
    """
    del seed
    if demo:
        raise ValueError("cartpole has no demonstration")
    return make_problem(
        jnp.array([0.0, np.pi, 0.0, 0.0], jnp.float32),
        cartpole_dynamics,
        cartpole_reward,
        horizon,
        1,
        -CARTPOLE_FORCE,
        CARTPOLE_FORCE,
        name="cartpole",
        dt=CARTPOLE_DT,
        params={"mass": jnp.float32(mass), "target": jnp.float32(target)},
    )


PARAM_RANGES = {
    "pendulum": {"mass": (0.3, 3.0)},
    "cartpole": {"target": (-1.5, 1.5), "mass": (0.05, 0.5)},
}
"""The params a user steers (the live view's sliders), with their ranges."""

PENDULUM_MJCF = """
<mujoco model="pendulum (drawing)">
  <worldbody>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 0"/>
    <geom name="pivot" type="sphere" size="0.06" pos="0 0 1.2" rgba="0.3 0.3 0.3 1"/>
    <body name="pole" pos="0 0 1.2">
      <joint name="hinge" type="hinge" axis="0 1 0"/>
      <geom type="capsule" fromto="0 0 0 0 0 1" size="0.04" rgba="0.85 0.45 0.2 1"/>
      <body name="tip" pos="0 0 1">
        <geom type="sphere" size="0.1" rgba="0.2 0.45 0.85 1"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""
"""A drawing of the pendulum (1 m pole, pivot 1.2 m up); qpos = theta (0 upright)."""

CARTPOLE_MJCF = """
<mujoco model="cart-pole (drawing)">
  <worldbody>
    <geom name="floor" type="plane" size="4 2 0.1" pos="0 0 0"/>
    <geom name="rail" type="box" size="3 0.02 0.02" pos="0 0 0.25" rgba="0.3 0.3 0.3 1"/>
    <body name="cart" pos="0 0 0.25">
      <joint name="slide" type="slide" axis="1 0 0"/>
      <geom type="box" size="0.2 0.12 0.08" rgba="0.2 0.45 0.85 1"/>
      <body name="pole" pos="0 0 0.08">
        <joint name="hinge" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 1" size="0.03" rgba="0.85 0.45 0.2 1"/>
        <body name="tip" pos="0 0 1"><geom type="sphere" size="0.06"/></body>
      </body>
    </body>
  </worldbody>
</mujoco>
"""
"""A drawing of the cart-pole (pole of 2 x 0.5 m); qpos = (x, theta)."""


def drawing(name: str):
    """The live view's :class:`~mbd.view.scene.Drawing` of ``pendulum`` or ``cartpole``."""
    from mbd.view.scene import Drawing

    # (the MJCF, its nq: the state's first numbers, and what a push adds to: the
    # pendulum's angular velocity, rad/s per m/s at its 1 m tip; the cart's velocity)
    drawings = {"pendulum": (PENDULUM_MJCF, 1, (1,)), "cartpole": (CARTPOLE_MJCF, 2, (2,))}
    if name in drawings:
        mjcf, nq, velocity = drawings[name]
        return Drawing(
            mjcf, lambda x: np.asarray(x, np.float64)[:nq], track="tip", velocity=velocity
        )
    raise KeyError(f"no drawing of {name!r}")


__all__ = [
    "CARTPOLE_MJCF",
    "PARAM_RANGES",
    "PENDULUM_MJCF",
    "cartpole",
    "cartpole_dynamics",
    "cartpole_reward",
    "drawing",
    "pendulum",
    "pendulum_dynamics",
    "pendulum_reward",
]
