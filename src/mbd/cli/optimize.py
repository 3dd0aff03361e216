"""``mbd optimize FUNCTION [--dim D] [options]``: minimize a test function with MBD.

Bare ``mbd optimize`` (or ``--help``) lists the test functions; bare, it exits with code 2
as a missing ``mbd plan TASK`` does.

Functions and domains (paper A.2): ackley on [-5, 10]^d, rastrigin, levy, rosenbrock and
sphere on [-5, 5]^d. Writes ``DIR/summary.json`` (best value, evaluations, time, the
curves, and with ``--restarts`` each run's samples, updates and stop), ``DIR/solution.npy``
(the final estimate, shape (d,)) and ``DIR/convergence.png``.
For your own function use the API: ``mbd.bbo.make_user_problem`` and ``mbd.bbo.minimize``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from mbd.cli.common import (
    EXIT_USAGE,
    CLIError,
    atomic_out_dir,
    check_out_dir,
    check_seed,
    fail,
    flag,
    fresh_out_dir,
    leading_name,
    say_result,
    tyro_parse,
    write_json,
)
from mbd.solver import ConfigError, MBDConfig, deferred_validation, validate_config

SUMMARY = "minimize a test function (ackley, rastrigin, ...) with MBD; summary + plot"


def _bbo_config() -> MBDConfig:
    from mbd.bbo.optimize import BBO_CONFIG

    return BBO_CONFIG


@dataclasses.dataclass(frozen=True)
class OptimizeOptions:
    """Options of ``mbd optimize``. Solver defaults: the authors' black-box script."""

    dim: int = 10
    """dimension d (>= 1)"""
    seed: int = 0
    """random seed (of the solve and of the shifted optimum)"""
    shift: bool = True
    """move the optimum to a seeded random point of the middle half of the domain"""
    out: Path | None = None
    """output folder; None writes to runs/optimize-FUNCTION-Dd-sSEED"""
    quiet: bool = False
    """print only the best value"""
    restarts: int = 0
    """IPOP restarts within the same budget (num-samples x updates): a run ends when its
    best values level off, and the next has twice the samples; 0: one run"""
    solver: Annotated[MBDConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(
        default_factory=_bbo_config
    )
    """solver hyper-parameters"""


def _usage() -> str:
    from mbd.bbo.functions import FUNCTIONS

    lines = [
        "usage: mbd optimize FUNCTION [--dim D] [options]   (FUNCTION --help: options)",
        "",
        "functions:",
    ]
    lines += [f"  {f.name:<18} {f.summary}" for f in FUNCTIONS.values()]
    return "\n".join(lines)


def parse(argv: list[str]) -> tuple[str, OptimizeOptions]:
    """Parses ``FUNCTION [options]``; raises :class:`CLIError` for a bad value."""
    from mbd.bbo.functions import get_function

    name, spec, rest = leading_name(
        argv,
        "FUNCTION",
        "missing; give a function name first (mbd optimize --help)",
        _usage,
        get_function,
    )
    with deferred_validation():
        opts = tyro_parse(
            OptimizeOptions,
            OptimizeOptions(),
            rest,
            f"mbd optimize {name}",
            f"Minimize {spec.summary} with MBD.",
        )
    try:
        validate_config(opts.solver)
    except ConfigError as e:
        raise CLIError(flag(e.field), e.message) from None
    if opts.dim < 1:
        raise CLIError("--dim", f"must be an integer >= 1 (got {opts.dim})")
    check_seed(opts.seed)
    if opts.restarts < 0:
        raise CLIError("--restarts", f"must be an integer >= 0 (got {opts.restarts})")
    if opts.out is None:
        opts = dataclasses.replace(
            opts, out=fresh_out_dir(Path("runs") / f"optimize-{name}-{opts.dim}d-s{opts.seed}")
        )
    check_out_dir(opts.out)
    return name, opts


def run(argv: list[str]) -> int:
    """Entry point of ``mbd optimize``; returns the exit code."""
    prog = "mbd optimize"
    if not argv:  # bare: the usage and the functions, exit 2 (a missing FUNCTION)
        print(_usage())
        return EXIT_USAGE
    try:
        name, opts = parse(argv)
    except CLIError as e:
        return fail(prog, e)
    from mbd.bbo.functions import make_test_problem
    from mbd.bbo.optimize import Restarts, minimize, plot_convergence
    from mbd.cli.common import versions

    problem = make_test_problem(name, opts.dim, shift=opts.shift, seed=opts.seed)
    restarts = Restarts(max_restarts=opts.restarts) if opts.restarts else None
    if restarts and opts.solver.noise_size == "schedule" and not opts.quiet:
        print(
            "mbd optimize: note: with the schedule's noise size a run seldom levels off "
            "before its last update, so restarts seldom start; --noise-size adaptive "
            "lets a run converge and end",
            file=sys.stderr,
        )
    res = minimize(problem, opts.solver, seed=opts.seed, restarts=restarts)
    err = None
    if problem.optimum is not None:
        err = float(np.max(np.abs(res.best_point - problem.optimum)))
    summary = {
        "function": name,
        "dim": opts.dim,
        "seed": opts.seed,
        "shift": opts.shift,
        "domain": [float(problem.low[0]), float(problem.high[0])],
        "optimum_value": problem.best_value,
        "distance_to_optimum_inf": err,
        **res.summary(),
        "config": dataclasses.asdict(opts.solver),
        "restarts": opts.restarts,
        "versions": versions(),
    }
    with atomic_out_dir(opts.out) as tmp:
        write_json(tmp / "summary.json", summary)
        np.save(tmp / "solution.npy", res.best_point)
        plot_convergence(
            res, tmp / "convergence.png", title=f"MBD on {problem.name} (seed {opts.seed})"
        )
    if opts.quiet:
        print(f"{res.best_value:.6g}")
    else:
        say_result(
            f"{problem.name}: best value {res.best_value:.6g} (final estimate "
            f"{res.final_value:.6g}, optimum 0) after {res.evaluations:,} evaluations"
            + (f" in {len(res.runs)} run(s)" if res.runs else "")
            + "; "
            f"solve {res.seconds:.2f}s, compile {res.compile_seconds:.1f}s -> {opts.out}"
        )
    return 0
