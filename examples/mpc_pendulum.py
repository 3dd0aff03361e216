"""The pendulum of examples/pendulum.py in closed loop: receding-horizon MBD."""

import dataclasses

import jax
import jax.numpy as jnp

import mbd
from mbd.mpc import MPCConfig, closed_loop, make_controller


def dynamics(x, u):  # x = (angle from upright, angular velocity), u = (torque,)
    th, om = x
    om = om + 0.05 * (9.81 * jnp.sin(th) + u[0])  # semi-implicit Euler, dt = 0.05
    return jnp.array([th + 0.05 * om, om])


def reward(x, u):  # 1 when upright and still
    return jnp.cos(x[0]) - 0.01 * x[1] ** 2 - 0.001 * u[0] ** 2


problem = mbd.make_problem(jnp.array([jnp.pi, 0.0]), dynamics, reward, 100, 1, -4.0, 4.0)

short = dataclasses.replace(problem, horizon=30)  # plan 1.5 s ahead
ctrl = make_controller(short, "mbd", mbd.MBDConfig(num_samples=256), MPCConfig(iterations=2))
loop = jax.jit(lambda key: closed_loop(ctrl, key, steps=100))  # 100 control steps, one scan
res = loop(jax.random.key(0))
print(f"closed-loop reward per step {float(res.mean_reward):.3f}; last state {res.states[-1]}")
print(f"cos(angle) over the last 20 steps: {float(jnp.mean(jnp.cos(res.states[-20:, 0]))):.3f}")
