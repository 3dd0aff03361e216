"""Swing a torque-limited pendulum up with MBD: a user's own problem through the API."""

import jax
import jax.numpy as jnp

import mbd


def dynamics(x, u):  # x = (angle from upright, angular velocity), u = (torque,)
    th, om = x
    om = om + 0.05 * (9.81 * jnp.sin(th) + u[0])  # semi-implicit Euler, dt = 0.05
    return jnp.array([th + 0.05 * om, om])


def reward(x, u):  # 1 when upright and still, lower elsewhere
    return jnp.cos(x[0]) - 0.01 * x[1] ** 2 - 0.001 * u[0] ** 2


problem = mbd.make_problem(
    init_state=jnp.array([jnp.pi, 0.0]),  # hanging down
    dynamics=dynamics,
    reward=reward,
    horizon=100,
    action_dim=1,
    action_low=-4.0,
    action_high=4.0,  # too weak to lift directly
)
config = mbd.MBDConfig(num_samples=512, num_steps=100, temperature=0.1)
result = mbd.make_solver(problem, config).solve(jax.random.key(0))
print(
    f"mean reward {float(result.reward):.3f}; final angle "
    f"{float(jnp.cos(result.states[-1, 0])):.3f} (cos, 1 = upright)"
)
