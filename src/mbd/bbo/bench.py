"""Equal-budget comparison of MBD with other zeroth-order optimizers (paper Fig. 5).

:func:`run_bench` runs every (function, dim, method, seed) and :func:`summarize` turns
the traces into a table of mean and spread of the best value, and wall time apart.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mbd.bbo.compare import METHODS, Trace
from mbd.bbo.functions import make_test_problem


@dataclasses.dataclass(frozen=True)
class BenchRun:
    """One finished run: which function, dim, method and seed, and its :class:`Trace`."""

    function: str
    dim: int
    method: str
    seed: int
    trace: Trace


def run_bench(
    functions: Sequence[str],
    dims: Sequence[int],
    methods: Sequence[str],
    seeds: int,
    budget: int,
    popsize: int,
    shift: bool = True,
    on_run: Callable[[BenchRun], None] | None = None,
) -> list[BenchRun]:
    """Runs every method on every function and dim, for seeds 0 .. seeds - 1.

    Seed s fixes both the shift of the optimum and the method's randomness, so every
    method sees the same problems.

    Args:
        functions: test function names.
        dims: dimensions.
        methods: method names (keys of :data:`~mbd.bbo.compare.METHODS`).
        seeds: number of seeds.
        budget: evaluations per run (a multiple of ``popsize``).
        popsize: points per generation, for every method.
        shift: move the optimum to a seeded random point (see ``make_test_problem``).
        on_run: called after each run (progress display).

    Returns:
        The runs, in the order they ran.
    """
    runs = []
    for fn in functions:
        for d in dims:
            for s in range(seeds):
                problem = make_test_problem(fn, d, shift=shift, seed=s)
                for m in methods:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # pycma/nevergrad chatter
                        trace = METHODS[m].run(problem, budget, popsize, s)
                    run = BenchRun(fn, d, m, s, trace)
                    runs.append(run)
                    if on_run is not None:
                        on_run(run)
    return runs


def summarize(runs: Sequence[BenchRun]) -> list[dict[str, Any]]:
    """One row per (function, dim, method): mean, std, min, max of the best value over
    seeds, mean evaluations, and mean wall time (run and compile apart)."""
    rows = []
    keys = sorted({(r.function, r.dim, r.method) for r in runs}, key=lambda k: (k[0], k[1]))
    order = {m: i for i, m in enumerate(METHODS)}
    keys.sort(key=lambda k: (k[0], k[1], order.get(k[2], 99)))
    for fn, d, m in keys:
        sel = [r.trace for r in runs if (r.function, r.dim, r.method) == (fn, d, m)]
        v = np.array([t.final_value for t in sel])
        rows.append(
            {
                "function": fn,
                "dim": d,
                "method": m,
                "seeds": len(sel),
                "best_mean": float(np.mean(v)),
                "best_std": float(np.std(v)),
                "best_min": float(np.min(v)),
                "best_max": float(np.max(v)),
                "evaluations": int(np.mean([t.num_evaluations for t in sel])),
                "seconds_mean": float(np.mean([t.seconds for t in sel])),
                "compile_seconds_mean": float(np.mean([t.compile_seconds for t in sel])),
            }
        )
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary rows as a Markdown table; the best mean per (function, dim) in bold."""
    lines = [
        "| function | dim | method | best value, mean ± std (min .. max) | evals "
        "| run time (s) | compile (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    winners = {}
    for r in rows:
        k = (r["function"], r["dim"])
        if k not in winners or r["best_mean"] < winners[k]:
            winners[k] = r["best_mean"]
    for r in rows:
        val = (
            f"{r['best_mean']:.4g} ± {r['best_std']:.2g} "
            f"({r['best_min']:.4g} .. {r['best_max']:.4g})"
        )
        if r["best_mean"] == winners[(r["function"], r["dim"])]:
            val = f"**{val}**"
        lines.append(
            f"| {r['function']} | {r['dim']} | {r['method']} | {val} | {r['evaluations']} "
            f"| {r['seconds_mean']:.2f} | {r['compile_seconds_mean']:.2f} |"
        )
    return "\n".join(lines)


def plot_bench(runs: Sequence[BenchRun], function: str, dim: int, path: str | Path) -> None:
    """Best value so far against evaluations, mean over seeds with a min-max band.

    Args:
        runs: bench runs (those of ``function`` and ``dim`` are drawn).
        function: function name.
        dim: dimension.
        path: PNG file to write.
    """
    from mbd.plotting import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    for m in METHODS:
        sel = [r.trace for r in runs if (r.function, r.dim, r.method) == (function, dim, m)]
        if not sel:
            continue
        ev = sel[0].evaluations
        best = np.stack([t.best for t in sel])
        line = ax.plot(ev, best.mean(0), label=m, lw=1.6)[0]
        ax.fill_between(ev, best.min(0), best.max(0), color=line.get_color(), alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("function evaluations")
    ax.set_ylabel("best value so far (lower is better)")
    ax.set_title(f"{function}, d = {dim}: mean over seeds, band = min..max")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
