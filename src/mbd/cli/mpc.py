"""``mbd mpc TASK [options]``: run a task in closed loop with a receding-horizon planner.

Writes ``DIR/summary.json`` (closed-loop return, per-step solve time median and max,
control rate, compile time and count), ``DIR/trajectory.npz`` (``states``,
``controls``, ``rewards``, ``predicted``), ``DIR/reward.png`` and, for simulator tasks,
``DIR/render.html`` of the closed-loop motion.

With ``--realtime`` the plant runs at wall-clock pace in its own thread for
``--duration`` seconds while the planner replans from the latest state
(:mod:`mbd.mpc.realtime`); ``summary.json`` then has ``realtime_factor``, ``replan_hz``,
``latency_ms``, ``missed_deadlines`` and, with ``--rate``, the budget the planner chose
(:mod:`mbd.mpc.deadline`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from mbd.cli.common import (
    EXIT_INTERRUPTED,
    CLIError,
    atomic_out_dir,
    check_out_dir,
    check_parallel,
    check_task_options,
    fail,
    flag,
    fresh_out_dir,
    is_main_process,
    leading_name,
    progress_console,
    refuse_absent,
    say_result,
    tyro_parse,
    write_json,
)
from mbd.parallel import ParallelConfig
from mbd.tasks import get_task, list_tasks

SUMMARY = "run a task in closed loop with receding-horizon MBD (or a baseline)"

Method = Literal["mbd", "dial", "mppi", "cem", "ps", "cmaes", "random"]


@dataclasses.dataclass(frozen=True)
class MPCOptions:
    """Options of ``mbd mpc``."""

    method: Method = "mbd"
    """planner: mbd (MBD, restarted part-way up its schedule), dial (MBD with DIAL-MPC
    annealing), mppi, cem, ps (predictive sampling), cmaes, random"""
    steps: int = 100
    """control steps of the closed loop"""
    horizon: int = 30
    """planning horizon H (control steps)"""
    num_samples: int = 256
    """samples per update"""
    iterations: int = 2
    """planner updates per control step"""
    warmup_iterations: int = 49
    """updates of the first plan, from zeros"""
    temperature: float = 0.1
    """MBD / MPPI temperature lambda"""
    ess_target: float | None = None
    """mbd, dial: set each update's lambda so the weights' effective sample size is this
    fraction of the samples, in (0, 1] (None: the fixed --temperature)"""
    num_steps: int = 50
    """mbd: diffusion steps N of the schedule the control steps restart on"""
    noise_level: float = 1.0
    """mbd: where on the schedule each control step restarts, in (0, 1]"""
    knots: int | None = None
    """search K spline knots per actuator instead of H controls"""
    spline: Literal["zero", "linear", "cubic"] = "linear"
    """interpolation between knots"""
    mismatch: float = 0.0
    """plant model error: the plant's mass is (1 + mismatch) times the planner's (tasks
    with a mass parameter: pendulum, cartpole)"""
    demo: bool = False
    """use the task's demonstration (MBD methods; it moves with the loop)"""
    seed: int = 0
    """random seed"""
    engine: str | None = None
    """simulator of a robot task: auto, mujoco, mjx, warp or brax (see `mbd plan --help`)"""
    backend: str | None = None
    """Brax pipeline of --engine brax (positional, generalized, mjx)"""
    out: Path | None = None
    """output folder; None writes to runs/mpc-TASK-METHOD[-demo][-rt][-mismatchM][-ENGINE]-sSEED,
    or that name with -2, -3, ... where it exists (earlier runs are kept)"""
    quiet: bool = False
    """no progress display"""
    realtime: bool = False
    """run the plant at wall-clock pace in its own thread while the planner replans from
    the latest measured state (the world never waits for the planner)"""
    duration: float | None = None
    """--realtime: seconds of plant time (None: 10, or with --view until Ctrl-C)"""
    rate: float | None = None
    """--realtime: replans per second; the planner sizes its samples (up to
    --num-samples) and updates (--iterations, or 1) to fit it on this machine"""
    lookahead: bool = False
    """--realtime: plan from where the plant will be when the plan is ready (the state
    read, stepped on the model through the replan's expected latency) instead of from
    where it was read; default on for hopper-hop, whose plant moves too far in a replan's
    time to plan from where it was"""
    parallel: Annotated[ParallelConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(
        default_factory=ParallelConfig
    )
    """where each step's samples are evaluated"""
    view: bool = False
    """--realtime: serve a live view of the loop on 127.0.0.1 (a page that shows the robot,
    its plan and the loop's figures, and steers it: the task's params, push, pause,
    reset); needs mbd[view]"""
    port: int | None = None
    """--view: the page's TCP port (None: a free one)"""


DEFAULT_DURATION = 10.0
"""Seconds of plant time of a --realtime run without --duration (and without --view)."""

KEEP_SECONDS = 600.0
"""A --view run without --duration keeps (and writes) the plant's states of its last
this many seconds."""


def _usage() -> str:
    lines = ["usage: mbd mpc TASK [options]   (mbd mpc TASK --help lists the options)", ""]
    lines += ["tasks:"] + [f"  {t.name:<18} {t.summary}" for t in list_tasks()]
    return "\n".join(lines)


def configs(opts: MPCOptions) -> tuple[Any, Any]:
    """The solver and loop configs of the options, checked by their own validators.

    Returns:
        (``MBDConfig`` with the budget, ``MPCConfig``).

    Raises:
        CLIError: naming the option of the first field out of range (the method's own
            config included, e.g. CMA-ES needs 2 samples or more).
    """
    from mbd.baselines import method_config
    from mbd.mpc import MPCConfig
    from mbd.solver import ConfigError, MBDConfig

    try:
        config = MBDConfig(
            num_samples=opts.num_samples,
            num_steps=opts.num_steps,
            temperature=opts.temperature,
            ess_target=opts.ess_target,
        )
        mpc = MPCConfig(
            iterations=opts.iterations,
            warmup_iterations=opts.warmup_iterations,
            noise_level=opts.noise_level,
        )
        if opts.method not in ("mbd", "dial"):
            method_config(opts.method, config, num_iterations=opts.iterations)
    except ConfigError as e:
        raise CLIError(flag(e.field), e.message) from None
    return config, mpc


def _check(opts: MPCOptions, task, default: MPCOptions) -> None:
    if opts.steps < 1:
        raise CLIError("--steps", f"must be an integer >= 1 (got {opts.steps})")
    if opts.duration is not None and not (math.isfinite(opts.duration) and opts.duration > 0):
        raise CLIError("--duration", f"must be a number of seconds > 0 (got {opts.duration})")
    if opts.rate is not None and not (math.isfinite(opts.rate) and opts.rate > 0):
        raise CLIError("--rate", f"must be a number of replans per second > 0 (got {opts.rate})")
    if not opts.realtime:  # options left at the task's defaults pass
        for name in ("duration", "rate", "lookahead", "view", "port"):
            value = getattr(opts, name)
            if value != getattr(default, name):
                spelled = f"--no-{name}" if value is False else f"--{name}"  # a flag turned off
                raise CLIError(spelled, "applies to --realtime runs only")
    if opts.port is not None:
        if not opts.view:
            raise CLIError("--port", "is the --view page's port: give --view too")
        if not 1 <= opts.port <= 65535:
            raise CLIError("--port", f"must be a TCP port in [1, 65535] (got {opts.port})")
    if not opts.mismatch > -1:
        raise CLIError("--mismatch", f"must be > -1 (got {opts.mismatch})")
    check_task_options(task, opts.seed, opts.horizon, opts.knots, opts.backend, opts.engine)
    check_parallel(opts.parallel)
    if opts.demo and opts.method not in ("mbd", "dial"):
        raise CLIError("--demo", f"only the MBD methods use a demonstration (got {opts.method})")
    if opts.ess_target is not None and opts.method not in ("mbd", "dial"):
        raise CLIError("--ess-target", f"only the MBD methods use it (got {opts.method})")
    configs(opts)


def parse(argv: list[str]) -> tuple[str, MPCOptions]:
    """Parses ``TASK [options]``; raises :class:`CLIError` for a bad value."""
    name, task, rest = leading_name(
        argv, "TASK", "missing; give a task name first (see `mbd tasks`)", _usage, get_task
    )
    default = MPCOptions(
        horizon=min(task.horizon, 30) if task.backends else task.horizon,
        **dict(task.mpc_defaults),
    )
    single = f"task {name!r} has a single built-in simulator"
    absent = {} if task.backends else {"backend": single, "engine": single}
    if not task.has_demo:
        absent["demo"] = f"task {name!r} has no demonstration"
    refuse_absent(rest, absent)
    opts = tyro_parse(
        MPCOptions,
        default,
        rest,
        f"mbd mpc {name}",
        f"Closed-loop MPC on {name}: {task.summary}.",
        drop=tuple(absent),
    )
    given = any(a == "--knots" or a.startswith("--knots=") for a in rest)
    if not given and opts.knots is not None and opts.knots > opts.horizon:
        # the task's default knots on a horizon shorter than them: one knot per step
        opts = dataclasses.replace(opts, knots=opts.horizon)
    _check(opts, task, default)
    if opts.out is None:
        opts = dataclasses.replace(opts, out=fresh_out_dir(Path("runs") / default_name(name, opts)))
    check_out_dir(opts.out)
    return name, opts


def default_name(name: str, opts: MPCOptions) -> str:
    """The default output folder's name: ``mpc``, the task and method, then what sets
    the run apart (demo, real time, a mismatch, engine, backend), then the seed."""
    parts = ["mpc", name, opts.method]
    if opts.demo:
        parts.append("demo")
    if opts.realtime:
        parts.append("rt")
    if opts.mismatch:
        parts.append(f"mismatch{opts.mismatch:g}")
    if opts.engine not in (None, "auto"):
        parts.append(opts.engine)
    if opts.backend is not None:
        parts.append(opts.backend)
    return "-".join(parts) + f"-s{opts.seed}"


def _plant_params(problem, mismatch: float):
    if mismatch == 0.0:
        return None
    params = problem.params
    if not (isinstance(params, dict) and "mass" in params):
        raise CLIError("--mismatch", f"task {problem.name!r} has no mass parameter to perturb")
    return {**params, "mass": params["mass"] * (1.0 + mismatch)}


def engine_name(problem) -> str | None:
    """The simulator a problem steps with: a MuJoCo engine's name, ``brax``, or None for
    a model written in JAX (the classic tasks)."""
    step = problem.step
    if getattr(step, "engine", None) is not None:
        return step.engine
    return "brax" if type(step).__name__ == "BraxStep" else None


def _fall_note(name: str, metrics: dict, quiet: bool) -> None:
    """A fallen robot's return is not progress: says so on stderr."""
    import sys

    if quiet or not metrics.get("fell"):
        return
    better = ""
    if name == "hopper":
        better = " (`mbd mpc hopper-hop` pays its alive and speed terms only while upright)"
    print(
        f"mbd mpc: note: the robot fell (torso down to {metrics['torso_height_min']:.2f} m); "
        f"the return counts what {name}'s reward pays after the fall{better}",
        file=sys.stderr,
    )


def _metrics_text(metrics: dict) -> str:
    """The closed loop's task figures for the result line (a fall first)."""
    from mbd.plotting import fmt

    if not metrics:
        return ""
    parts = []
    if metrics.get("fell"):
        parts.append(f"FELL (torso down to {metrics['torso_height_min']:.2f} m)")
    for k, v in metrics.items():
        if k == "fell" or (k == "torso_height_min" and metrics.get("fell")):
            continue
        parts.append(f"{k} {fmt(v) if isinstance(v, float) else v}")
    return "; " + ", ".join(parts)


def run(argv: list[str]) -> int:
    """Entry point of ``mbd mpc``; returns the exit code."""
    prog = "mbd mpc"
    try:
        name, opts = parse(argv)
    except CLIError as e:
        return fail(prog, e)
    import jax
    import numpy as np

    from mbd.cli.common import versions
    from mbd.cli.plan import _save_states
    from mbd.mpc import make_controller, run_timed
    from mbd.plotting import fmt, plot_closed_loop
    from mbd.sim import MissingExtraError

    task = get_task(name)
    console = progress_console(opts.quiet)
    options = {"backend": opts.backend, "engine": opts.engine}
    options = {k: v for k, v in options.items() if v is not None}
    try:
        problem = task.make(horizon=opts.horizon, demo=opts.demo, seed=opts.seed, **options)
        if opts.knots is not None:
            problem = dataclasses.replace(problem, knots=opts.knots, spline=opts.spline)
        plant_params = _plant_params(problem, opts.mismatch)
        config, mpc = configs(opts)
        controller = make_controller(problem, opts.method, config, mpc, opts.parallel)
    except MissingExtraError as e:
        return fail(prog, CLIError("TASK", f"{name}: {e}"))
    except CLIError as e:
        return fail(prog, e)
    except (ImportError, ValueError) as e:
        return fail(prog, CLIError("TASK", f"{name}: {e}"))

    if opts.realtime:
        return _run_realtime(
            name, task, problem, opts, config, mpc, plant_params, console, options, controller
        )
    with console.status(f"compiling {name} ({opts.method})") as status:

        def on_step(t, r):
            status.update(f"{name} ({opts.method}): step {t + 1}/{opts.steps}, reward {fmt(r)}")

        timed = run_timed(
            controller,
            jax.random.key(opts.seed),
            opts.steps,
            plant_params=plant_params,
            on_step=on_step,
        )
    if not is_main_process():  # jax.distributed: process 0 writes the results
        return 0
    res = jax.tree_util.tree_map(np.asarray, timed.result)
    times = timed.step_seconds
    summary = {
        "task": name,
        "method": opts.method,
        "seed": opts.seed,
        "steps": opts.steps,
        "horizon": opts.horizon,
        "knots": opts.knots,
        "spline": opts.spline if opts.knots else None,
        "demo": opts.demo,
        "mismatch": opts.mismatch,
        "options": dataclasses.asdict(dataclasses.replace(opts, out=None)),
        "closed_loop_return": float(np.mean(res.rewards)),
        "closed_loop_total": float(np.sum(res.rewards)),
        "final_step_reward": float(res.rewards[-1]),
        "solve_seconds_median": float(np.median(times)),
        "solve_seconds_max": float(np.max(times)),
        "control_rate_hz": float(1.0 / np.median(times)),
        "compile_seconds": timed.compile_seconds,
        "step_compiles": timed.num_compiles,
        "env_steps_per_control_step": int(opts.num_samples * opts.iterations * opts.horizon),
        "engine": engine_name(problem),
        "metrics": (
            task.loop_metrics(problem, res.states) if task.loop_metrics is not None else {}
        ),
        "versions": versions(),
    }
    with atomic_out_dir(opts.out) as tmp:
        write_json(tmp / "summary.json", summary)
        arrays = {"controls": res.controls, "rewards": res.rewards, "predicted": res.predicted}
        _save_states(arrays, res.states)
        np.savez(tmp / "trajectory.npz", **arrays)
        title = f"{name}: closed loop, {opts.method}"
        plot_closed_loop(res.rewards, res.predicted, tmp / "reward.png", title=title)
        if task.render is not None:
            from types import SimpleNamespace

            from mbd.sim.render import save_html

            replay = SimpleNamespace(
                states=res.states, rewards=res.rewards, reward=summary["closed_loop_return"]
            )
            save_html(problem, replay, tmp / "render.html", title=f"{title}")
    s = summary
    _fall_note(name, s["metrics"], opts.quiet)
    if opts.quiet:  # the closed-loop return alone, for scripts
        say_result(fmt(s["closed_loop_return"], 6))
        return 0
    say_result(
        f"{name} ({opts.method}): closed-loop return {fmt(s['closed_loop_return'], 4)} per step "
        f"over {opts.steps} steps{_metrics_text(s['metrics'])}; solve "
        f"{1000 * s['solve_seconds_median']:.1f} ms median, "
        f"{1000 * s['solve_seconds_max']:.1f} ms max ({s['control_rate_hz']:.0f} Hz); "
        f"compile {s['compile_seconds']:.1f}s -> {opts.out}"
    )
    return 0


def _run_realtime(
    name, task, problem, opts, config, mpc, plant_params, console, options, controller
) -> int:
    """``mbd mpc TASK --realtime``: the asynchronous loop, optionally sized to --rate."""
    import jax
    import numpy as np

    from mbd.cli.common import versions
    from mbd.cli.plan import _save_states
    from mbd.mpc import PlantError, RealtimeLoop, SimPlant, fit_to_rate, make_controller
    from mbd.plotting import plot_realtime

    prog = "mbd mpc"
    if not is_main_process():
        return fail(prog, CLIError("--realtime", "runs in one process (not under jax.distributed)"))
    if problem.dt is None:
        return fail(prog, CLIError("--realtime", f"task {name!r} has no control period (dt)"))

    def make(n: int, k: int):
        return make_controller(
            problem,
            opts.method,
            dataclasses.replace(config, num_samples=n),
            dataclasses.replace(mpc, iterations=k),
            opts.parallel,
        )

    fit = None
    duration = opts.duration
    if duration is None:
        duration = math.inf if opts.view else DEFAULT_DURATION
    with console.status(f"{name} ({opts.method}): compiling and warming up") as status:
        try:
            if opts.rate is not None:
                status.update(f"{name}: sizing the planner to {opts.rate:g} replans/s")
                fit = fit_to_rate(
                    make, opts.rate, iterations=opts.iterations, max_samples=opts.num_samples,
                    min_samples=min(8, opts.num_samples),
                )  # fmt: skip
                ladder = fit.ladder
            else:
                ladder = [controller]
            plant_model = problem
            if task.plant is not None:  # the task's plant differs from its planning model
                plant_model = task.plant(horizon=opts.horizon, seed=opts.seed, **options)
            plant = SimPlant(plant_model, params=plant_params)

            def on_replan(r, plan):
                of = "" if math.isinf(duration) else f"/{duration:g}"
                status.update(
                    f"{name} ({opts.method}, real time): t {r.state_time:.2f}{of} s, "
                    f"replan {1e3 * (r.ready - r.read):.1f} ms, {r.num_samples} samples"
                )

            loop = RealtimeLoop(
                ladder, plant, rate=opts.rate, on_replan=on_replan, lookahead=opts.lookahead
            )
            # a run of no set length keeps the plant's states of its last 10 minutes
            keep = math.ceil(KEEP_SECONDS / problem.dt) if math.isinf(duration) else None
            view = None
            try:
                if opts.view:
                    view = _start_view(loop, task, problem, name, opts)
                    status.update(f"{name} ({opts.method}): warming up; the view: {view.url}")
                with _ctrl_c_stops(loop):
                    res = loop.run(jax.random.key(opts.seed), duration, keep=keep)
            finally:
                if view is not None:
                    view.close()
        except PlantError as e:
            return fail(prog, CLIError("plant", str(e)))
        except _ViewError as e:
            return fail(prog, CLIError("--view", str(e)))
    s = res.summary()
    summary = {
        "task": name,
        "method": opts.method,
        "engine": engine_name(problem),
        "seed": opts.seed,
        "realtime": True,
        "duration": None if math.isinf(duration) else duration,
        "dt": problem.dt,
        "horizon": opts.horizon,
        "mismatch": opts.mismatch,
        "options": dataclasses.asdict(dataclasses.replace(opts, out=None)),
        **s,
        "deadline_fit": None if fit is None else fit.record(),
        "metrics": (
            task.loop_metrics(plant_model, res.states)
            if task.loop_metrics is not None and res.states is not None and len(res.times)
            else {}
        ),
        "versions": versions(),
    }
    with atomic_out_dir(opts.out) as tmp:
        write_json(tmp / "summary.json", summary)
        arrays = {
            "times": res.times,
            "controls": res.controls,
            "rewards": res.rewards,
            "replan_read": np.array([r.read for r in res.replans]),
            "replan_ready": np.array([r.ready for r in res.replans]),
            "replan_samples": np.array([r.num_samples for r in res.replans]),
        }
        if res.states is not None:
            _save_states(arrays, res.states)
        np.savez(tmp / "trajectory.npz", **arrays)
        title = f"{name}: real time, {opts.method}"
        plot_realtime(res, tmp / "reward.png", title=title)
        if task.render is not None and res.states is not None and len(res.times):
            from types import SimpleNamespace

            from mbd.sim.render import save_html

            kept = len(jax.tree_util.tree_leaves(res.states)[0])  # (the last 10 min)
            replay = SimpleNamespace(
                states=res.states, rewards=res.rewards[-kept:], reward=s["closed_loop_return"]
            )
            save_html(problem, replay, tmp / "render.html", title=title)

    def num(v, spec: str, unit: str = "") -> str:  # n/a: a run too short to measure
        return "n/a" if v is None else f"{v:{spec}}{unit}"

    lat = s["latency_ms"]
    line = (
        f"{name} ({opts.method}, real time): return {num(s['closed_loop_return'], '.4f')} "
        f"per step over {s['sim_seconds']:.2f} s{_metrics_text(summary['metrics'])}; "
        f"real-time factor "
        f"{num(s['realtime_factor'], '.3f')}, {num(s['replan_hz'], '.0f')} replans/s, "
        f"latency {num(lat['median'], '.1f', ' ms')} median {num(lat['p95'], '.1f', ' ms')} "
        f"p95, {s['missed_deadlines']} of {s['replans']} past the {s['deadline_ms']:.0f} ms "
        f"deadline -> {opts.out}"
    )
    # a run of no set length (--view without --duration) ends by Ctrl-C: not a failure
    endless = math.isinf(duration)
    if res.interrupted:
        how = "stopped" if endless else "interrupted"
        line = f"{how} after {s['sim_seconds']:.2f} s of plant time; {line}"
    _fall_note(name, summary["metrics"], opts.quiet)
    say_result(num(s["closed_loop_return"], ".6g") if opts.quiet else line)
    return EXIT_INTERRUPTED if res.interrupted and not endless else 0


def _plant_follows(mismatch: float):
    """How a slider's new params reach the plant: the same, or with --mismatch the mass
    kept (1 + mismatch) times the planner's."""
    if mismatch == 0.0:
        return True

    def plant(params):
        return {**params, "mass": params["mass"] * (1.0 + mismatch)}

    return plant


class _ViewError(Exception):
    """The live view could not start (viser missing, the port taken)."""


def _start_view(loop, task, problem, name: str, opts: MPCOptions):
    """Serves the live view of the loop and says where, in one line on stderr."""
    import sys

    try:
        from mbd.view import LiveView, scene_for
    except ImportError as e:
        raise _ViewError(str(e)) from None
    drawing = task.drawing() if task.drawing is not None else None
    try:
        view = LiveView(
            loop,
            scene=scene_for(problem, drawing),
            params={p[0]: (p[1], p[2]) for p in task.param_ranges},
            port=opts.port,
            title=f"{name} ({opts.method})",
            # the plant follows a slider too; with --mismatch, its mass stays off the model's
            plant_params=_plant_follows(opts.mismatch),
        )
    except ImportError as e:
        raise _ViewError(str(e)) from None
    except OSError as e:
        raise _ViewError(f"cannot serve on port {opts.port} ({e.strerror or e})") from None
    print(f"view: {view.url}", file=sys.stderr, flush=True)
    return view.start()


@contextlib.contextmanager
def _ctrl_c_stops(loop):
    """While the loop runs, Ctrl-C stops plant and planner and keeps what ran (a second
    Ctrl-C exits at once, as before the loop)."""
    import signal

    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # pragma: no cover (not the main thread)
        yield
        return

    def handler(signum, frame):
        del signum, frame
        signal.signal(signal.SIGINT, previous)
        loop.interrupt()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: Ctrl-C keeps its handler
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
