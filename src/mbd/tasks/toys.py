"""Small pure-JAX trajectory problems for tests and quick comparisons of the optimizers.

- ``pointmass``: a 2-D single-integrator point mass steered to a goal, dense quadratic
  reward: smooth and unimodal, every method should solve it.
- ``twobasins``: a 1-D point mass that must choose between a near, shallow reward basin
  and a far, high and narrow one. Greedy methods (CEM) often settle in the near basin;
  methods with fixed noise (MPPI) reach the far one but cannot hold its narrow peak. It
  is the multimodal problem on which MBD is compared with CEM and MPPI
  (``tests/test_baselines.py``).

Both use x_{t+1} = x_t + dt * u_t with u in [-1, 1]^d, dt = 0.1.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from mbd.problem import Problem, make_problem

DT = 0.1
POINTMASS_GOAL = np.array([1.0, -0.5], dtype=np.float32)
POINTMASS_HORIZON = 20

NEAR_CENTER, NEAR_HEIGHT, NEAR_WIDTH = -0.3, 0.4, 0.1
FAR_CENTER, FAR_HEIGHT, FAR_WIDTH = 0.8, 1.0, 0.08
GUIDE_HEIGHT, GUIDE_WIDTH = 0.6, 0.5
TWOBASINS_HORIZON = 30


def pointmass(horizon: int = POINTMASS_HORIZON, demo: bool = False, seed: int = 0) -> Problem:
    """2-D point mass from the origin to (1, -0.5); r_t = -|p_{t+1} - goal|^2.

    Args:
        horizon: T.
        demo: unsupported (must be False).
        seed: unused (the problem is deterministic).

    Returns:
        A :class:`~mbd.problem.Problem` with state (2,) and controls (2,) in [-1, 1].
    """
    del seed
    if demo:
        raise ValueError("pointmass has no demonstration")
    goal = jnp.asarray(POINTMASS_GOAL)

    def dynamics(x, u):
        return x + DT * u

    def reward(x, u):
        return -jnp.sum((dynamics(x, u) - goal) ** 2)

    return make_problem(
        jnp.zeros(2, jnp.float32), dynamics, reward, horizon, 2, -1.0, 1.0, name="pointmass", dt=DT
    )


def basins_reward(x: jnp.ndarray) -> jnp.ndarray:
    """Stage reward of ``twobasins`` at positions x (...).

    Near basin: a bump of height 0.4 and width 0.1 at -0.3, three steps away. Far basin
    at 0.8, eight steps away: a broad bump (height 0.6, width 0.5) that can be seen from
    the start, topped by a narrow peak (height 1.0, width 0.08) that pays only a precise
    hold. Holding the far peak scores ~1.3 per step, the near one ~0.4.
    """
    near = NEAR_HEIGHT * jnp.exp(-0.5 * ((x - NEAR_CENTER) / NEAR_WIDTH) ** 2)
    far = FAR_HEIGHT * jnp.exp(-0.5 * ((x - FAR_CENTER) / FAR_WIDTH) ** 2)
    guide = GUIDE_HEIGHT * jnp.exp(-0.5 * ((x - FAR_CENTER) / GUIDE_WIDTH) ** 2)
    return near + far + guide


def twobasins(horizon: int = TWOBASINS_HORIZON, demo: bool = False, seed: int = 0) -> Problem:
    """1-D point mass from 0 choosing between a near shallow and a far high reward basin.

    Args:
        horizon: T.
        demo: unsupported (must be False).
        seed: unused.

    Returns:
        A :class:`~mbd.problem.Problem` with state (1,) and controls (1,) in [-1, 1].
    """
    del seed
    if demo:
        raise ValueError("twobasins has no demonstration")

    def dynamics(x, u):
        return x + DT * u

    def reward(x, u):
        return basins_reward(dynamics(x, u)[0])

    return make_problem(
        jnp.zeros(1, jnp.float32), dynamics, reward, horizon, 1, -1.0, 1.0, name="twobasins", dt=DT
    )
