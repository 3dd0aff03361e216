"""Can anything hold dm_control's acrobot upright at its torque limit? (issue 22, point 4)

    python benchmarks/bench_acrobot_balance.py

``dmc-acrobot`` asks a planner to swing the acrobot up and hold it. Before blaming the
planner, this checks the hold alone with the controllers that have every advantage a
sampling planner lacks: LQR gains of the model linearized at upright (finite differences
of MuJoCo's own step, control held for one control period), for 15 weightings (angle
weight q in 1, 10, 100 against velocity weight 1; control weight r from 0.01 to 1000),
with the exact state, no latency, the plant model itself. Each run starts at rest, both
angles perturbed uniformly by +-``jitter`` rad (seeds 0 .. ``--seeds`` - 1), applies
``clip(-K x, -1, 1)`` (the actuator's range; gear 2: +-2 N m at the elbow) every control
period for ``--seconds``, and counts as held if it stayed upright (every link within
0.3 rad, the benchmark's criterion). Printed per control period and jitter: the runs
held by the best of the weightings (and which), and by the worst.

``--mpc N K`` then asks MBD the same, with the same starts and criterion: MBD-MPC of N
samples x K updates replanning at every 0.05 s control step on the plant's own model
(RK4; the task's planner uses Euler), horizon ``--horizon``, on
:class:`mbd.mpc.FakeClock` with no latency (each plan is applied the moment its state was
read), the task's noise level (``--noise-level`` for another):

    python benchmarks/bench_acrobot_balance.py --periods 5 --jitters 0.02 --seeds 5 \
        --mpc 256 2      # about 3 min
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def linearize(m, d, frames: int, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """(A (4, 4), B (4, 1)): x_{t+1} = A x_t + B u_t about upright at rest, one control
    period of ``frames`` physics steps holding u; central differences."""
    A, B = np.zeros((4, 4)), np.zeros((4, 1))
    for i in range(4):
        dx = np.zeros(4)
        dx[i] = eps
        A[:, i] = (step(m, d, dx, 0.0, frames) - step(m, d, -dx, 0.0, frames)) / (2 * eps)
    B[:, 0] = (step(m, d, np.zeros(4), eps, frames) - step(m, d, np.zeros(4), -eps, frames)) / (
        2 * eps
    )
    return A, B


def step(m, d, x: np.ndarray, u: float, frames: int) -> np.ndarray:
    """The state (shoulder, elbow, their velocities) after ``frames`` physics steps."""
    import mujoco

    mujoco.mj_resetData(m, d)
    d.qpos[:], d.qvel[:], d.ctrl[:] = x[:2], x[2:], u
    for _ in range(frames):
        mujoco.mj_step(m, d)
    return np.r_[d.qpos, d.qvel]


def main(argv: list[str] | None = None) -> None:
    import mujoco
    import scipy.linalg

    from mbd.tasks.dmc import UPRIGHT_COS, model_file

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--periods", nargs="+", type=int, default=[1, 5], help="physics steps")
    p.add_argument("--jitters", nargs="+", type=float, default=[0.02, 0.05, 0.1])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--mpc", nargs=2, type=int, default=None, metavar=("N", "K"))
    p.add_argument("--horizon", type=int, default=30, help="--mpc: control steps")
    p.add_argument("--noise-level", type=float, default=None, help="--mpc: (task's: 0.5)")
    a = p.parse_args(argv)
    if a.seeds < 1 or not a.seconds > 0 or min(a.periods) < 1:
        p.error("--seeds and --periods must be >= 1 and --seconds > 0")
    if a.mpc is not None and (min(a.mpc) < 1 or a.horizon < 1):
        p.error(f"--mpc N K and --horizon must be >= 1 (got {a.mpc[0]} {a.mpc[1]}, {a.horizon})")
    if a.noise_level is not None and not 0 < a.noise_level <= 1:
        p.error(f"--noise-level must be in (0, 1] (got {a.noise_level})")
    m = mujoco.MjModel.from_xml_path(str(model_file("acrobot.xml")))
    d = mujoco.MjData(m)
    weights = [(q, r) for q in (1.0, 10.0, 100.0) for r in (0.01, 1.0, 10.0, 100.0, 1000.0)]
    for frames in a.periods:
        A, B = linearize(m, d, frames)
        period = frames * float(m.opt.timestep)
        print(f"control period {period:.2f} s, {len(weights)} LQR weightings, {a.seeds} starts:")
        gains = []
        for q, r in weights:
            Q, R = np.diag([q, q, 1.0, 1.0]), np.array([[r]])
            P = scipy.linalg.solve_discrete_are(A, B, Q, R)
            gains.append(np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)[0])
        for jitter in a.jitters:
            held = [held_runs(m, d, K, jitter, frames, period, a, UPRIGHT_COS) for K in gains]
            best = int(np.argmax(held))
            print(
                f"  start within +-{jitter} rad of upright, at rest: held {held[best]} of "
                f"{a.seeds} at best (q {weights[best][0]:g}, r {weights[best][1]:g}), "
                f"{min(held)} at worst"
            )
    if a.mpc is not None:
        level = "the task's" if a.noise_level is None else f"{a.noise_level:g}"
        print(f"MBD-MPC {a.mpc[0]} x {a.mpc[1]}, horizon {a.horizon}, noise level {level}, "
              "no latency:")  # fmt: skip
        for jitter in a.jitters:
            print(f"  start within +-{jitter} rad of upright, at rest: held {mpc_held(jitter, a)}"
                  f" of {a.seeds}", flush=True)  # fmt: skip


def mpc_held(jitter: float, a) -> int:
    """Runs of ``a.seeds`` starts that MBD-MPC (``a.mpc``) kept upright for ``a.seconds``,
    replanning at every control step with no latency on the plant's own model."""
    import jax

    import mbd
    from mbd.mpc import FakeClock, MPCConfig, RealtimeLoop, SimPlant, make_controller
    from mbd.sim.engines import compile_model, make_mujoco_problem
    from mbd.tasks import dmc, get_task

    level = a.noise_level
    if level is None:
        level = dict(get_task("dmc-acrobot").mpc_defaults)["noise_level"]
    n, k = a.mpc
    ctrl, held = None, 0
    for seed in range(a.seeds):
        q0 = np.random.default_rng(seed).uniform(-jitter, jitter, 2)
        problem = make_mujoco_problem(
            compile_model(dmc.model_file("acrobot.xml")), dmc._acrobot_reward, a.horizon,
            n_frames=dmc.N_FRAMES, init_qpos=q0, name="acrobot-hold",
        )  # fmt: skip
        if ctrl is None:
            ctrl = make_controller(
                problem, "mbd", mbd.MBDConfig(num_samples=n, temperature=0.1),
                MPCConfig(iterations=k, warmup_iterations=30, noise_level=level),
            )  # fmt: skip
        loop = RealtimeLoop(ctrl, SimPlant(problem), rate=1 / problem.dt, clock=FakeClock(0.0))
        res = loop.run(jax.random.key(seed), a.seconds)
        qpos = np.asarray(problem.step.physics.view(res.states).qpos)
        held += bool(dmc.upright("dmc-acrobot", qpos).all())
    return held


def held_runs(m, d, K, jitter, frames, period, a, upright_cos) -> int:
    """Runs of ``a.seeds`` starts that stayed upright under ``u = clip(-K x, -1, 1)``."""
    held = 0
    for seed in range(a.seeds):
        x = np.r_[np.random.default_rng(seed).uniform(-jitter, jitter, 2), 0.0, 0.0]
        up = True
        for _ in range(round(a.seconds / period)):
            x = step(m, d, x, float(np.clip(-K @ x, -1.0, 1.0)), frames)
            if np.cos(x[0]) < upright_cos or np.cos(x[0] + x[1]) < upright_cos:
                up = False
                break
        held += up
    return held


if __name__ == "__main__":
    main(sys.argv[1:])
