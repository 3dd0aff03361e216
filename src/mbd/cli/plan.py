"""``mbd plan TASK [options]``: plan one task with MBD and save the result.

Writes ``DIR/summary.json``, ``DIR/trajectory.npz`` (``controls`` (H, nu), ``states``),
``DIR/reward.png``, for tasks with a picture (car2d) ``DIR/plan.png``, and for simulator
tasks (the robots) ``DIR/render.html``, a self-contained 3-D replay.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro

from mbd.cli.common import (
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
from mbd.solver import (
    ConfigError,
    MBDConfig,
    deferred_validation,
    streamed_rows,
    validate_config,
)
from mbd.tasks import get_task, list_tasks

SUMMARY = "plan a task with MBD; writes summary.json, trajectory.npz and plots to --out"


@dataclasses.dataclass(frozen=True)
class PlanOptions:
    """Options of ``mbd plan``. Solver defaults shown are the task's recommendation."""

    out: Path | None = None
    """output folder; None writes to runs/TASK[-demo][-ENGINE][-BACKEND]-sSEED, or that
    name with -2, -3, ... where it exists (earlier runs are kept)"""
    demo: bool = False
    """use the task's demonstration (demonstration-augmented weighting, Eq. 13)"""
    seed: int = 0
    """random seed of the solve (and of the task's demo planner)"""
    horizon: int = 50
    """planning horizon H (control steps)"""
    quiet: bool = False
    """no progress display"""
    constraint: bool = True
    """car2d: keep the collision constraint (p_g, Eq. 10d); --no-constraint runs the
    authors' setting, where a collision only freezes the car"""
    knots: int | None = None
    """search K spline knots per actuator instead of H controls (1 <= K <= H)"""
    spline: Literal["zero", "linear", "cubic"] = "linear"
    """interpolation between knots"""
    engine: str | None = None
    """simulator of a robot task: auto (native MuJoCo on a CPU, MuJoCo Warp on a CUDA
    GPU), mujoco, mjx, warp, or brax (the paper's definitions); None: auto, or brax when
    --backend is given"""
    backend: str | None = None
    """Brax pipeline of --engine brax (positional, generalized, mjx; the paper's:
    positional); `mbd tasks` lists each task's"""
    solver: Annotated[MBDConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(
        default_factory=MBDConfig
    )
    """solver hyper-parameters"""
    parallel: Annotated[ParallelConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(
        default_factory=ParallelConfig
    )
    """where the samples are evaluated"""


def _usage() -> str:
    lines = [
        "usage: mbd plan TASK [options]   (mbd plan TASK --help lists the options)",
        "",
        "tasks:",
    ]
    lines += [f"  {t.name:<18} {t.summary}" for t in list_tasks()]
    return "\n".join(lines)


def _takes(task, option: str) -> bool:
    import inspect

    return option in inspect.signature(task.make).parameters


def parse(argv: list[str]) -> tuple[str, PlanOptions]:
    """Parses ``TASK [options]``; raises :class:`CLIError` for a bad value."""
    name, task, rest = leading_name(
        argv, "TASK", "missing; give a task name first (see `mbd tasks`)", _usage, get_task
    )
    default = PlanOptions(horizon=task.horizon, solver=task.config)
    # Options this task has no use for are not offered (nor shown in --help).
    absent = {}
    if not task.backends:
        absent["backend"] = f"task {name!r} has a single built-in simulator"
    if not task.engines:
        absent["engine"] = f"task {name!r} has a single built-in simulator"
    if not _takes(task, "constrained"):
        absent["constraint"] = f"task {name!r} has no constraint to switch off"
    if not task.has_demo:
        absent["demo"] = f"task {name!r} has no demonstration"
    refuse_absent(rest, absent)
    with deferred_validation():
        opts = tyro_parse(
            PlanOptions,
            default,
            rest,
            f"mbd plan {name}",
            f"Plan {name} with MBD: {task.summary}.",
            drop=tuple(absent),
        )
    try:
        validate_config(opts.solver)
    except ConfigError as e:
        raise CLIError(flag(e.field), e.message) from None
    check_task_options(task, opts.seed, opts.horizon, opts.knots, opts.backend, opts.engine)
    check_parallel(opts.parallel)
    try:
        streamed_rows(opts.solver, opts.parallel)  # chunks that MBD cannot stream
    except ConfigError as e:
        raise CLIError(flag(e.field), e.message) from None
    if opts.out is None:
        opts = dataclasses.replace(opts, out=fresh_out_dir(Path("runs") / default_name(name, opts)))
    check_out_dir(opts.out)
    return name, opts


def default_name(name: str, opts: PlanOptions) -> str:
    """The default output folder's name: the task, then what sets this run apart from
    the task's default run (demo, engine, backend, no constraint), then the seed."""
    parts = [name]
    if opts.demo:
        parts.append("demo")
    if opts.engine not in (None, "auto"):
        parts.append(opts.engine)
    if opts.backend is not None:
        parts.append(opts.backend)
    if not opts.constraint:
        parts.append("noconstraint")
    return "-".join(parts) + f"-s{opts.seed}"


def _save_states(arrays: dict, states) -> None:
    import jax

    leaves = jax.tree_util.tree_leaves_with_path(states)
    if len(leaves) == 1 and not leaves[0][0]:
        arrays["states"] = np.asarray(leaves[0][1])
        return
    for path, leaf in leaves:
        arrays["states" + jax.tree_util.keystr(path)] = np.asarray(leaf)


@contextlib.contextmanager
def _hide_on_error(progress, bar) -> Iterator[None]:
    """A run that fails leaves no progress line behind its one-line error."""
    try:
        yield
    except BaseException:
        progress.update(bar, visible=False)
        progress.live.transient = True  # rich then erases the display instead of ending it
        raise


def too_large_option(err, num_samples: int, argv: list[str]) -> str:
    """The option to name when a solve does not fit in memory (the need grows with
    samples x horizon): the one of ``--num-samples`` and ``--horizon`` the user gave;
    with both or neither, ``--horizon`` when one sample alone would not fit, else
    ``--num-samples``.

    Args:
        err: the :class:`mbd.compile.SolveTooLarge` raised.
        num_samples: the samples per update of the solve.
        argv: the command's arguments.
    """
    given = [o for o in ("--num-samples", "--horizon") if any(a.split("=")[0] == o for a in argv)]
    if len(given) == 1:
        return given[0]
    return "--horizon" if err.need / max(num_samples, 1) > err.have else "--num-samples"


def run(argv: list[str]) -> int:
    """Entry point of ``mbd plan``; returns the exit code."""
    prog = "mbd plan"
    try:
        name, opts = parse(argv)
    except CLIError as e:
        return fail(prog, e)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from mbd.plotting import fmt, plot_reward
    from mbd.runner import plan_task

    task = get_task(name)
    console = progress_console(opts.quiet)
    cfg = opts.solver
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("mean sample reward {task.fields[reward]}"),
        console=console,
        transient=False,
        disable=console.quiet,
    )
    bar = progress.add_task(f"compiling {name}", total=cfg.num_updates, reward="-")

    def on_step(k, info):
        progress.update(bar, completed=int(k) + 1, reward=fmt(info.reward_mean))

    def on_compiled(seconds):
        progress.update(bar, description=f"diffusing {name} (compiled in {seconds:.1f}s)")

    from mbd.compile import SolveTooLarge
    from mbd.sim import MissingExtraError

    try:
        with progress, _hide_on_error(progress, bar):
            outcome = plan_task(
                task,
                cfg,
                seed=opts.seed,
                horizon=opts.horizon,
                demo=opts.demo,
                progress=on_step,
                on_compiled=on_compiled,
                task_options={
                    "backend": opts.backend,
                    "engine": opts.engine,
                    "constrained": None if opts.constraint else False,
                },
                knots=opts.knots,
                spline=opts.spline,
                parallel=opts.parallel,
            )
    except MissingExtraError as e:
        return fail(prog, CLIError("TASK", f"{name}: {e}"))
    except SolveTooLarge as e:
        return fail(prog, CLIError(too_large_option(e, cfg.num_samples, argv), str(e)))
    from mbd.cli.common import versions

    if not is_main_process():  # jax.distributed: process 0 writes the results
        return 0
    summary = dict(outcome.summary)
    summary["versions"] = versions()
    res = outcome.result
    with atomic_out_dir(opts.out) as tmp:
        write_json(tmp / "summary.json", summary)
        arrays = {
            "controls": np.asarray(res.solution),
            "z": np.asarray(res.z),
            "rewards": np.asarray(res.rewards),
        }
        _save_states(arrays, res.states)
        np.savez(tmp / "trajectory.npz", **arrays)
        plot_reward(res.history, tmp / "reward.png", title=f"{name}: MBD sample reward")
        if task.plot is not None:
            task.plot(outcome.problem, res, tmp / "plan.png")
        if task.render is not None:
            task.render(outcome.problem, res, tmp / "render.html")
    s = summary
    if s["invalid_steps"] or not s["reward_finite"]:
        print(
            f"mbd plan: warning: no sample had a finite reward in {s['invalid_steps']} of "
            f"{s['num_updates']} updates; the plan's reward is {s['final_reward']} "
            "(see invalid_steps in summary.json)",
            file=sys.stderr,
        )
    extra = "".join(
        f", {k} {fmt(v)}" if isinstance(v, float) else f", {k} {v}"
        for k, v in s.get("metrics", {}).items()
    )
    if opts.quiet:  # the plan's reward alone, for scripts
        say_result(fmt(s["final_reward"], 6))
    else:
        say_result(
            f"{name}: final reward {fmt(s['final_reward'], 4)} (the plan replayed){extra}; "
            f"compile {s['compile_seconds']:.1f}s, "
            f"solve {s['solve_seconds']:.1f}s, {s['env_steps']:,} env steps -> {opts.out}"
        )
    return 0
