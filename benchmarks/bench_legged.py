"""The quadruped under MBD-MPC against a plant whose friction differs from the planner's
model: planning on the nominal model against planning over randomized models (issue 23).

    python benchmarks/bench_legged.py --out docs/legged/friction.json
    python benchmarks/bench_legged.py --steps 100 --seeds 0 --models 2     # a quick look
    python benchmarks/bench_legged.py --stand --seeds 0 1 2 3 4 --out docs/legged/stand.json

``--stand``: the humanoid getting up from lying on its back (task ``humanoidstand``),
``--steps`` control steps of 0.042 s (120: 5.04 s), MBD with ``--num-samples`` samples x 2
updates, horizon 20; the figures are the time the torso first reached 1.1 m and whether
it is there at the end.

Synchronous loop (the plant waits for the planner): per seed and planner, the
quadruped is commanded 0.5 m/s forward for ``--steps`` control steps of 0.02 s, the
plant's sliding friction is ``--friction`` times the model's, and the figures are the
closed loop's (mean forward velocity, velocity error, fall, the control rate).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np


def run(seed: int, planner: str, steps: int, samples: int, friction: float, k: int) -> dict:
    import mujoco

    import mbd
    from mbd.mpc import MPCConfig, make_controller, run_timed
    from mbd.risk import randomize_models, randomized_problem
    from mbd.tasks import legged

    def make(model=None):
        return legged.make_quadruped(horizon=25, seed=seed, engine="mujoco", model=model)

    nominal = mujoco.MjModel.from_xml_string(legged.quadruped_xml())
    if planner == "nominal":
        problem = make()
    else:
        risk = planner.split("-")[1]
        models = randomize_models(nominal, k, seed=seed)
        problem = randomized_problem(make, models, risk=risk, alpha=0.5)
    problem = dataclasses.replace(problem, knots=6, spline="cubic")
    slippery = randomize_models(nominal, 1)[0]
    slippery.geom_friction[:, 0] *= friction
    plant = make(slippery)
    ctrl = make_controller(
        problem, "mbd", mbd.MBDConfig(num_samples=samples, num_steps=50, temperature=0.1),
        MPCConfig(iterations=2, noise_level=0.5),
    )  # fmt: skip
    timed = run_timed(ctrl, jax.random.key(seed), steps, plant=plant.call_step)
    m = legged.quadruped_metrics(plant, timed.result.states)
    return {
        "seed": seed, "planner": planner, "models": 1 if planner == "nominal" else k,
        "friction": friction, "samples": samples, "steps": steps, **m,
        "return": float(np.mean(timed.result.rewards)),
        "step_ms_median": float(1e3 * np.median(timed.step_seconds)),
    }  # fmt: skip


def stand(seed: int, steps: int, samples: int) -> dict:
    """The humanoid getting up, in closed loop (synchronous)."""
    import mbd
    from mbd.mpc import MPCConfig, make_controller, run_timed
    from mbd.tasks import get_task

    task = get_task("humanoidstand")
    problem = task.make(horizon=20, seed=seed, engine="mujoco")
    ctrl = make_controller(
        problem, "mbd", mbd.MBDConfig(num_samples=samples, num_steps=50, temperature=0.1),
        MPCConfig(iterations=2),
    )  # fmt: skip
    timed = run_timed(ctrl, jax.random.key(seed), steps)
    m = task.loop_metrics(problem, timed.result.states)
    return {
        "seed": seed, "task": "humanoidstand", "samples": samples, "steps": steps,
        "sim_seconds": steps * problem.dt, **m,
        "return": float(np.mean(timed.result.rewards)),
        "step_ms_median": float(1e3 * np.median(timed.step_seconds)),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--num-samples", type=int, default=64)
    ap.add_argument("--friction", type=float, default=0.7)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--planners", nargs="+", default=["nominal", "randomized-cvar"])
    ap.add_argument("--stand", action="store_true", help="the humanoid getting up instead")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    rows = []
    if a.stand:
        steps = 120 if a.steps == 500 else a.steps  # 5.04 s unless told
        for seed in a.seeds:
            r = stand(seed, steps, a.num_samples)
            rows.append(r)
            t = r["time_to_stand"]
            when = "never stood" if t is None else f"stood at {t:.2f} s"
            print(
                f"seed {seed} humanoidstand: {when}, torso {r['torso_height_end']:.2f} m "
                f"at {r['sim_seconds']:.2f} s, "
                f"{r['step_ms_median']:.0f} ms per step",
                flush=True,
            )
        a.planners = []
    for seed in a.seeds:
        for planner in a.planners:
            r = run(seed, planner, a.steps, a.num_samples, a.friction, a.models)
            rows.append(r)
            print(
                f"seed {seed} {planner:>16}: forward {r['mean_forward_velocity']:.3f} m/s, "
                f"error {r['velocity_error']:.3f}, fell {r['fell']}, lowest "
                f"{r['torso_height_min']:.3f} m, {r['step_ms_median']:.0f} ms per step",
                flush=True,
            )
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
