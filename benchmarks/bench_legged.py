"""Legged robots under MBD-MPC (issue 23): what the quadruped and the humanoid did.

One scenario per command, each over ``--seeds``; a line per run on stdout, the rows
in ``--out`` (JSON):

    python benchmarks/bench_legged.py walk --seeds 0 1 2 3 4 --out docs/legged/walk.json
    python benchmarks/bench_legged.py turn --seeds 0 1 2 3 4 --out docs/legged/turn.json
    python benchmarks/bench_legged.py push --seeds 0 1 2 3 4 --out docs/legged/push.json
    python benchmarks/bench_legged.py friction --seeds 0 1 2 3 4 --out docs/legged/friction.json
    python benchmarks/bench_legged.py methods --seeds 0 1 2 3 4 --out docs/legged/methods.json
    python benchmarks/bench_legged.py realtime --seeds 0 1 2 3 4 --out docs/legged/realtime.json
    python benchmarks/bench_legged.py stand --seeds 0 1 2 3 4 --out docs/legged/stand.json
    python benchmarks/bench_legged.py walk --steps 100 --seeds 0     # a quick look
    python benchmarks/bench_legged.py table docs/legged              # the docs' tables

The quadruped (task ``quadruped``): MBD-MPC, ``--num-samples`` samples x 2 updates per
control step of 0.02 s, horizon 25 (0.5 s), 6 cubic knots per joint, each control
step restarting at noise level 0.3; ``--steps`` control steps (500: 10 s). The loop is
synchronous (the plant waits for the planner; ``realtime`` is the exception) and the
figures are the closed loop's, from the plant's states:

- ``walk``: command 0.5 m/s forward; mean forward velocity, mean velocity error
  |v_xy - command| (the trunk's, every control step, from the start), fall.
- ``turn``: command 0.3 m/s forward and 0.5 rad/s yaw; mean yaw rate and its error.
- ``push``: command 0.5 m/s forward; after 5 s the trunk's velocity is changed by
  ``--push`` m/s sideways (the live view's push: an impulse through MuJoCo's mass
  matrix); velocity error before, in the second after and from then on, fall.
- ``friction``: the plant's sliding friction ``--friction`` x the model's; planning on
  the nominal model against planning over it and ``--models`` - 1 models drawn around
  it (friction 0.7-1.3x, masses 0.9-1.1x, servo strength 0.9-1.1x), each sample scored
  by the CVaR of its returns (the worst half) (:mod:`mbd.risk`).
- ``methods``: ``mbd``, ``dial``, ``mppi``, ``ps`` on ``walk`` at equal budget
  (``--num-samples`` x 2 updates per control step, the same horizon and knots), each
  at its defaults; ``--noise-std S`` gives ``mppi`` and ``ps`` the sampling std S
  (0.16: MBD's first update's at noise level 0.3).
- ``realtime``: the asynchronous loop (:class:`mbd.mpc.RealtimeLoop`): the plant at
  wall-clock pace in its own thread, the planner on a 10 ms model (half the physics
  steps of the plant's 5 ms) sized to ``--rate`` replans per second on this machine,
  without and with ``lookahead`` (planning from the state predicted at the time the
  plan is ready); ``--steps`` x 0.02 s of plant time.

``stand``: the humanoid getting up from lying on its back (task ``humanoidstand``),
``--steps`` control steps of 0.042 s (default 120: 5.04 s), MBD with ``--num-samples``
samples x 2 updates, horizon 20; the time the torso first reached 1.1 m and whether it
is there at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np

NOISE_LEVEL = 0.3
PUSH_AT = 5.0
"""Seconds into the run at which ``push`` pushes."""


def quadruped(
    seed: int,
    steps: int,
    samples: int,
    method: str = "mbd",
    command: dict | None = None,
    friction: float = 1.0,
    models: int = 1,
    push: float = 0.0,
    noise_std: float | None = None,
    planner_frames: int = 4,
) -> dict:
    """One synchronous closed loop of the quadruped; what it did (module doc).
    ``noise_std``: the sampling std of ``mppi`` or ``ps`` (normalized units) instead of
    the method's default. ``planner_frames``: the planning model's physics steps per
    control step (4: the plant's own 5 ms model; 2: a 10 ms model at half the cost)."""
    import mujoco

    import mbd
    from mbd.mpc import MPCConfig, make_controller, run_timed
    from mbd.risk import randomize_models, randomized_problem
    from mbd.tasks import legged

    def make(model=None, n_frames=4):
        return legged.make_quadruped(
            horizon=25, seed=seed, engine="mujoco", model=model, command=command,
            n_frames=n_frames,
        )  # fmt: skip

    nominal = mujoco.MjModel.from_xml_string(legged.quadruped_xml())
    if models == 1:
        problem = make(n_frames=planner_frames)
    else:
        drawn = randomize_models(nominal, models, seed=seed)
        problem = randomized_problem(make, drawn, risk="cvar", alpha=0.5)
    problem = dataclasses.replace(problem, knots=6, spline="cubic")
    plant = make()
    if friction != 1.0:
        slippery = mujoco.MjModel.from_xml_string(legged.quadruped_xml())
        slippery.geom_friction[:, 0] *= friction
        plant = make(slippery)
    config = mbd.MBDConfig(num_samples=samples, num_steps=50, temperature=0.1)
    if noise_std is not None:
        from mbd.baselines import method_config

        config = method_config(method, config, num_iterations=2, noise_std=noise_std)
    mpc = MPCConfig(iterations=2, noise_level=NOISE_LEVEL)
    ctrl = make_controller(problem, method, config, mpc)
    push_step = round(PUSH_AT / plant.dt) - 1
    disturb = None
    if push:
        from mbd.view.scene import scene_for

        scene = scene_for(plant)

        def disturb(t, x):
            return scene.push(x, np.array([0.0, push, 0.0])) if t == push_step else None

    timed = run_timed(ctrl, jax.random.key(seed), steps, plant=plant.call_step, disturb=disturb)
    row = {
        "seed": seed, "method": method if noise_std is None else f"{method} (std {noise_std:g})",
        "samples": samples, "iterations": 2, "steps": steps,
        "command": {k: float(v) for k, v in plant.params.items()},
        "friction": friction, "models": models, "push": push,
        "planner_n_frames": planner_frames,
        **legged.quadruped_metrics(plant, timed.result.states),
        "return": float(np.mean(timed.result.rewards)),
        "step_ms_median": float(1e3 * np.median(timed.step_seconds)),
        "control_period_ms": 1e3 * plant.dt,
    }  # fmt: skip
    if push:
        err = _velocity_errors(plant, timed.result.states)
        a, b = push_step + 1, push_step + 1 + round(1.0 / plant.dt)
        row["push_at"] = PUSH_AT
        row["error_before_push"] = float(err[a - round(2.0 / plant.dt) : a].mean())
        row["error_second_after_push"] = float(err[a:b].mean())
        row["error_after_that"] = float(err[b:].mean())
    return row


def _velocity_errors(problem, states) -> np.ndarray:
    """|v_xy - command| per control step (T,), the trunk's frame."""
    from mbd.tasks import legged

    view = problem.step.physics.view(states)
    v, _, _ = legged.trunk_motion(view.qpos, view.qvel)
    v = np.asarray(v, np.float64)
    p = {k: float(x) for k, x in problem.params.items()}
    return np.hypot(v[:, 0] - p["vx"], v[:, 1] - p["vy"])


def realtime(seed: int, samples: int, rate: float, duration: float, lookahead: bool) -> dict:
    """The asynchronous loop: the plant (the model at 5 ms) at wall-clock pace in its own
    thread; the planner on the coarser 10 ms model (``n_frames=2``, half the cost), sized
    to ``rate`` on this machine (:func:`mbd.mpc.fit_to_rate`, at most ``samples``)."""
    import mbd
    from mbd.mpc import MPCConfig, RealtimeLoop, SimPlant, fit_to_rate, make_controller
    from mbd.tasks import legged

    model = legged.make_quadruped(horizon=25, seed=seed, engine="mujoco", n_frames=2)
    model = dataclasses.replace(model, knots=6, spline="cubic")
    plant = legged.make_quadruped(horizon=25, seed=seed, engine="mujoco")

    def make(n: int, k: int):
        return make_controller(
            model, "mbd", mbd.MBDConfig(num_samples=n, num_steps=50, temperature=0.1),
            MPCConfig(iterations=k, noise_level=NOISE_LEVEL),
        )  # fmt: skip

    fit = fit_to_rate(make, rate, iterations=2, max_samples=samples, min_samples=8)
    loop = RealtimeLoop(fit.ladder, SimPlant(plant), rate=rate, lookahead=lookahead)
    res = loop.run(jax.random.key(seed), duration)
    s = res.summary()
    chosen = fit.record()
    return {
        "seed": seed, "rate": rate, "duration": duration, "lookahead": lookahead,
        "planner_n_frames": 2, "max_samples": samples,
        "chosen": {k: chosen[k] for k in ("num_samples", "iterations", "fits")},
        **{k: s[k] for k in (
            "realtime_factor", "replan_hz", "latency_ms", "missed_deadlines", "replans",
            "closed_loop_return",
        )},
        **legged.quadruped_metrics(plant, res.states),
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
        "control_period_ms": 1e3 * problem.dt,
    }  # fmt: skip


def _line(scenario: str, r: dict) -> str:
    if scenario == "stand":
        t = r["time_to_stand"]
        when = "never stood" if t is None else f"stood at {t:.2f} s"
        return (
            f"seed {r['seed']} humanoidstand: {when}, torso {r['torso_height_end']:.2f} m at "
            f"{r['sim_seconds']:.2f} s, {r['step_ms_median']:.0f} ms per step"
        )
    head = f"seed {r['seed']} {scenario}"
    if scenario == "realtime":
        c = r["chosen"]
        head += " lookahead" if r["lookahead"] else ""
        return (
            f"{head}: real-time factor {r['realtime_factor']:.3f}, {c['num_samples']} samples "
            f"x {c['iterations']}, replans {r['replan_hz']:.1f} Hz, missed "
            f"{r['missed_deadlines']}, forward "
            f"{r['mean_forward_velocity']:.3f} m/s, error {r['velocity_error']:.3f}, "
            f"fell {r['fell']}"
        )
    if scenario == "methods":
        head += f" {r['method']}"
    elif scenario == "friction":
        head += f" {r['models']} model(s)"
    body = (
        f"forward {r['mean_forward_velocity']:.3f} m/s, error {r['velocity_error']:.3f}, "
        f"yaw rate {r['mean_yaw_rate']:.3f} (error {r['yaw_rate_error']:.3f}), "
        f"fell {r['fell']}, lowest {r['torso_height_min']:.3f} m, "
        f"{r['step_ms_median']:.0f} ms per step"
    )
    if scenario == "push":
        body += (
            f"; error before {r['error_before_push']:.3f}, the second after "
            f"{r['error_second_after_push']:.3f}, then {r['error_after_that']:.3f}"
        )
    return f"{head}: {body}"


def _fmt(v, spec: str = ".3f") -> str:
    return "-" if v is None else f"{v:{spec}}"


def tables(folder: Path) -> str:
    """Markdown tables of the JSON files a run of each scenario wrote into ``folder``."""
    out = []

    def load(name):
        f = folder / f"{name}.json"
        return json.loads(f.read_text()) if f.exists() else []

    def ms(r):
        return f"{r['step_ms_median']:.0f} ms ({1e3 / r['step_ms_median']:.1f} Hz)"

    named = [(f.stem, "walk: 0.5 m/s forward") for f in sorted(folder.glob("walk*.json"))]
    for name, title in [*named, ("turn", "turn: 0.3 m/s, 0.5 rad/s")]:
        rows = load(name)
        if rows:
            title = f"{title}, {rows[0]['samples']} samples"
            if rows[0].get("planner_n_frames", 4) != 4:
                title += f", planning on {20 // rows[0]['planner_n_frames']} ms physics steps"
            out += [f"{title}", "", "| seed | forward (m/s) | velocity error (m/s) | yaw rate "
                    "(rad/s) | yaw-rate error | fell | lowest trunk (m) | per control step |",
                    "|---|---|---|---|---|---|---|---|"]  # fmt: skip
            out += [
                f"| {r['seed']} | {_fmt(r['mean_forward_velocity'])} | "
                f"{_fmt(r['velocity_error'])} | {_fmt(r['mean_yaw_rate'])} | "
                f"{_fmt(r['yaw_rate_error'])} | {'yes' if r['fell'] else 'no'} | "
                f"{_fmt(r['torso_height_min'])} | {ms(r)} |"
                for r in rows
            ]
            out.append("")
    for name in sorted(f.stem for f in folder.glob("push*.json")):
        rows = load(name)
        out += [f"{name}: {rows[0]['push']} m/s sideways at {rows[0]['push_at']} s", "",
                "| seed | fell | velocity error: 2 s before | the second after | after that "
                "| over the run |", "|---|---|---|---|---|---|"]  # fmt: skip
        out += [
            f"| {r['seed']} | {'yes' if r['fell'] else 'no'} | {_fmt(r['error_before_push'])} | "
            f"{_fmt(r['error_second_after_push'])} | {_fmt(r['error_after_that'])} | "
            f"{_fmt(r['velocity_error'])} |"
            for r in rows
        ]
        out.append("")
    for name, key in (("friction", "models"), ("methods", "method"), ("methods-matched", "method")):
        rows = load(name)
        if not rows:
            continue
        out += [f"{name}", "", f"| {key} | seeds | fell | velocity error, mean (min-max) | "
                "forward (m/s), mean | per control step, median |",
                "|---|---|---|---|---|---|"]  # fmt: skip
        for k in dict.fromkeys(r[key] for r in rows):
            g = [r for r in rows if r[key] == k]
            e = [r["velocity_error"] for r in g]
            out.append(
                f"| {k} | {len(g)} | {sum(r['fell'] for r in g)} | {np.mean(e):.3f} "
                f"({min(e):.3f}-{max(e):.3f}) | "
                f"{np.mean([r['mean_forward_velocity'] for r in g]):.3f} | "
                f"{np.median([r['step_ms_median'] for r in g]):.0f} ms |"
            )
        out.append("")
    rows = load("realtime")
    if rows:
        out += ["realtime", "", "| seed | lookahead | samples x updates | real-time factor | "
                "replans/s | latency median / p95 (ms) | missed | forward (m/s) | "
                "velocity error | fell |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            c, lat = r["chosen"], r["latency_ms"]
            out.append(
                f"| {r['seed']} | {'yes' if r['lookahead'] else 'no'} | {c['num_samples']} x "
                f"{c['iterations']} | {r['realtime_factor']:.4f} | {_fmt(r['replan_hz'], '.1f')} | "
                f"{_fmt(lat['median'], '.1f')} / {_fmt(lat['p95'], '.1f')} | "
                f"{r['missed_deadlines']} of {r['replans']} | {_fmt(r['mean_forward_velocity'])} | "
                f"{_fmt(r['velocity_error'])} | {'yes' if r['fell'] else 'no'} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["table"]:
        print(tables(Path(argv[1] if len(argv) > 1 else "docs/legged")))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "scenario", choices=["walk", "turn", "push", "friction", "methods", "realtime", "stand"]
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=None, help="500 (10 s); stand: 120 (5.04 s)")
    ap.add_argument("--num-samples", type=int, default=64)
    ap.add_argument("--friction", type=float, default=0.7)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--push", type=float, default=1.0, help="m/s, sideways")
    ap.add_argument("--methods", nargs="+", default=["mbd", "dial", "mppi", "ps"])
    ap.add_argument(
        "--noise-std", type=float, default=None,
        help="methods: mppi's and ps's sampling std (normalized) instead of their defaults",
    )  # fmt: skip
    ap.add_argument(
        "--planner-frames", type=int, default=4, choices=[1, 2, 4],
        help="walk: the planning model's physics steps per 20 ms (4: the plant's 5 ms model)",
    )  # fmt: skip
    ap.add_argument("--rate", type=float, default=25.0, help="realtime: replans per second")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    steps = a.steps or (120 if a.scenario == "stand" else 500)
    rows = []

    def runs():
        for seed in a.seeds:
            if a.scenario == "stand":
                yield stand(seed, steps, a.num_samples)
            elif a.scenario == "walk":
                yield quadruped(seed, steps, a.num_samples, planner_frames=a.planner_frames)
            elif a.scenario == "turn":
                yield quadruped(seed, steps, a.num_samples, command={"vx": 0.3, "yaw_rate": 0.5})
            elif a.scenario == "push":
                yield quadruped(seed, steps, a.num_samples, push=a.push)
            elif a.scenario == "friction":
                for k in (1, a.models):
                    yield quadruped(seed, steps, a.num_samples, friction=a.friction, models=k)
            elif a.scenario == "methods":
                for method in a.methods:
                    std = a.noise_std if method in ("mppi", "ps") else None
                    yield quadruped(seed, steps, a.num_samples, method=method, noise_std=std)
            else:
                for lookahead in (False, True):
                    yield realtime(seed, a.num_samples, a.rate, steps * 0.02, lookahead)

    for r in runs():
        rows.append(r)
        print(_line(a.scenario, r), flush=True)
        if a.out is not None:  # after every run: a long benchmark keeps what it measured
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
