"""``mbd bench [options]``: tasks x methods x seeds under one budget, resumable.

Appends one JSON line per finished run to ``DIR/runs.jsonl`` (flushed and fsynced), so a
killed sweep loses nothing finished and a rerun with the same folder skips what is there.
``DIR/sweep.json`` records the budget; a rerun must keep it (tasks, methods and seeds may
grow). At the end, ``mbd report DIR`` is run (``--no-report`` to skip).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import tyro

from mbd.cli.common import (
    MAX_SEED,
    CLIError,
    check_out_dir,
    check_parallel,
    fail,
    tyro_parse,
    versions,
)
from mbd.parallel import ParallelConfig

SUMMARY = "benchmark tasks x methods x seeds (resumable runs.jsonl); then mbd report"


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """Options of ``mbd bench``. The budget options apply to every method equally."""

    out: Path = Path("runs/bench")
    """sweep folder: runs.jsonl, sweep.json, and the report"""
    tasks: tuple[str, ...] = ("car2d",)
    """tasks (see `mbd tasks`)"""
    methods: tuple[str, ...] = ("mbd", "cmaes", "cem", "mppi", "random")
    """methods: mbd, cmaes, cem, mppi, random, mbd+demo (tasks with a demonstration), rl"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """seeds; run s uses jax.random.key(s)"""
    num_samples: int | None = None
    """samples per iteration, every method (None: each task's recommendation)"""
    iterations: int | None = None
    """iterations, every method; MBD runs this many diffusion updates (None: the task's)"""
    horizon: int | None = None
    """planning horizon, every method (None: each task's)"""
    rl_timesteps: int = 100_000
    """environment steps of each RL training run (method rl)"""
    engine: Literal["brax", "auto", "mujoco", "mjx", "warp"] = "brax"
    """simulator of the robot tasks: brax (the paper's definitions on Brax positional,
    which the paper's tables were measured on) or a MuJoCo engine (auto: native MuJoCo on
    a CPU); method rl always trains on Brax"""
    noise_size: Literal["schedule", "adaptive"] = "schedule"
    """MBD methods: the noise size (MBDConfig.noise_size; schedule: the paper's)"""
    noise_shape: Literal["isotropic", "diagonal", "full"] = "isotropic"
    """MBD methods: the noise shape (MBDConfig.noise_shape; isotropic: the paper's)"""
    ess_target: float | None = None
    """MBD methods: each step's temperature gives the weights this effective sample size,
    a fraction of the samples (MBDConfig.ess_target; None: the task's fixed temperature)"""
    output: Literal["mean", "mode"] = "mean"
    """MBD methods: the plan returned, the last update's weighted mean or its
    highest-weight sample (MBDConfig.output; mean: the paper's)"""
    batch: Literal["auto", "on", "off"] = "auto"
    """run a task's seeds as one vmapped batch where it fits in memory; auto: on a GPU or
    TPU, not on a CPU (no faster there); results agree up to the last bits"""
    report: bool = True
    """write DIR/table.md, table.csv and curves.png at the end"""
    quiet: bool = False
    """no progress display"""
    parallel: Annotated[ParallelConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(
        default_factory=ParallelConfig
    )
    """where every method's samples are evaluated"""


def _budget_dict(opts: BenchOptions) -> dict:
    return {
        "num_samples": opts.num_samples,
        "iterations": opts.iterations,
        "horizon": opts.horizon,
        "rl_timesteps": opts.rl_timesteps,
        # absent for brax, so that sweeps recorded before engines existed still resume
        **({} if opts.engine == "brax" else {"engine": opts.engine}),
        **dict(_mbd_options(opts)),
    }


def _mbd_options(opts: BenchOptions) -> tuple[tuple[str, str | float], ...]:
    """The MBD options that differ from the paper's (absent from old sweeps' budgets)."""
    chosen = (("noise_size", opts.noise_size, "schedule"),
              ("noise_shape", opts.noise_shape, "isotropic"),
              ("ess_target", opts.ess_target, None),
              ("output", opts.output, "mean"))  # fmt: skip
    return tuple((k, v) for k, v, default in chosen if v != default)


def parse(argv: list[str]) -> BenchOptions:
    """Parses and checks the options; raises :class:`CLIError` for a bad value."""
    from mbd.baselines import get_method, method_config
    from mbd.bench import known_methods
    from mbd.solver import ConfigError, streamed_rows
    from mbd.tasks import get_task

    opts = tyro_parse(
        BenchOptions,
        BenchOptions(),
        argv,
        "mbd bench",
        "Benchmark MBD against its baselines on tasks x methods x seeds (paper Tables 2-3).",
    )
    for name, value in (
        ("--num-samples", opts.num_samples),
        ("--iterations", opts.iterations),
        ("--horizon", opts.horizon),
    ):
        if value is not None and value < 1:
            raise CLIError(name, f"must be an integer >= 1 (got {value})")
    if opts.rl_timesteps < 1:
        raise CLIError("--rl-timesteps", f"must be an integer >= 1 (got {opts.rl_timesteps})")
    if not opts.tasks:
        raise CLIError("--tasks", "give at least one task (see `mbd tasks`)")
    check_parallel(opts.parallel)
    if not opts.methods:
        raise CLIError("--methods", f"give at least one of {', '.join(known_methods())}")
    if not opts.seeds or any(not 0 <= s <= MAX_SEED for s in opts.seeds):
        raise CLIError("--seeds", f"give seeds in [0, 2**63 - 1] (got {list(opts.seeds)})")
    for t in opts.tasks:
        try:
            get_task(t)
        except KeyError as e:
            raise CLIError("--tasks", str(e.args[0])) from None
    for m in opts.methods:
        if m not in known_methods():
            raise CLIError(
                "--methods", f"unknown method {m!r}; choose from {', '.join(known_methods())}"
            )
        if m == "rl":
            import importlib.util

            if importlib.util.find_spec("brax") is None:
                raise CLIError("--methods", "rl needs brax: pip install 'mbd[rl]'")
            from mbd.baselines import rl

            for t in opts.tasks:
                try:
                    rl.resolve_env(t)
                except KeyError as e:
                    raise CLIError("--methods", f"rl on {t}: {e.args[0]}") from None
            continue
        spec = get_method("mbd" if m == "mbd+demo" else m)
        if not spec.available():
            raise CLIError(
                "--methods", f"{m} needs {spec.requires}: pip install 'mbd[{spec.extra}]'"
            )
        for t in opts.tasks:
            try:
                cfg = method_config(
                    spec.name, get_task(t).config, opts.num_samples, opts.iterations
                )
                if spec.name == "mbd":  # the MBD options, and the chunks they allow
                    cfg = dataclasses.replace(cfg, **dict(_mbd_options(opts)))
                    streamed_rows(cfg, opts.parallel)
            except ConfigError as e:
                opt = {"num_iterations": "--iterations"}.get(
                    e.field, "--" + e.field.replace("_", "-")
                )
                raise CLIError(opt, f"{m} on {t}: {e.message}") from None
    if "mbd+demo" in opts.methods and not any(get_task(t).has_demo for t in opts.tasks):
        raise CLIError("--methods", "mbd+demo needs a task with a demonstration (e.g. car2d)")
    out = check_out_dir(opts.out)
    sweep = out / "sweep.json"
    if sweep.exists():
        try:
            old = json.loads(sweep.read_text()).get("budget")
        except (OSError, ValueError):
            old = None
        if old is not None and old != _budget_dict(opts):
            raise CLIError(
                "--out",
                f"{out} holds a sweep with another budget {old}; rerun with the same "
                "--num-samples/--iterations/--horizon/--rl-timesteps/--engine/--noise-size/"
                "--noise-shape/--ess-target/--output, or use another folder",
            )
    return dataclasses.replace(opts, out=out)


def _process_count() -> int:
    import jax

    return jax.process_count()


def run(argv: list[str]) -> int:
    """Entry point of ``mbd bench``; returns the exit code."""
    prog = "mbd bench"
    try:
        opts = parse(argv)
        if _process_count() > 1:
            raise CLIError(
                "JAX_COORDINATOR_ADDRESS",
                "mbd bench writes one runs.jsonl and runs on one host; spread a sweep's "
                "samples over this host's devices with --devices (plan and mpc run on many)",
            )
    except CLIError as e:
        return fail(prog, e)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mbd.bench import RUNS_FILE, Budget, load_runs, plan_sweep, run_sweep
    from mbd.cli.common import write_json

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    sweep = out / "sweep.json"
    if not sweep.exists():
        write_json(
            sweep,
            {
                "budget": _budget_dict(opts),
                "command": "mbd bench " + " ".join(argv),
                "versions": versions(),
            },
        )
    console = Console(stderr=True, quiet=opts.quiet, soft_wrap=True)  # log lines unwrapped
    done = {r["key"] for r in load_runs(out / RUNS_FILE)}
    todo = plan_sweep(opts.tasks, opts.methods, opts.seeds, done)
    total = len(todo) + len(
        [k for k in done if k.split("/")[0] in opts.tasks and k.split("/")[1] in opts.methods]
    )
    console.print(
        f"mbd bench: {len(todo)} runs to do, {total - len(todo)} already in {out / RUNS_FILE}",
        highlight=False,
    )
    if "rl" in opts.methods and todo and any(m == "rl" for _, m, _ in todo):
        console.print(
            f"note: RL trains with --rl-timesteps {opts.rl_timesteps:,} env steps on this "
            f"machine ({versions()['backend']}); the paper used 6.5M-100M steps on a GPU, "
            "so RL numbers here are a small-budget floor, not the paper's RL.",
            highlight=False,
        )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=opts.quiet or not console.is_terminal,  # a bar only where it animates
    )
    bar = progress.add_task("sweep", total=total, completed=total - len(todo))
    budget = Budget(
        opts.num_samples,
        opts.iterations,
        opts.horizon,
        opts.rl_timesteps,
        opts.engine,
        _mbd_options(opts),
    )

    def on_start(i, n, run):
        progress.update(bar, description=f"{run[0]}/{run[1]}/seed {run[2]}")

    from mbd.plotting import fmt

    def on_done(i, n, rec):
        progress.advance(bar)
        comp = rec.get("compile_seconds")
        comp_txt = "" if comp is None else f", compile {comp:.1f}s"
        if rec.get("reused_compile"):
            comp_txt = ", compiled for an earlier seed"
        if rec.get("batch"):
            comp_txt += f", one of a batch of {rec['batch']}"
        progress.console.print(
            f"[{total - n + i + 1}/{total}] {rec['key']}: reward {fmt(rec['final_reward'], 4)} "
            f"(solve {rec['solve_seconds']:.2f}s{comp_txt})",
            highlight=False,
        )

    from mbd.compile import SolveTooLarge

    try:
        with progress:
            run_sweep(
                out,
                list(opts.tasks),
                list(opts.methods),
                list(opts.seeds),
                budget,
                on_start=on_start,
                on_done=on_done,
                batch={"auto": None, "on": True, "off": False}[opts.batch],
                parallel=opts.parallel,
            )
    except SolveTooLarge as e:  # the finished runs are kept in runs.jsonl
        return fail("mbd bench", CLIError("--num-samples", str(e)))
    if opts.report:
        from mbd.cli import report

        return report.run([str(out)] + (["--quiet"] if opts.quiet else []))
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
