"""The car U-maze task (paper Sec. 5.2, Fig. 4; A.4.4), in pure JAX.

A kinematic car, state (x, y, theta), controls u = (steer, speed) in [-1, 1]:
x' = 3 u1 sin(theta), y' = 3 u1 cos(theta), theta' = (2 pi / 3) u0, integrated with RK4
at dt = 0.1 over H = 50 steps (the authors' code; the paper's appendix describes a 5-state
bicycle model). Eleven discs of radius 0.3 form a U that opens to the left; the car
starts inside it at (-0.5, 0) heading along -x and must reach (0.5, 0) behind the U's
closed side. A step that would end inside a disc leaves the state where it is.

Reward r_t = 1 - (clip(|p_t - g|, 0, 0.2) / 0.2)^2: zero until the car is within 0.2 of
the goal, so without help the search sees almost no signal. The demonstration is an RRT
path (step 0.2, 1000 iterations) walked at 0.1 per step and held at the goal, with
log p_demo = -mean_t (clip(|p_t - p_ref_t|, 0, 0.5) / 0.5)^2 (Eq. 13).

The constraint g(x_t, u_t) = R - min_j |p_{t+1} - c_j| <= 0 (Eq. 1d) marks a step that
tries to enter a disc; it is on by default (``constrained=True``) so that p_g (Eq. 10d)
excludes trajectories that scrape the walls. ``constrained=False`` gives the authors'
setting, where collision only freezes the car.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from mbd.problem import Demo, Problem
from mbd.tasks import rrt as rrt_lib

DT = 0.1
RADIUS = 0.3
CENTERS = np.array(
    [
        [-0.9, 0.6], [-0.6, 0.6], [-0.3, 0.6], [0.0, 0.6], [0.0, 0.3], [0.0, 0.0],
        [0.0, -0.3], [-0.9, -0.6], [-0.6, -0.6], [-0.3, -0.6], [0.0, -0.6],
    ],
    dtype=np.float32,
)  # fmt: skip
START = np.array([-0.5, 0.0, 1.5 * math.pi], dtype=np.float32)
GOAL = np.array([0.5, 0.0], dtype=np.float32)
HORIZON = 50
DEMO_SCALE = 0.5
DEMO_STEP = 0.1


def car_derivative(x: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """Continuous-time kinematics.

    Args:
        x: state (3,): x, y, theta.
        u: controls (2,): steer, speed, in [-1, 1].

    Returns:
        d x / dt, shape (3,).
    """
    return jnp.stack(
        [3.0 * u[1] * jnp.sin(x[2]), 3.0 * u[1] * jnp.cos(x[2]), (2.0 * jnp.pi / 3.0) * u[0]]
    )


def rk4(x: jnp.ndarray, u: jnp.ndarray, dt: float = DT) -> jnp.ndarray:
    """One RK4 step of :func:`car_derivative`.

    Args:
        x: state (3,).
        u: controls (2,).
        dt: time step.

    Returns:
        Next state (3,), ignoring obstacles.
    """
    k1 = car_derivative(x, u)
    k2 = car_derivative(x + 0.5 * dt * k1, u)
    k3 = car_derivative(x + 0.5 * dt * k2, u)
    k4 = car_derivative(x + dt * k3, u)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def clearance(p: jnp.ndarray) -> jnp.ndarray:
    """Distance from a position to the nearest disc surface (negative inside).

    Args:
        p: positions, shape (..., 2).

    Returns:
        Shape (...): min_j |p - c_j| - R.
    """
    c = jnp.asarray(CENTERS)
    d = jnp.sqrt(jnp.sum((p[..., None, :] - c) ** 2, axis=-1))
    return jnp.min(d, axis=-1) - RADIUS


def step(x: jnp.ndarray, u: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Environment step: RK4, frozen on collision; reward of the new position.

    Args:
        x: state (3,).
        u: controls (2,).

    Returns:
        (next state (3,), reward scalar).
    """
    proposed = rk4(x, u)
    x_next = jnp.where(clearance(proposed[:2]) < 0.0, x, proposed)
    return x_next, position_reward(x_next[:2])


def position_reward(p: jnp.ndarray) -> jnp.ndarray:
    """Reward 1 - (clip(|p - g|, 0, 0.2) / 0.2)^2.

    Args:
        p: positions (..., 2).

    Returns:
        Rewards (...), in [0, 1].
    """
    d = jnp.sqrt(jnp.sum((p - jnp.asarray(GOAL)) ** 2, axis=-1))
    return 1.0 - (jnp.clip(d, 0.0, 0.2) / 0.2) ** 2


def collision_constraint(x: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """g(x_t, u_t) = R - distance of the proposed next position to the nearest centre.

    Args:
        x: state (3,).
        u: controls (2,).

    Returns:
        Shape (1,); <= 0 when the step stays clear of every disc.
    """
    return -clearance(rk4(x, u)[:2])[None]


def positions(states: jnp.ndarray, controls: jnp.ndarray) -> jnp.ndarray:
    """Demo observation: car positions (T, 2) from states (T, 3)."""
    del controls
    return states[:, :2]


def rrt_demo(horizon: int = HORIZON, seed: int = 0, step: float = DEMO_STEP) -> np.ndarray:
    """Plans the RRT demonstration path (A.4.4) as ``horizon`` timed points.

    The RRT path (step 0.2, 1000 iterations) is shortcut-smoothed, then walked at
    ``step`` per control step (a speed the car can reach), and held at the goal once
    there; a path too long for the horizon is resampled to fit. The default pace, 0.1 per
    step (1 m/s, a third of top speed), keeps the car's turning radius (~0.5 m) small
    enough to follow the corners; at 0.2 per step the car falls behind by more than the
    likelihood's 0.5 m range in the first turn and the demonstration stops guiding it.
    The path ignores the turning limit, i.e. it is dynamically infeasible, which is what
    Eq. 13 is for. If a
    seed finds no path in 1000 iterations, the next seeds are tried.

    Args:
        horizon: number of points T.
        seed: RRT seed.
        step: distance covered per control step.

    Returns:
        (horizon, 2) positions p_1 .. p_T, float32.
    """
    for s in range(seed, seed + 50):
        path = rrt_lib.rrt(START[:2], GOAL, CENTERS, RADIUS, step=0.2, iterations=1000, seed=s)
        if path is not None:
            path = rrt_lib.shortcut(path, CENTERS, RADIUS)
            length = float(np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1)))
            n = min(horizon, max(1, int(np.ceil(length / step))))
            pts = rrt_lib.resample(path, n + 1)[1:]
            pad = np.repeat(pts[-1:], horizon - n, axis=0)
            return np.concatenate([pts, pad]).astype(np.float32)
    raise RuntimeError("RRT found no path in 50 seeds of 1000 iterations")


def make(
    horizon: int = HORIZON, demo: bool = False, seed: int = 0, constrained: bool = True
) -> Problem:
    """Builds the car U-maze problem.

    Args:
        horizon: number of control steps T.
        demo: attach the RRT demonstration (Eq. 13).
        seed: RRT seed for the demonstration.
        constrained: add the collision constraint (p_g of Eq. 10d).

    Returns:
        A :class:`~mbd.problem.Problem` with state (3,) and controls (2,) in [-1, 1].
    """
    d = None
    if demo:
        ref = rrt_demo(horizon, seed)
        d = Demo(
            reference=ref,
            scale=DEMO_SCALE,
            reward=float(np.mean(position_reward(jnp.asarray(ref)))),
            observe=positions,
        )
    return Problem(
        init_state=jnp.asarray(START),
        step=step,
        horizon=horizon,
        action_dim=2,
        action_low=-1.0,
        action_high=1.0,
        constraint=collision_constraint if constrained else None,
        demo=d,
        name="car2d",
        dt=DT,
    )


def metrics(problem: Problem, result) -> dict:
    """Task figures of a solved car2d problem.

    Args:
        problem: the problem.
        result: its :class:`~mbd.solver.MBDResult` (states of shape (T, 3)).

    Returns:
        ``final_distance`` to the goal, ``reached_goal`` (within 0.2, where the reward
        starts), ``min_clearance`` of every attempted step to the discs (negative: the
        step tried to enter a disc), ``collision_free``.
    """
    states = np.asarray(result.states)
    prev = np.concatenate([np.asarray(problem.init_state)[None], states[:-1]])
    proposed = np.asarray(jax.vmap(rk4)(jnp.asarray(prev), jnp.asarray(result.solution)))
    min_clear = float(np.min(np.asarray(clearance(jnp.asarray(proposed[:, :2])))))
    dist = float(np.linalg.norm(states[-1, :2] - GOAL))
    return {
        "final_distance": dist,
        "reached_goal": bool(dist <= 0.2),
        "min_clearance": min_clear,
        "collision_free": bool(min_clear >= 0.0),
    }
