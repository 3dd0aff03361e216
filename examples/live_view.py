"""The pendulum of examples/pendulum.py in real time, in the browser: watch it and steer it.

Needs ``pip install "mbd[view]"``. Prints the page's address, then runs until Ctrl-C
(or for the seconds given: ``python examples/live_view.py 30``).
"""

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np

import mbd
from mbd.mpc import LiveView, MPCConfig, RealtimeLoop, SimPlant, make_controller
from mbd.view import Drawing, scene_for


def dynamics(x, u, params):  # x = (angle from upright, angular velocity), u = (torque,)
    th, om = x
    om = om + 0.05 * (9.81 * jnp.sin(th) + u[0] / params["mass"])  # dt = 0.05
    return jnp.array([th + 0.05 * om, om])


def reward(x, u, params):  # 1 when upright and still
    return jnp.cos(x[0]) - 0.01 * x[1] ** 2 - 0.001 * u[0] ** 2


problem = mbd.make_problem(
    jnp.array([jnp.pi, 0.0]), dynamics, reward, horizon=30, action_dim=1,
    action_low=-4.0, action_high=4.0, dt=0.05, params={"mass": jnp.float32(1.0)},
)  # fmt: skip
POLE = """<mujoco><worldbody><body><joint type="hinge" axis="0 1 0"/>
  <geom type="capsule" fromto="0 0 0 0 0 1" size="0.04"/></body></worldbody></mujoco>"""

ctrl = make_controller(problem, "mbd", mbd.MBDConfig(num_samples=256), MPCConfig(iterations=2))
loop = RealtimeLoop(ctrl, SimPlant(problem))
scene = scene_for(problem, Drawing(POLE, qpos=lambda x: np.asarray(x)[:1], velocity=(1,)))
with LiveView(loop, scene, params={"mass": (0.5, 3.0)}) as view:
    print(f"open {view.url}", flush=True)
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else math.inf
    res = loop.run(jax.random.key(0), duration=seconds)
s = res.summary()
print(f"{s['sim_seconds']:.1f} s, real-time factor {s['realtime_factor']:.3f}, "
      f"reward per step {s['closed_loop_return']:.3f}")  # fmt: skip
