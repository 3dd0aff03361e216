"""How close the native engine runs to bare MuJoCo (issue 22, point 1).

    python benchmarks/bench_native_limit.py          # hopper, ant, humanoidrun, cartpole
    python benchmarks/bench_native_limit.py --tasks hopper --rounds 9
    python benchmarks/bench_native_limit.py --judo-python /tmp/judo-venv/bin/python
    python benchmarks/bench_native_limit.py --judo-only --judo-python /tmp/judo-venv/bin/python

Per task, in one process and on the same threads (``--threads``, default the usable CPUs):

- ``bare``: ``mujoco.rollout.rollout`` of ``--samples`` random control sequences over the
  whole horizon (T x n_frames physics steps each) in one call, the physics limit;
- ``solve``: an MBD solve of ``--updates`` updates of ``--samples`` samples (compiled ahead,
  then timed), per update, against ``bare`` of the same env steps;
- ``mpc``: one control step of ``mbd.mpc`` (``--iterations`` updates of ``--mpc-samples``
  samples from the shifted plan, jitted, then timed), against ``bare`` of the same env steps.

Each figure is the median of ``--rounds`` runs; the ratios are of medians measured side by
side. ``--judo-python`` points at a Python with judo installed (``pip install judo-rai``
needs ``mujoco<3.7``, so give it its own venv): judo's predictive sampling on its cart-pole
(32 rollouts x 25 steps, one iteration) is then timed in that process, beside an mbd
control step of the same budget on a cart-pole written here with the facts of judo's,
with the new plan replayed for its predicted reward (``mbd``, ``ps``; the default) and
without (``mbd_nopredict``, ``ps_nopredict``: ``MPCConfig(predict=False)``, judo's work).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TASKS = ("hopper", "ant", "humanoidrun", "cartpole")


def cartpole_problem(horizon: int, n_frames: int, threads: int | None):
    """dm_control's cart-pole (RK4, 0.01 s), swing-up reward, pole hanging at the start."""
    import jax.numpy as jnp
    import numpy as np

    from mbd.sim.engines import make_mujoco_problem
    from mbd.tasks.dmc import model_file

    def reward(before, u, after):
        return jnp.cos(after.qpos[1]) - 0.01 * after.qpos[0] ** 2 - 0.001 * jnp.sum(u**2)

    return make_mujoco_problem(
        model_file("cartpole.xml"), reward, horizon=horizon, n_frames=n_frames,
        init_qpos=np.array([0.0, np.pi]), name="cartpole", threads=threads,
    )  # fmt: skip


# A cart-pole as judo's (facts of its model: 0.04 s time step, contacts off, a 1 kg cart
# on a damped slide of +-1.8 m driven by a position servo, kp 100, force +-10 N; a 1 m,
# 0.1 kg capsule pole on a free hinge), written here so that both plan the same physics.
JUDO_LIKE_CARTPOLE = """
<mujoco model="cartpole_judo_like">
  <option timestep="0.04"><flag contact="disable"/></option>
  <worldbody>
    <body name="cart">
      <joint name="slider" type="slide" axis="1 0 0" damping="10" range="-1.8 1.8"/>
      <geom type="box" size="0.2 0.15 0.1" mass="1"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 1" size="0.045" mass="0.1"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <position joint="slider" kp="100" ctrlrange="-1.8 1.8" forcerange="-10 10"/>
  </actuator>
</mujoco>
"""


def judo_like_problem(threads: int | None):
    """The judo-like cart-pole, 25 control steps of one physics step (0.04 s), pole down."""
    import jax.numpy as jnp
    import numpy as np

    from mbd.sim.engines import make_mujoco_problem

    def reward(before, u, after):  # upright, centred, slow, cheap (judo's terms, roughly)
        q, v = after.qpos, after.qvel
        return jnp.cos(q[1]) - 0.1 * q[0] ** 2 - 0.01 * jnp.sum(v**2) - 0.01 * jnp.sum(u**2)

    return make_mujoco_problem(
        JUDO_LIKE_CARTPOLE, reward, horizon=25, n_frames=1,
        init_qpos=np.array([1.0, np.pi]), threads=threads,
    )  # fmt: skip


def problem_of(name: str, threads: int | None):
    if name == "cartpole":
        return cartpole_problem(30, 5, threads)
    from mbd.tasks import get_task, mujoco_tasks

    horizon = get_task(name).horizon
    return mujoco_tasks.make(name, horizon, seed=0, engine="mujoco", threads=threads)


def median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bare_seconds(problem, samples: int, rounds: int) -> float:
    """Median seconds of ``mujoco.rollout`` over ``samples`` whole horizons."""
    import mujoco
    import mujoco.rollout
    import numpy as np

    physics = problem.step.physics
    m, F, T = physics.model, physics.n_frames, problem.horizon
    rng = np.random.default_rng(0)
    u = rng.uniform(problem.action_low, problem.action_high, (samples, T, m.nu))
    ctrl = np.repeat(u, F, axis=1)
    x0 = np.tile(
        np.asarray(problem.init_state.hi, np.float64) + np.asarray(problem.init_state.lo),
        (samples, 1),
    )
    datas = [mujoco.MjData(m) for _ in range(physics.threads)]
    state = np.empty((samples, T * F, physics.nstate))
    sens = np.empty((samples, T * F, m.nsensordata))

    def run():
        mujoco.rollout.rollout(
            m, datas, x0, ctrl, nstep=T * F, persistent_pool=True, state=state, sensordata=sens
        )

    run()
    return median_time(run, rounds)


def measure(name: str, a) -> dict:
    import jax

    import mbd
    from mbd.mpc import MPCConfig, make_controller

    problem = problem_of(name, a.threads)
    B, U = a.samples, a.updates
    bare = bare_seconds(problem, B, a.rounds)
    solver = mbd.make_solver(problem, mbd.MBDConfig(num_samples=B, num_steps=U + 1))
    key = jax.random.key(0)
    run = solver.solve.compile(key)
    jax.block_until_ready(run(key))
    solve = median_time(lambda: jax.block_until_ready(run(key)), a.rounds) / U

    ctrl = make_controller(
        problem, "mbd", mbd.MBDConfig(num_samples=a.mpc_samples),
        MPCConfig(iterations=a.iterations, warmup_iterations=2),
    )  # fmt: skip
    step = jax.jit(ctrl.step)
    cs = jax.block_until_ready(jax.jit(ctrl.init)(key))
    x = problem.init_state
    jax.block_until_ready(step(key, cs, x))
    mpc = median_time(lambda: jax.block_until_ready(step(key, cs, x)[0]), a.rounds)
    bare_mpc = bare_seconds(problem, a.mpc_samples, a.rounds) * a.iterations
    env = B * problem.horizon
    return {
        "task": name,
        "threads": problem.step.physics.threads,
        "samples": B,
        "horizon": problem.horizon,
        "n_frames": problem.step.physics.n_frames,
        "bare_update_s": bare,
        "solve_update_s": solve,
        "solve_over_bare": solve / bare,
        "bare_env_steps_per_s": env / bare,
        "solve_env_steps_per_s": env / solve,
        "mpc_samples": a.mpc_samples,
        "mpc_iterations": a.iterations,
        "mpc_step_s": mpc,
        "bare_mpc_s": bare_mpc,
        "mpc_over_bare": mpc / bare_mpc,
    }


JUDO_SCRIPT = r"""
import statistics, sys, time
from pathlib import Path
import judo
# judo fetches mesh assets from the network the first time a task is built; the cart-pole
# needs none, so an empty folder lets it start offline.
(Path(judo.__file__).parent / "models" / "meshes").mkdir(exist_ok=True)
from judo.controller.controller import Controller, ControllerConfig
from judo.optimizers.ps import PredictiveSampling, PredictiveSamplingConfig
from judo.tasks.cartpole import Cartpole
rounds = int(sys.argv[1])
task = Cartpole()
opt = PredictiveSampling(PredictiveSamplingConfig(num_rollouts=32), task.nu)
ctrl = Controller(ControllerConfig(horizon=1.0, max_opt_iters=1), task, opt)
assert ctrl.num_timesteps == 25 and abs(task.dt - 0.04) < 1e-12
for _ in range(20):
    ctrl.update_action()
times = []
for _ in range(rounds):
    t0 = time.perf_counter()
    ctrl.update_action()
    times.append(time.perf_counter() - t0)
print(statistics.median(times))
"""


def judo_side_by_side(a) -> dict:
    """judo's predictive sampling on its cart-pole beside an mbd control step, same budget."""
    import jax

    import mbd
    from mbd.mpc import MPCConfig, make_controller

    out: dict = {"samples": 32, "horizon": 25, "control_dt": 0.04, "iterations": 1}
    problem = judo_like_problem(a.threads)
    # A step with MPCConfig(predict=False) does what judo's does: no replay of the new
    # plan for a predicted reward (judo reports none).
    for method, predict in (("mbd", True), ("mbd", False), ("ps", True), ("ps", False)):
        ctrl = make_controller(
            problem, method, mbd.MBDConfig(num_samples=32),
            MPCConfig(iterations=1, warmup_iterations=2, predict=predict),
        )  # fmt: skip
        step = jax.jit(ctrl.step)
        key = jax.random.key(0)
        cs = jax.block_until_ready(jax.jit(ctrl.init)(key))
        x = problem.init_state
        jax.block_until_ready(step(key, cs, x))
        name = method if predict else f"{method}_nopredict"
        out[f"mbd_{name}_step_s"] = median_time(
            lambda step=step, cs=cs, key=key, x=x: jax.block_until_ready(step(key, cs, x)[0]),
            a.rounds * 20,
        )
    if a.judo_python:
        res = subprocess.run(
            [a.judo_python, "-c", JUDO_SCRIPT, str(a.rounds * 20)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if res.returncode == 0:
            out["judo_ps_step_s"] = float(res.stdout.strip().splitlines()[-1])
        else:
            out["judo_error"] = (res.stderr.strip().splitlines() or ["failed"])[-1]
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--updates", type=int, default=10)
    p.add_argument("--mpc-samples", type=int, default=64)
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--judo-python", default=None, help="a Python with judo-rai installed")
    p.add_argument("--judo-only", action="store_true", help="only the side-by-side with judo")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    a = p.parse_args(argv)
    if a.judo_only:
        a.tasks = []
    rows = []
    print(
        f"{'task':<12} {'thr':>3} {'bare/update':>12} {'solve/update':>13} {'ratio':>6} "
        f"{'mpc step':>9} {'bare':>9} {'ratio':>6}"
    )
    for name in a.tasks:
        r = measure(name, a)
        rows.append(r)
        print(
            f"{name:<12} {r['threads']:>3} {r['bare_update_s'] * 1e3:>10.1f}ms "
            f"{r['solve_update_s'] * 1e3:>11.1f}ms {r['solve_over_bare']:>6.3f} "
            f"{r['mpc_step_s'] * 1e3:>7.1f}ms {r['bare_mpc_s'] * 1e3:>7.1f}ms "
            f"{r['mpc_over_bare']:>6.3f}",
            flush=True,
        )
    judo = judo_side_by_side(a)
    line = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in judo.items() if k.endswith("_step_s"))
    print(f"cart-pole, 32 samples x 25 steps of 0.04 s, one iteration: {line}")
    if "judo_error" in judo:
        print(f"judo: {judo['judo_error']}")
    if a.out:
        Path(a.out).write_text(json.dumps({"rows": rows, "judo": judo}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
