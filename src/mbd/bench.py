"""The benchmark loop behind ``mbd bench`` and ``mbd report`` (paper Tables 2 and 3).

A sweep runs tasks x methods x seeds under one budget (samples per iteration, iterations,
horizon) applied to every method equally, and appends one JSON line per finished run to
``DIR/runs.jsonl`` (written, flushed and fsynced before the next run starts), so an
interrupted sweep loses nothing finished and a rerun skips what is there.

Methods are the solver registry's (:mod:`mbd.baselines`: ``mbd``, ``cmaes``, ``cem``,
``mppi``, ``random``), plus ``mbd+demo`` (MBD with the task's demonstration, Eq. 13) and
``rl`` (Brax PPO / SAC, :mod:`mbd.baselines.rl`). Every zeroth-order method starts from
the same guess (zeros) with the same key ``jax.random.key(seed)``; a run is bit-identical
when repeated.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mbd.compile import SolveTooLarge
from mbd.parallel import num_devices

RUNS_FILE = "runs.jsonl"
SWEEP_FILE = "sweep.json"
EXTRA_METHODS: tuple[str, ...] = ("mbd+demo", "rl")
# Column order of the tables: the paper's (CMA-ES, CEM, MPPI, RL, MBD), then the rest.
METHOD_ORDER: tuple[str, ...] = ("cmaes", "cem", "mppi", "rl", "mbd", "mbd+demo", "random")


def run_key(task: str, method: str, seed: int) -> str:
    """Identifier of one run in ``runs.jsonl``: ``task/method/seed``."""
    return f"{task}/{method}/{seed}"


def known_methods() -> list[str]:
    """Names accepted by a sweep: the solver registry plus ``mbd+demo`` and ``rl``."""
    from mbd.baselines import list_methods

    return [m.name for m in list_methods()] + list(EXTRA_METHODS)


@dataclasses.dataclass(frozen=True)
class Budget:
    """What every method of a sweep gets (None: the task's recommendation).

    Attributes:
        num_samples: samples per iteration.
        iterations: iterations (MBD's diffusion updates, N - 1 in the reference reading).
        horizon: planning horizon T.
        rl_timesteps: environment steps of an RL training run.
        engine: simulator of the robot tasks (``brax``, the paper's definitions, or a
            MuJoCo engine, see :mod:`mbd.sim.engines`); pure-JAX tasks ignore it.
        mbd_options: :class:`~mbd.solver.MBDConfig` fields set on the MBD methods (``mbd``,
            ``mbd+demo``), e.g. ``{"noise_size": "adaptive"}``; the baselines ignore them.
    """

    num_samples: int | None = None
    iterations: int | None = None
    horizon: int | None = None
    rl_timesteps: int = 100_000
    engine: str = "brax"
    mbd_options: tuple[tuple[str, Any], ...] = ()


class CompiledRun:
    """A method compiled once for one task: every seed runs the same program.

    A task's seed changes only its problem's :class:`~mbd.problem.Instance` (the initial
    state's reset noise, a goal, the demonstration), which the compiled solve takes as
    an argument (:class:`~mbd.solver.ParametricSolve`), so one compile serves all seeds.

    Attributes:
        solve: the compiled ``solve(key, instance=...) -> MBDResult``.
        compile_seconds: time to lower and compile it.
        problem: the task's problem at the seed it was compiled for.
        config: the method's config.
        num_updates: iterations of the solve.
        parallel: devices and chunks of the sample evaluation (:mod:`mbd.parallel`).
    """

    def __init__(
        self, task_name: str, method: str, budget: Budget, seed: int = 0, parallel: Any = None
    ):
        from mbd.baselines import get_method, method_config
        from mbd.tasks import engine_options, get_task

        task = get_task(task_name)
        self.demo = method == "mbd+demo"
        if self.demo and not task.has_demo:
            raise ValueError(f"task {task_name!r} has no demonstration (method mbd+demo)")
        name = "mbd" if self.demo else method
        self.horizon = task.horizon if budget.horizon is None else budget.horizon
        self.seed = seed
        self.engine = engine_options(task, budget.engine)
        self.problem = task.make(horizon=self.horizon, demo=self.demo, seed=seed, **self.engine)
        self.config = method_config(name, task.config, budget.num_samples, budget.iterations)
        if name == "mbd" and budget.mbd_options:
            self.config = dataclasses.replace(self.config, **dict(budget.mbd_options))
        solver = get_method(name).make(self.problem, self.config, parallel=parallel)
        self.parallel = parallel
        self.solver = solver
        self.num_updates = solver.num_updates
        self.task = task
        self.compile_seconds: float | None = None
        self._solve = None

    @property
    def solve(self):
        """The one-seed solve, compiled on first use (a batch compiles its own)."""
        import jax

        if self._solve is None:
            t0 = time.perf_counter()
            self._solve = self.solver.solve.compile(jax.random.key(0))
            if self.compile_seconds is None:
                self.compile_seconds = time.perf_counter() - t0
        return self._solve

    def problem_for(self, seed: int):
        """The task's problem at ``seed`` (its instance is what a run of that seed solves)."""
        if seed == self.seed:
            return self.problem
        return self.task.make(horizon=self.horizon, demo=self.demo, seed=seed, **self.engine)


def run_planner(compiled: CompiledRun, task: str, method: str, seed: int) -> dict[str, Any]:
    """Runs one seed of a compiled method and describes it (a ``runs.jsonl`` record).

    Args:
        compiled: the compiled method.
        task: task name.
        method: method name.
        seed: the seed; the key is ``jax.random.key(seed)`` and the problem instance
            the task's at that seed.

    Returns:
        JSON-ready dict: key, task, method, seed, horizon, num_samples, iterations,
        config, final_reward (mean per-step reward of the returned controls replayed open
        loop), violation, feasible, reward_history (mean sample reward per iteration),
        best_reward_history, solve_seconds, compile_seconds, env_steps, metrics.
    """
    import jax

    key = jax.random.key(seed)
    problem = compiled.problem_for(seed)
    solve = compiled.solve  # compiled on first use: before the timer starts
    instance = problem.instance()
    t0 = time.perf_counter()
    result = jax.block_until_ready(solve(key, instance=instance))
    solve_seconds = time.perf_counter() - t0
    result = jax.tree_util.tree_map(np.asarray, result)
    return _record(compiled, task, method, seed, problem, result, solve_seconds)


def run_batch(
    compiled: CompiledRun, task: str, method: str, seeds: list[int]
) -> list[dict[str, Any]]:
    """Runs several seeds of a compiled method as one vmapped batch.

    The batch is one program over the seeds' keys and instances
    (:meth:`~mbd.solver.ParametricSolve.batch`); each record's ``solve_seconds`` is the
    batch's time divided by the number of seeds, and ``batch`` says how many ran
    together. Results equal the one-seed runs up to the last bits (summation order).

    Args:
        compiled: the compiled method (its solver's ``batch`` compiles once more, for
            this batch size).
        task: task name.
        method: method name.
        seeds: the seeds.

    Returns:
        One record per seed, as :func:`run_planner` returns.

    Raises:
        mbd.compile.SolveTooLarge: when the batch does not fit in memory.
    """
    import jax
    import jax.numpy as jnp

    problems = [compiled.problem_for(s) for s in seeds]
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    t0 = time.perf_counter()
    run = compiled.solver.solve.compile_batch(keys, [p.instance() for p in problems])
    batch_compile = time.perf_counter() - t0
    if compiled.compile_seconds is None:
        compiled.compile_seconds = batch_compile
    t0 = time.perf_counter()
    results = jax.block_until_ready(run())
    per_seed = (time.perf_counter() - t0) / len(seeds)
    results = jax.tree_util.tree_map(np.asarray, results)
    records = []
    for i, (s, p) in enumerate(zip(seeds, problems, strict=True)):
        one = jax.tree_util.tree_map(lambda a, i=i: a[i], results)
        rec = _record(compiled, task, method, s, p, one, per_seed)
        rec["batch"] = len(seeds)
        rec["batch_compile_seconds"] = batch_compile
        records.append(rec)
    return records


def _record(
    compiled: CompiledRun,
    task: str,
    method: str,
    seed: int,
    problem: Any,
    result: Any,
    solve_seconds: float,
) -> dict[str, Any]:
    h = result.history
    n = int(compiled.config.num_samples)
    record: dict[str, Any] = {
        "key": run_key(task, method, seed),
        "task": task,
        "method": method,
        "seed": seed,
        "horizon": compiled.horizon,
        "num_samples": n,
        "iterations": compiled.num_updates,
        "config": dataclasses.asdict(compiled.config),
        "final_reward": float(result.reward),
        "violation": float(result.violation),
        "feasible": bool(result.violation <= 0.0),
        "reward_history": [float(v) for v in h.reward_mean],
        "best_reward_history": [float(v) for v in h.reward_max],
        "solve_seconds": solve_seconds,
        "compile_seconds": compiled.compile_seconds,
        "env_steps": int(compiled.num_updates * n * compiled.horizon + compiled.horizon),
        "devices": num_devices(compiled.parallel),
    }
    if compiled.task.metrics is not None and result.states is not None:
        record["metrics"] = compiled.task.metrics(problem, result)
    return record


def run_rl(task: str, seed: int, budget: Budget) -> dict[str, Any]:
    """Trains and evaluates the RL baseline on a task (see :mod:`mbd.baselines.rl`)."""
    from mbd.baselines import rl

    out = rl.train_and_evaluate(task, timesteps=budget.rl_timesteps, seed=seed)
    return {
        "key": run_key(task, "rl", seed),
        "task": task,
        "method": "rl",
        "seed": seed,
        "horizon": out["eval_steps"],
        "final_reward": out["reward"],
        "reward_history": out["eval_rewards"],
        "best_reward_history": [],
        "solve_seconds": out["train_seconds"],
        "compile_seconds": None,
        "env_steps": out["timesteps"],
        "rl": out,
    }


def json_safe(x: Any) -> Any:
    """``x`` (nested dicts, lists, tuples, scalars) with NaN and inf floats as None, so
    that JSON written from it is standard (``null``, not ``NaN``)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    return x


def append_run(path: Path, record: dict[str, Any]) -> None:
    """Appends one record as a JSON line; written, flushed and fsynced before returning."""
    line = json.dumps(json_safe(record), sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def load_runs(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """Reads ``runs.jsonl``; a torn last line (a run killed while writing) is dropped.

    Args:
        path: the file (missing: no runs).
        repair: also cut the torn tail from the file, so appends start on a fresh line.

    Returns:
        The records, in file order (a key written twice keeps its first record).
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    good = data.rfind(b"\n") + 1  # everything after the last newline is torn
    if repair and good < len(data):
        with open(path, "r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
    runs, seen = [], set()
    for line in data[:good].decode("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("key") in seen:
            continue
        seen.add(rec.get("key"))
        runs.append(rec)
    return runs


def plan_sweep(
    tasks: Iterable[str], methods: Iterable[str], seeds: Iterable[int], done: set[str]
) -> list[tuple[str, str, int]]:
    """The (task, method, seed) runs still to do, grouped by task and method.

    ``mbd+demo`` is skipped on tasks without a demonstration.
    """
    from mbd.tasks import get_task

    todo = []
    for t in tasks:
        for m in methods:
            if m == "mbd+demo" and not get_task(t).has_demo:
                continue
            for s in seeds:
                if run_key(t, m, s) not in done:
                    todo.append((t, m, s))
    return todo


def run_sweep(
    out: Path,
    tasks: list[str],
    methods: list[str],
    seeds: list[int],
    budget: Budget,
    on_start: Callable[[int, int, tuple[str, str, int]], None] | None = None,
    on_done: Callable[[int, int, dict[str, Any]], None] | None = None,
    batch: bool | None = None,
    parallel: Any = None,
) -> list[dict[str, Any]]:
    """Runs what is missing of a sweep, appending each finished run to ``out/runs.jsonl``.

    With ``batch``, a task's seeds for one method run as one vmapped batch
    (:func:`run_batch`) where they fit in memory, else one at a time.

    Args:
        out: the sweep folder (created if missing).
        tasks: task names (``mbd.tasks``).
        methods: method names (:func:`known_methods`).
        seeds: seeds.
        budget: the budget every method gets.
        on_start: ``on_start(i, n, (task, method, seed))`` before run i of the n to do.
        on_done: ``on_done(i, n, record)`` after run i is written.
        batch: run a task's seeds as one batch; None: on an accelerator, not on a CPU
            (where the samples of one seed already fill the cores: measured no faster,
            see docs/results.md).
        parallel: devices and chunks of every method's sample evaluation
            (:mod:`mbd.parallel`).

    Returns:
        The records written by this call.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUNS_FILE
    done = {r["key"] for r in load_runs(path, repair=True)}
    todo = plan_sweep(tasks, methods, seeds, done)
    if batch is None:
        import jax

        batch = jax.default_backend() != "cpu"
    written: list[dict[str, Any]] = []
    n, i = len(todo), 0
    # plan_sweep lists each task and method's seeds together: one group, one compile.
    for (t, m), runs in itertools.groupby(todo, key=lambda r: r[:2]):
        seeds_tm = [r[2] for r in runs]
        # One compile per task and method: the seeds differ only in the instance.
        run = None if m == "rl" else CompiledRun(t, m, budget, seeds_tm[0], parallel)
        batched = None
        if run is not None and batch and len(seeds_tm) > 1:
            if on_start is not None:
                for j, s in enumerate(seeds_tm):
                    on_start(i + j, n, (t, m, s))
            try:
                batched = run_batch(run, t, m, seeds_tm)
            except SolveTooLarge:
                batched = None  # does not fit as one batch: one seed at a time
        for j, s in enumerate(seeds_tm):
            if batched is not None:
                record = batched[j]
            else:
                if on_start is not None:
                    on_start(i + j, n, (t, m, s))
                record = run_rl(t, s, budget) if run is None else run_planner(run, t, m, s)
            if run is not None:
                # compile_seconds is the shared compile's; a run that reused it says so.
                record["reused_compile"] = run.seed != s
            append_run(path, record)
            written.append(record)
            if on_done is not None:
                on_done(i + j, n, record)
        i += len(seeds_tm)
    return written


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _order(methods: Iterable[str]) -> list[str]:
    ms = set(methods)
    return [m for m in METHOD_ORDER if m in ms] + sorted(ms - set(METHOD_ORDER))


def _mean_std(xs: list[float]) -> tuple[float, float]:
    a = np.asarray([np.nan if x is None else x for x in xs], dtype=np.float64)
    if a.size == 0:
        return math.nan, math.nan
    std = float(np.std(a, ddof=1)) if a.size > 1 else 0.0
    return float(np.mean(a)), std


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, method): reward mean and std over seeds, time per run.

    The std is the sample standard deviation over seeds (ddof = 1; 0 for one seed).
    Solve time and compile time are means over seeds, apart.

    Args:
        runs: records of ``runs.jsonl``.

    Returns:
        Rows with task, method, seeds, reward_mean, reward_std, solve_seconds,
        compile_seconds (None when not measured, e.g. RL), num_samples, iterations,
        horizon, env_steps.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["method"]), []).append(r)
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    rows = []
    for t in tasks:
        for m in _order(mm for (tt, mm) in groups if tt == t):
            g = sorted(groups[(t, m)], key=lambda r: r["seed"])
            mean, std = _mean_std([r["final_reward"] for r in g])
            solve, _ = _mean_std([r["solve_seconds"] for r in g])
            comp = [r["compile_seconds"] for r in g if r.get("compile_seconds") is not None]
            rows.append(
                {
                    "task": t,
                    "method": m,
                    "seeds": len(g),
                    "reward_mean": mean,
                    "reward_std": std,
                    "solve_seconds": solve,
                    "compile_seconds": float(np.mean(comp)) if comp else None,
                    "num_samples": g[0].get("num_samples"),
                    "iterations": g[0].get("iterations"),
                    "horizon": g[0].get("horizon"),
                    "env_steps": g[0].get("env_steps"),
                }
            )
    return rows


def _num(x: float) -> str:
    s = f"{x:.3f}"
    return "0.000" if s == "-0.000" else s


def _fmt_time(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    if s < 60:
        return f"{s:.2f} s"
    m, sec = divmod(s, 60)
    return f"{int(m)} m {sec:.1f} s"


def table_markdown(
    rows: list[dict[str, Any]],
    paper: dict[str, dict[str, float]] | None = None,
    paper_seconds: dict[str, float] | None = None,
) -> str:
    """Markdown of the reward table (Table 2) and the time table (Table 3).

    Args:
        rows: :func:`summarize`'s rows.
        paper: optional published rewards, task -> method -> reward; the tasks of ``rows``
            found there get a third table with them, in the same columns, and the ratio of
            measured MBD reward to the published one.
        paper_seconds: optional published MBD time per run, task -> seconds.
    """
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    methods = _order({r["method"] for r in rows})
    cell = {(r["task"], r["method"]): r for r in rows}
    head = "| task | " + " | ".join(methods) + " |"
    sep = "|---|" + "---|" * len(methods)
    lines = [
        "## Reward (mean per-step reward of the returned plan, mean ± std over seeds)",
        "",
        head,
        sep,
    ]

    def reward_cell(r: dict[str, Any]) -> str:
        return f"{_num(r['reward_mean'])} ± {_num(r['reward_std'])} ({r['seeds']})"

    def time_cell(r: dict[str, Any]) -> str:
        if r["compile_seconds"] is None:
            return _fmt_time(r["solve_seconds"])
        return f"{_fmt_time(r['solve_seconds'])} (+ {_fmt_time(r['compile_seconds'])} compile)"

    def body(fmt: Callable[[dict[str, Any]], str]) -> list[str]:
        out = []
        for t in tasks:
            cells = ["-" if (t, m) not in cell else fmt(cell[(t, m)]) for m in methods]
            out.append(f"| {t} | " + " | ".join(cells) + " |")
        return out

    lines += body(reward_cell)
    lines += [
        "",
        "(n) = number of seeds.",
        "",
        "## Time per run (solve, mean over seeds; compile time apart)",
        "",
        head,
        sep,
    ]
    lines += body(time_cell)
    budget = sorted(
        {
            (r["task"], r["num_samples"], r["iterations"], r["horizon"])
            for r in rows
            if r["method"] != "rl"
        }
    )
    if budget:
        lines += [
            "",
            "Budget per task: "
            + "; ".join(f"{t}: {n} samples x {k} iterations, horizon {h}" for t, n, k, h in budget)
            + ".",
        ]
    published = [t for t in tasks if paper and t in paper]
    if published:
        cols = [m for m in methods if any(m in paper[t] for t in published)]
        extra = ["MBD measured / paper"] if "mbd" in cols else []
        if paper_seconds:
            extra.append("paper MBD time")
        lines += [
            "",
            "## The paper's numbers (Table 2; its own budget and hardware)",
            "",
            "| task | " + " | ".join(cols + extra) + " |",
            "|---|" + "---|" * (len(cols) + len(extra)),
        ]
        for t in published:
            cells = [_num(paper[t][m]) if m in paper[t] else "-" for m in cols]
            if "mbd" in cols:
                r, ref = cell.get((t, "mbd")), paper[t].get("mbd")
                ok = r is not None and ref and math.isfinite(r["reward_mean"])
                cells.append(f"{r['reward_mean'] / ref:.2f}" if ok else "-")
            if paper_seconds:
                cells.append(_fmt_time(paper_seconds.get(t)))
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


CSV_FIELDS = (
    "task",
    "method",
    "seeds",
    "reward_mean",
    "reward_std",
    "solve_seconds",
    "compile_seconds",
    "num_samples",
    "iterations",
    "horizon",
    "env_steps",
)


def table_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with one row per (task, method), columns :data:`CSV_FIELDS`."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


def _color(method: str) -> str:
    """A fixed colour per method, the same in every panel and every report."""
    if method in METHOD_ORDER:
        return f"C{METHOD_ORDER.index(method)}"
    return f"C{len(METHOD_ORDER) + sum(map(ord, method)) % 3}"


def plot_curves(runs: list[dict[str, Any]], path: Path):
    """Mean sample reward per iteration, mean over seeds, every method, one panel per task.

    One legend names the methods (the same colour in every panel); it sits under the
    panels, outside them, so that it covers no curve.

    Args:
        runs: run records with ``task``, ``method`` and ``reward_history`` (K,).
        path: PNG file to write.

    Returns:
        The :class:`matplotlib.figure.Figure` written (closed in pyplot; for inspection).
    """
    from mbd.plotting import _pyplot, legend_below

    plt = _pyplot()
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    ncol = min(3, max(1, len(tasks)))
    nrow = math.ceil(len(tasks) / ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(5 * ncol, 3.6 * nrow + 0.5), squeeze=False, layout="constrained"
    )
    for ax, t in zip(axes.ravel(), tasks, strict=False):
        sub = [r for r in runs if r["task"] == t]
        for m in _order({r["method"] for r in sub}):
            hs = [r["reward_history"] for r in sub if r["method"] == m and r.get("reward_history")]
            if not hs or m == "rl":
                continue
            k = min(len(h) for h in hs)
            a = np.asarray([[np.nan if v is None else v for v in h[:k]] for h in hs], float)
            mu = np.nanmean(a, axis=0)
            x = np.arange(1, k + 1)
            (line,) = ax.plot(x, mu, label=m, color=_color(m))
            if len(hs) > 1:
                sd = np.nanstd(a, axis=0)
                ax.fill_between(x, mu - sd, mu + sd, color=line.get_color(), alpha=0.15)
        ax.set_title(t)
        ax.set_xlabel("iteration")
        ax.set_ylabel("mean sample reward")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(tasks) :]:
        ax.axis("off")
    labels = {lab for ax in axes.ravel() for lab in ax.get_legend_handles_labels()[1]}
    if labels:
        legend_below(fig, ncols=min(len(labels), 6))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig
