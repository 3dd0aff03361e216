"""``mbd bbo-bench [options]``: MBD against other zeroth-order optimizers at equal budgets.

Resumable, as ``mbd bench`` is: each finished run is appended to ``DIR/runs.jsonl``
(flushed and fsynced before the next starts), so a bench stopped by Ctrl-C, SIGTERM or a
crash keeps every finished run, and the same command run again runs only the missing
ones. ``DIR/bench.json`` records ``--budget``, ``--popsize`` and ``--shift``, which a
rerun must keep (functions, dims, methods and seeds may change). When every run is done,
it writes ``DIR/results.json`` (every run's convergence trace, the summary rows and the
fixed-target rows), ``DIR/table.md`` (best values), ``DIR/targets.md`` (average runtime
to reach 1e-1 .. 1e-8 above the optimum), ``DIR/ratios.md`` when ``cma`` ran (each
method's median precision and run time over CMA-ES's), one ``DIR/FUNCTION-DIMd.png`` per
function and dimension (best value against evaluations, mean over seeds with a min..max
band) and one
``DIR/ecdf-DIMd.png`` per dimension (the share of function x seed x target reached
against evaluations).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from mbd.cli import common
from mbd.cli.common import CLIError, atomic_out_dir, check_out_dir, fail, tyro_parse, write_json

SUMMARY = "compare MBD with CMA-ES, CEM, SNES, Shiwa, random search at equal evaluation budgets"

SETTINGS_FILE = "bench.json"
"""The settings every run of a bench folder shares (``--budget``, ``--popsize``, ``--shift``)."""

_EXTRA_MODULES = {
    "cma": "cma",
    "cma-ipop": "cma",
    "evosax-cma": "evosax",
    "evosax-snes": "evosax",
    "shiwa": "nevergrad",
}


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """Options of ``mbd bbo-bench``."""

    functions: tuple[str, ...] = ("ackley", "rastrigin")
    """test functions: ackley, rastrigin, levy, rosenbrock, sphere, and the rotated ones
    ellipsoid, discus, bent_cigar, rosenbrock_rotated, sharp_ridge, different_powers,
    rastrigin_rotated, and schwefel"""
    dims: tuple[int, ...] = (200, 400, 800)
    """dimensions"""
    methods: tuple[str, ...] = ("mbd", "cma", "evosax-cma", "evosax-snes", "shiwa", "random")
    """methods: mbd, mbd-shaped, mbd-ipop, cem, cma, cma-ipop, evosax-cma, evosax-snes,
    shiwa, random; those whose package is missing are skipped unless named here"""
    seeds: int = 5
    """seeds 0 .. SEEDS-1 (each fixes the shifted optimum and the methods' randomness)"""
    budget: int = 3200
    """function evaluations per run (a multiple of --popsize); +1 for a final recommendation"""
    popsize: int = 64
    """points per generation, for every method (MBD: samples per diffusion step)"""
    shift: bool = True
    """move each function's optimum to a seeded random point (--no-shift: textbook optimum)"""
    out: Path = Path("runs/bbo-bench")
    """output folder; runs.jsonl there keeps each finished run, and the same command
    again resumes an interrupted bench"""
    quiet: bool = False
    """no per-run lines"""


def parse(argv: list[str]) -> tuple[BenchOptions, list[str]]:
    """Parses and checks the options; returns them and the methods that will run."""
    from mbd.bbo.compare import METHODS
    from mbd.bbo.functions import FUNCTIONS

    opts = tyro_parse(BenchOptions, BenchOptions(), argv, "mbd bbo-bench", __doc__.splitlines()[0])
    for f in opts.functions:
        if f not in FUNCTIONS:
            raise CLIError(
                "--functions", f"unknown function {f!r}; choose from {', '.join(FUNCTIONS)}"
            )
    if not opts.functions:
        raise CLIError("--functions", "give at least one function")
    for d in opts.dims:
        if d < 1:
            raise CLIError("--dims", f"every dimension must be an integer >= 1 (got {d})")
    if not opts.dims:
        raise CLIError("--dims", "give at least one dimension")
    explicit = any(a.split("=")[0] == "--methods" for a in argv)
    methods = []
    for m in opts.methods:
        if m not in METHODS:
            raise CLIError("--methods", f"unknown method {m!r}; choose from {', '.join(METHODS)}")
        mod = _EXTRA_MODULES.get(m)
        if mod is not None and importlib.util.find_spec(mod) is None:
            if explicit:
                raise CLIError("--methods", f"{m} needs {mod}: pip install 'mbd[bbo]'")
            print(
                f"mbd bbo-bench: skipping {m} ({mod} is not installed; pip install 'mbd[bbo]')",
                file=sys.stderr,
            )
            continue
        methods.append(m)
    if not methods:
        raise CLIError("--methods", "give at least one method")
    if opts.seeds < 1:
        raise CLIError("--seeds", f"must be an integer >= 1 (got {opts.seeds})")
    if opts.popsize < 2:
        raise CLIError("--popsize", f"must be an integer >= 2 (got {opts.popsize})")
    if opts.budget < 2 * opts.popsize or opts.budget % opts.popsize:
        raise CLIError(
            "--budget",
            f"must be a multiple of --popsize ({opts.popsize}) and at least two generations "
            f"(>= {2 * opts.popsize}) (got {opts.budget})",
        )
    check_out_dir(opts.out)
    old = _stored_settings(opts.out)
    if old is not None and old != _settings(opts):
        raise CLIError(
            "--out",
            f"{opts.out} holds a bench with other settings {old}; rerun with the same "
            "--budget/--popsize/--shift, or use another folder",
        )
    return opts, methods


def _settings(opts: BenchOptions) -> dict:
    return {"budget": opts.budget, "popsize": opts.popsize, "shift": opts.shift}


def _stored_settings(out: Path) -> dict | None:
    try:
        return json.loads((out / SETTINGS_FILE).read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _keep_on_terminate(prog: str, runs_file: Path) -> Iterator[None]:
    """SIGTERM prints one line and exits 143 at once; the finished runs are already in
    ``runs_file`` and a temporary report folder is removed (as Ctrl-C does)."""
    import signal

    def handler(signum, frame):
        del frame
        for d in list(common._PARTIAL):
            shutil.rmtree(d, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.write(
                2,
                f"{prog}: terminated; the finished runs are kept in {runs_file}; "
                "the same command resumes\n".encode(),
            )
        os._exit(128 + signum)

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave the signal alone
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def run(argv: list[str]) -> int:
    """Entry point of ``mbd bbo-bench``; returns the exit code."""
    prog = "mbd bbo-bench"
    try:
        opts, methods = parse(argv)
    except CLIError as e:
        return fail(prog, e)
    from mbd.bbo.bench import (
        RUNS_FILE,
        append_bench_run,
        load_bench_runs,
        plan_bench,
        run_bench,
        run_key,
    )
    from mbd.cli.common import versions

    t0 = time.perf_counter()
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    if _stored_settings(out) is None:
        write_json(out / SETTINGS_FILE, {"settings": _settings(opts), "versions": versions()})
    runs_file = out / RUNS_FILE
    wanted = [run_key(*k) for k in plan_bench(opts.functions, opts.dims, methods, opts.seeds)]
    kept = {}
    for r in load_bench_runs(runs_file):
        kept.setdefault(run_key(r.function, r.dim, r.method, r.seed), r)
    done = [k for k in wanted if k in kept]
    total, finished = len(wanted), len(done)
    if not opts.quiet:
        print(
            f"{prog}: {total - finished} runs to do, {finished} already in {runs_file} "
            "(interrupted, the same command resumes)",
            file=sys.stderr,
        )

    def on_run(r):
        nonlocal finished
        append_bench_run(runs_file, r)
        finished += 1
        if not opts.quiet:
            t = r.trace
            print(
                f"[{finished}/{total}] {r.function:>10} d={r.dim:<4} seed {r.seed}  "
                f"{r.method:<12} best {t.final_value:<12.5g} evals {t.num_evaluations:<6} "
                f"run {t.seconds:6.2f}s compile {t.compile_seconds:5.2f}s",
                file=sys.stderr,
                flush=True,
            )

    with _keep_on_terminate(prog, runs_file):
        new = run_bench(
            opts.functions,
            opts.dims,
            methods,
            opts.seeds,
            opts.budget,
            opts.popsize,
            opts.shift,
            on_run,
            done=set(done),
        )
        ran = {run_key(r.function, r.dim, r.method, r.seed): r for r in new}
        runs = [kept[k] if k in kept else ran[k] for k in wanted]
        _write_report(opts, methods, argv, runs, len(new), t0)
    return 0


def _write_report(opts: BenchOptions, methods, argv, runs, ran: int, t0: float) -> None:
    """Writes the bench's tables, results.json and plots (atomically) and prints the table."""
    from mbd.bbo.bench import (
        fixed_target_rows,
        fixed_target_table,
        markdown_table,
        plot_bench,
        plot_ecdf,
        ratio_rows,
        ratio_table,
        summarize,
    )
    from mbd.cli.common import versions

    rows = summarize(runs)
    table = markdown_table(rows)
    targets = fixed_target_rows(runs)
    ratios = ratio_rows(rows, "cma")
    with atomic_out_dir(opts.out) as tmp:
        write_json(
            tmp / "results.json",
            {
                "command": "mbd bbo-bench " + " ".join(argv),
                "options": {
                    k: (str(v) if isinstance(v, Path) else v)
                    for k, v in dataclasses.asdict(opts).items()
                },
                "methods": methods,
                "total_seconds": time.perf_counter() - t0,
                "runs_resumed": len(runs) - ran,
                "summary": rows,
                "fixed_targets": targets,
                "ratios_to_cma": ratios,
                "runs": [
                    {
                        "function": r.function,
                        "dim": r.dim,
                        "method": r.method,
                        "seed": r.seed,
                        "best_value": r.trace.final_value,
                        "evaluations": r.trace.num_evaluations,
                        "seconds": r.trace.seconds,
                        "compile_seconds": r.trace.compile_seconds,
                        "curve_evaluations": r.trace.evaluations.tolist(),
                        "curve_best": r.trace.best.tolist(),
                    }
                    for r in runs
                ],
                "versions": versions(),
            },
        )
        (tmp / "table.md").write_text(table + "\n")
        (tmp / "targets.md").write_text(
            "Average runtime (evaluations) to reach each precision above the optimum; "
            "(hits/runs) where not every run did, - where none did.\n\n"
            + fixed_target_table(targets)
            + "\n"
        )
        if ratios:
            (tmp / "ratios.md").write_text(
                "Median best value over seeds divided by pycma CMA-ES's (cma) on the same "
                "function and dim (> 1: worse; nan: both reached 0), and (t ...) the "
                "median run time over cma's, compilation apart.\n\n"
                + ratio_table(ratios, "cma")
                + "\n"
            )
        for f in opts.functions:
            for d in opts.dims:
                plot_bench(runs, f, d, tmp / f"{f}-{d}d.png")
        for d in opts.dims:
            plot_ecdf(runs, d, tmp / f"ecdf-{d}d.png")
    print(table)
    print(
        f"mbd bbo-bench: {len(runs)} runs ({ran} run now, {len(runs) - ran} kept from "
        f"before) in {time.perf_counter() - t0:.0f}s -> {opts.out}",
        file=sys.stderr,
    )
