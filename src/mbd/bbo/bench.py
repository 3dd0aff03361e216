"""Equal-budget comparison of MBD with other zeroth-order optimizers (paper Fig. 5).

:func:`run_bench` runs every (function, dim, method, seed) not yet done and
:func:`summarize` turns the traces into a table of median, mean and spread of the best
value, and wall time apart; :func:`fixed_target_rows` and :func:`plot_ecdf` report the
runtimes to fixed targets, and :func:`ratio_rows` each method's precision relative to
CMA-ES's. :func:`run_record` and :func:`load_bench_runs` keep finished runs as the lines
of a ``runs.jsonl`` (as ``mbd bench`` does), so that an interrupted bench resumes.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Collection, Sequence
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


RUNS_FILE = "runs.jsonl"
"""A bench folder's finished runs, one JSON line each (:func:`run_record`)."""


def run_key(function: str, dim: int, method: str, seed: int) -> str:
    """Identifier of one run in ``runs.jsonl``: ``function/dim/method/seed``."""
    return f"{function}/{dim}/{method}/{seed}"


def plan_bench(
    functions: Sequence[str], dims: Sequence[int], methods: Sequence[str], seeds: int
) -> list[tuple[str, int, str, int]]:
    """Every (function, dim, method, seed) of a bench, in the order they run."""
    return [(fn, d, m, s) for fn in functions for d in dims for s in range(seeds) for m in methods]


def run_record(run: BenchRun) -> dict[str, Any]:
    """One finished run as a JSON-ready ``runs.jsonl`` record (with its ``key``); an
    infinite value is written as null (:func:`mbd.bench.json_safe`)."""
    t = run.trace
    return {
        "key": run_key(run.function, run.dim, run.method, run.seed),
        "function": run.function,
        "dim": run.dim,
        "method": run.method,
        "seed": run.seed,
        "best_value": float(t.final_value),
        "evaluations": int(t.num_evaluations),
        "seconds": float(t.seconds),
        "compile_seconds": float(t.compile_seconds),
        "curve_evaluations": np.asarray(t.evaluations).tolist(),
        "curve_best": np.asarray(t.best, np.float64).tolist(),
    }


def _value(v: Any) -> float:
    return math.inf if v is None else float(v)  # null: an infinite value (json_safe)


def run_from_record(rec: dict[str, Any]) -> BenchRun:
    """The :class:`BenchRun` of a :func:`run_record` (no final point: an empty array)."""
    trace = Trace(
        evaluations=np.asarray(rec["curve_evaluations"], np.int64),
        best=np.asarray([_value(v) for v in rec["curve_best"]], np.float64),
        final_value=_value(rec["best_value"]),
        final_point=np.zeros(0, np.float32),
        num_evaluations=int(rec["evaluations"]),
        seconds=float(rec["seconds"]),
        compile_seconds=float(rec["compile_seconds"]),
    )
    return BenchRun(rec["function"], int(rec["dim"]), rec["method"], int(rec["seed"]), trace)


def append_bench_run(path: Path, run: BenchRun) -> None:
    """Appends a finished run to ``runs.jsonl``; written, flushed and fsynced first."""
    from mbd.bench import append_run

    append_run(Path(path), run_record(run))


def load_bench_runs(path: Path) -> list[BenchRun]:
    """The finished runs of a ``runs.jsonl`` (missing: none); a torn last line (a run
    killed while writing) is cut from the file, and a key written twice keeps its first
    record."""
    from mbd.bench import load_runs

    return [run_from_record(r) for r in load_runs(Path(path), repair=True)]


def run_bench(
    functions: Sequence[str],
    dims: Sequence[int],
    methods: Sequence[str],
    seeds: int,
    budget: int,
    popsize: int,
    shift: bool = True,
    on_run: Callable[[BenchRun], None] | None = None,
    done: Collection[str] = (),
) -> list[BenchRun]:
    """Runs every method on every function and dim, for seeds 0 .. seeds - 1, but those
    already done.

    Seed s fixes both the shift of the optimum and the method's randomness, so every
    method sees the same problems, and a run repeated later is the same run.

    Args:
        functions: test function names.
        dims: dimensions.
        methods: method names (keys of :data:`~mbd.bbo.compare.METHODS`).
        seeds: number of seeds.
        budget: evaluations per run (a multiple of ``popsize``).
        popsize: points per generation, for every method.
        shift: move the optimum to a seeded random point (see ``make_test_problem``).
        on_run: called after each run, e.g. to keep it (:func:`append_bench_run`) and
            show progress.
        done: keys (:func:`run_key`) of runs not to run again.

    Returns:
        The runs this call ran, in the order they ran.
    """
    runs = []
    for fn in functions:
        for d in dims:
            for s in range(seeds):
                todo = [m for m in methods if run_key(fn, d, m, s) not in done]
                if not todo:
                    continue
                problem = make_test_problem(fn, d, shift=shift, seed=s)
                for m in todo:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # pycma/nevergrad chatter
                        trace = METHODS[m].run(problem, budget, popsize, s)
                    run = BenchRun(fn, d, m, s, trace)
                    runs.append(run)
                    if on_run is not None:
                        on_run(run)
    return runs


def _groups(runs: Sequence[BenchRun]) -> list[tuple[tuple[str, int, str], list[Trace]]]:
    """The runs' traces per (function, dim, method): by function, dim, then method in
    registry order."""
    order = {m: i for i, m in enumerate(METHODS)}
    keys = sorted(
        {(r.function, r.dim, r.method) for r in runs},
        key=lambda k: (k[0], k[1], order.get(k[2], 99)),
    )
    return [(k, [r.trace for r in runs if (r.function, r.dim, r.method) == k]) for k in keys]


TARGETS: tuple[float, ...] = tuple(10.0**-k for k in range(1, 9))
"""Target precisions f - f* of the fixed-target report: 1e-1 .. 1e-8."""


def hitting_evaluations(trace: Trace, target: float, best_value: float = 0.0) -> float:
    """Evaluations after which a run's best value first came within ``target`` of the
    optimum ``best_value`` (its final recommendation counts at its last evaluation);
    ``inf`` when it never did.

    Args:
        trace: the run.
        target: precision t > 0.
        best_value: f*, the optimum's value.

    Returns:
        An evaluation count, or ``math.inf``.
    """
    gap = np.asarray(trace.best, np.float64) - best_value
    hit = np.nonzero(gap <= target)[0]
    if hit.size:
        return float(trace.evaluations[hit[0]])
    if trace.final_value - best_value <= target:
        return float(trace.num_evaluations)
    return math.inf


def fixed_target_rows(
    runs: Sequence[BenchRun], targets: Sequence[float] = TARGETS
) -> list[dict[str, Any]]:
    """Per (function, dim, method) and target: the runs that reached it and their aRT.

    Args:
        runs: bench runs of test functions (optimum value 0).
        targets: precisions.

    Returns:
        Rows with ``function``, ``dim``, ``method``, ``seeds``, and per target
        ``hits`` (runs that reached it) and ``art`` (average runtime in evaluations,
        ``inf`` when no run did).
    """
    rows = []
    for (fn, d, m), sel in _groups(runs):
        per_target = []
        for t in targets:
            times = [hitting_evaluations(tr, t) for tr in sel]
            hits = sum(1 for x in times if math.isfinite(x))
            spent = sum(
                x if math.isfinite(x) else tr.num_evaluations
                for x, tr in zip(times, sel, strict=True)
            )
            per_target.append(
                {"target": t, "hits": hits, "art": spent / hits if hits else math.inf}
            )
        rows.append(
            {"function": fn, "dim": d, "method": m, "seeds": len(sel), "targets": per_target}
        )
    return rows


def fixed_target_table(rows: Sequence[dict[str, Any]]) -> str:
    """The fixed-target rows as Markdown: aRT in evaluations (hits/runs where not all)."""
    if not rows:
        return ""
    targets = [t["target"] for t in rows[0]["targets"]]
    head = " | ".join(f"{t:.0e}" for t in targets)
    lines = [
        f"| function | dim | method | {head} |",
        "|---|---|---|" + "---|" * len(targets),
    ]
    for r in rows:
        cells = []
        for t in r["targets"]:
            if t["hits"] == 0:
                cells.append("-")
                continue
            cell = f"{t['art']:.3g}"
            if t["hits"] < r["seeds"]:
                cell += f" ({t['hits']}/{r['seeds']})"
            cells.append(cell)
        lines.append(
            f"| {r['function']} | {r['dim']} | {r['method']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def ecdf(runs: Sequence[BenchRun], method: str, dim: int, targets: Sequence[float] = TARGETS):
    """The runtime ECDF of one method at one dimension, over functions, seeds and targets.

    Returns:
        (sorted finite runtimes in evaluations, number of (run, target) pairs): the
        share reached by ``x`` evaluations is ``searchsorted(times, x, 'right') / pairs``.
    """
    sel = [r.trace for r in runs if r.method == method and r.dim == dim]
    times = [hitting_evaluations(tr, t) for tr in sel for t in targets]
    finite = np.sort([x for x in times if math.isfinite(x)])
    return finite, len(times)


def plot_ecdf(runs: Sequence[BenchRun], dim: int, path: str | Path) -> None:
    """Runtime ECDFs of every method at ``dim`` (all functions, seeds and targets).

    Args:
        runs: bench runs.
        dim: the dimension drawn.
        path: PNG file to write.
    """
    from mbd.plotting import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    budget = max(r.trace.num_evaluations for r in runs if r.dim == dim)
    functions = sorted({r.function for r in runs if r.dim == dim})
    for m in METHODS:
        if not any(r.method == m and r.dim == dim for r in runs):
            continue
        times, pairs = ecdf(runs, m, dim)
        xs = np.concatenate([[1.0], times, [budget]])
        ys = np.concatenate([[0.0], np.arange(1, len(times) + 1) / pairs, [len(times) / pairs]])
        ax.step(xs, ys, where="post", label=m, lw=1.6)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("function evaluations")
    ax.set_ylabel("share of (function, seed, target) reached")
    ax.set_title(
        f"d = {dim}: targets 1e-1 .. 1e-8 above the optimum, {len(functions)} function(s)",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summarize(runs: Sequence[BenchRun]) -> list[dict[str, Any]]:
    """One row per (function, dim, method): median, mean, std, min, max of the best value
    over seeds, mean evaluations, and mean and median wall time (run and compile apart)."""
    rows = []
    for (fn, d, m), sel in _groups(runs):
        v = np.array([t.final_value for t in sel])
        rows.append(
            {
                "function": fn,
                "dim": d,
                "method": m,
                "seeds": len(sel),
                "best_median": float(np.median(v)),
                "best_mean": float(np.mean(v)),
                "best_std": float(np.std(v)),
                "best_min": float(np.min(v)),
                "best_max": float(np.max(v)),
                "evaluations": int(np.mean([t.num_evaluations for t in sel])),
                "seconds_mean": float(np.mean([t.seconds for t in sel])),
                "seconds_median": float(np.median([t.seconds for t in sel])),
                "compile_seconds_mean": float(np.mean([t.compile_seconds for t in sel])),
            }
        )
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary rows as a Markdown table; the best median per (function, dim) in bold."""
    lines = [
        "| function | dim | method | best value: median | mean ± std (min .. max) | evals "
        "| run time (s) | compile (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    winners = {}
    for r in rows:
        k = (r["function"], r["dim"])
        if k not in winners or r["best_median"] < winners[k]:
            winners[k] = r["best_median"]
    for r in rows:
        med = f"{r['best_median']:.4g}"
        if r["best_median"] == winners[(r["function"], r["dim"])]:
            med = f"**{med}**"
        spread = (
            f"{r['best_mean']:.4g} ± {r['best_std']:.2g} "
            f"({r['best_min']:.4g} .. {r['best_max']:.4g})"
        )
        lines.append(
            f"| {r['function']} | {r['dim']} | {r['method']} | {med} | {spread} "
            f"| {r['evaluations']} | {r['seconds_mean']:.2f} | {r['compile_seconds_mean']:.2f} |"
        )
    return "\n".join(lines)


def on_grid(trace: Trace, grid: np.ndarray) -> np.ndarray:
    """A run's best value so far at each evaluation count of ``grid`` (G,): the value
    after its last generation within that count (``inf`` before its first); runs with
    restarts have generations of several sizes, so their curves need a common grid."""
    i = np.searchsorted(np.asarray(trace.evaluations), grid, side="right") - 1
    best = np.asarray(trace.best, np.float64)
    return np.where(i >= 0, best[np.maximum(i, 0)], np.inf)


def ratio_rows(rows: Sequence[dict[str, Any]], reference: str = "cma") -> list[dict[str, Any]]:
    """Each method's median best value and median run time over those of ``reference``
    on the same (function, dim): precision ratio > 1 is worse than the reference.

    Args:
        rows: from :func:`summarize`.
        reference: the method compared against.

    Returns:
        Rows with ``function``, ``dim``, ``method``, ``median``, ``ratio`` (median over
        the reference's median; ``inf`` or ``nan`` where that is 0) and ``time_ratio``;
        empty when ``reference`` did not run.
    """
    ref = {(r["function"], r["dim"]): r for r in rows if r["method"] == reference}
    out = []
    for r in rows:
        base = ref.get((r["function"], r["dim"]))
        if base is None or r["method"] == reference:
            continue
        num, den = r["best_median"], base["best_median"]
        ratio = num / den if den > 0 else (math.nan if num <= 0 else math.inf)
        t_den = base["seconds_median"]
        out.append(
            {
                "function": r["function"],
                "dim": r["dim"],
                "method": r["method"],
                "median": num,
                "reference_median": den,
                "ratio": ratio,
                "time_ratio": r["seconds_median"] / t_den if t_den > 0 else math.nan,
            }
        )
    return out


def ratio_table(ratios: Sequence[dict[str, Any]], reference: str = "cma") -> str:
    """Markdown: per (function, dim), each method's median precision over the
    reference's (and its run time over the reference's), methods as columns; a final
    row counts the functions within a factor of 10."""
    if not ratios:
        return ""
    methods = list(dict.fromkeys(r["method"] for r in ratios))
    keys = list(dict.fromkeys((r["function"], r["dim"]) for r in ratios))
    cell = {(r["function"], r["dim"], r["method"]): r for r in ratios}
    lines = [
        "| function | dim | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for fn, d in keys:
        parts = []
        for m in methods:
            r = cell.get((fn, d, m))
            parts.append("" if r is None else f"{r['ratio']:.3g} (t {r['time_ratio']:.2g})")
        lines.append(f"| {fn} | {d} | " + " | ".join(parts) + " |")
    counts = []
    for m in methods:
        sel = [r for r in ratios if r["method"] == m]
        ok = sum(1 for r in sel if r["ratio"] <= 10 or math.isnan(r["ratio"]))
        counts.append(f"{ok}/{len(sel)}")
    lines.append(f"| within 10x of {reference} | | " + " | ".join(counts) + " |")
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
        ev = np.unique(np.concatenate([t.evaluations for t in sel]))
        best = np.stack([on_grid(t, ev) for t in sel])
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
