"""MBD as a black-box minimizer (paper Appendix A.2): one call, one summary.

problem = make_user_problem(lambda y: jnp.sum((y - 0.3) ** 2), dim=50, low=-1, high=1)
result = minimize(problem, seed=0)
result.best_value, result.best_point, result.evaluations

With ``restarts=Restarts()`` the same budget (samples x updates of the config) is spent
on a sequence of runs with growing sample counts, as IPOP-CMA-ES does (Auger and Hansen,
2005): a run ends when its best value stops improving, and the next starts afresh with
``popsize_factor`` times the samples.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mbd.bbo.functions import BBOProblem
from mbd.compile import compile_and_run
from mbd.solver import MBDConfig, MBDResult, make_solver

BBO_CONFIG = MBDConfig(num_samples=64, num_steps=101, temperature=1.0)
"""Defaults for black-box problems: the authors' script (64 samples, 100 diffusion steps,
lambda 1), reference reading; 100 updates of 64 samples = 6,400 evaluations."""


@dataclasses.dataclass(frozen=True)
class Restarts:
    """Restarts with growing sample counts (IPOP) under the config's one budget.

    The budget is the config's: ``num_samples x num_updates`` evaluations (plus one per
    run for its final estimate). Run r uses ``num_samples * popsize_factor^r`` samples and
    a schedule of as many updates as the budget left allows; it ends early when the best
    sample values of its last ``window`` updates lie within ``tol_abs + tol_rel |min|``
    of each other (CMA-ES's TolHistFun; window 10 + ceil(30 d / samples) when None), or
    when the noise size falls below ``tol_x`` (normalized units). A run that
    could not take ``min_updates`` updates is not started.

    Attributes:
        max_restarts: restarts after the first run (>= 0).
        popsize_factor: growth of the sample count per restart (>= 1).
        window: updates whose best values must be level to end a run (None: from d
            and the samples).
        tol_abs: absolute part of the level threshold (>= 0).
        tol_rel: relative part of the level threshold (>= 0).
        tol_x: noise size below which a run ends (>= 0).
        min_updates: fewest updates a run is started with (>= 2).
    """

    max_restarts: int = 9
    popsize_factor: float = 2.0
    window: int | None = None
    tol_abs: float = 1e-12
    tol_rel: float = 1e-6
    tol_x: float = 1e-9
    min_updates: int = 10

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError(f"Restarts.{name} must be {rule} (got {getattr(self, name)!r})")

        def is_int(v) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool)

        if not is_int(self.max_restarts) or self.max_restarts < 0:
            raise bad("max_restarts", "an integer >= 0")
        f = self.popsize_factor
        if isinstance(f, bool) or not isinstance(f, int | float) or not 1.0 <= f < np.inf:
            raise bad("popsize_factor", "a finite number >= 1")
        if self.window is not None and (not is_int(self.window) or self.window < 1):
            raise bad("window", "None or an integer >= 1")
        for name in ("tol_abs", "tol_rel", "tol_x"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v < np.inf:
                raise bad(name, "a finite number >= 0")
        if not is_int(self.min_updates) or self.min_updates < 2:
            raise bad("min_updates", "an integer >= 2")


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run of a restarted minimization.

    Attributes:
        samples: samples per update.
        updates: updates it took.
        evaluations: evaluations it spent (samples x updates, plus its final estimate).
        best_value: its lowest value (best sample or final estimate).
        stopped: why it ended: ``stagnation``, ``noise`` (size below tol_x) or ``budget``.
    """

    samples: int
    updates: int
    evaluations: int
    best_value: float
    stopped: str


@dataclasses.dataclass(frozen=True)
class MinimizeResult:
    """What :func:`minimize` returns.

    Attributes:
        best_value: lowest value found (the final estimate or the best sample).
        best_point: MBD's final estimate in real units, shape (d,) (its value is
            ``final_value``; the solver does not keep sample points, so where a sample
            was better only its value is known).
        final_value: value at MBD's final estimate Ybar.
        evaluations: function evaluations spent (samples plus the final estimate).
        curve_evaluations: cumulative evaluations after each update, (K,).
        curve_best: best sample value so far after each update, (K,).
        curve_mean: mean sample value of each update, (K,).
        seconds: solve wall time, compilation excluded.
        compile_seconds: compilation time.
        result: the solver's :class:`~mbd.MBDResult` (with restarts: the run whose final
            estimate was best; its history covers the updates that run took).
        runs: with restarts, one :class:`RunRecord` per run; else empty.
    """

    best_value: float
    best_point: np.ndarray
    final_value: float
    evaluations: int
    curve_evaluations: np.ndarray
    curve_best: np.ndarray
    curve_mean: np.ndarray
    seconds: float
    compile_seconds: float
    result: MBDResult
    runs: tuple[RunRecord, ...] = ()

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays but the curves)."""
        return {
            "best_value": self.best_value,
            "final_value": self.final_value,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "compile_seconds": self.compile_seconds,
            "curve_evaluations": self.curve_evaluations.tolist(),
            "curve_best": self.curve_best.tolist(),
            "curve_mean": self.curve_mean.tolist(),
            "runs": [dataclasses.asdict(r) for r in self.runs],
        }


def minimize(
    problem: BBOProblem,
    config: MBDConfig = BBO_CONFIG,
    seed: int = 0,
    progress=None,
    restarts: Restarts | None = None,
) -> MinimizeResult:
    """Minimizes a :class:`BBOProblem` with MBD (Alg. 1 on reward = -value).

    Args:
        problem: from :func:`~mbd.bbo.make_test_problem` or :func:`~mbd.bbo.make_user_problem`.
        config: solver hyper-parameters (default :data:`BBO_CONFIG`).
        seed: random seed.
        progress: optional per-update callback, see :func:`mbd.make_solver` (not with
            restarts).
        restarts: None for one run of ``config``; a :class:`Restarts` to spend the same
            budget on runs with growing sample counts (IPOP).

    Returns:
        :class:`MinimizeResult`.

    Raises:
        ValueError: the function returned NaN or inf for every sample of every update;
            a progress callback together with restarts.
    """
    if restarts is not None:
        if progress is not None:
            raise ValueError("minimize: progress callbacks are not supported with restarts")
        return _minimize_restarts(problem, config, seed, restarts)
    solver = make_solver(problem.objective(), config, progress=progress)
    res, compile_s, seconds = compile_and_run(solver.solve, jax.random.key(seed))
    h = res.history
    _check_valid(problem, [h])
    best, final = run_values(res)
    mean = -np.asarray(h.reward_mean, np.float64)
    n = config.num_samples
    k = len(best)
    return MinimizeResult(
        best_value=min(final, float(best[-1])),
        best_point=np.asarray(res.solution),
        final_value=float(-res.reward),
        evaluations=k * n + 1,
        curve_evaluations=n * np.arange(1, k + 1),
        curve_best=best,
        curve_mean=mean,
        seconds=seconds,
        compile_seconds=compile_s,
        result=res,
    )


def _check_valid(problem: BBOProblem, histories) -> None:
    if not any(np.any(np.asarray(h.valid_fraction) > 0) for h in histories):
        raise ValueError(
            f"{problem.name}: the function returned NaN or inf for every sample; "
            "check it on points of the box"
        )


def run_values(result: MBDResult) -> tuple[np.ndarray, float]:
    """A solve's values as a minimization: the best sample value so far after each
    update, (K,) (``inf`` until a finite one), and the final estimate's value (``inf``
    if not finite)."""
    best = np.asarray(-result.history.reward_max, np.float64)
    best = np.minimum.accumulate(np.where(np.isfinite(best), best, np.inf))
    final = float(-result.reward)
    return best, final if np.isfinite(final) else np.inf


def _stoppable_solve(solver, num_updates: int, window: int, rs: Restarts):
    """``run(key) -> (MBDResult, updates taken, stop code)``: a solve whose updates turn
    into no-ops (no evaluations) once the run stagnates (see :class:`Restarts`).

    Stop codes: 0 none (budget), 1 stagnation, 2 noise size below ``tol_x``.
    """

    def run(key):
        k_init, k_steps = jax.random.split(key)
        state = solver.init(k_init)
        keys = jax.random.split(k_steps, num_updates)
        info_shape = jax.eval_shape(solver.step, keys[0], state)[1]
        blank = jax.tree_util.tree_map(lambda a: jnp.full(a.shape, jnp.nan, a.dtype), info_shape)
        blank = blank._replace(fallback=jnp.zeros((), info_shape.fallback.dtype))

        def body(carry, xs):
            st, hist, stop, used = carry
            key, i = xs
            st, info = jax.lax.cond(
                stop > 0, lambda s: (s, blank), lambda s: solver.step(key, s), st
            )
            value = jnp.where(jnp.isfinite(info.reward_max), -info.reward_max, jnp.inf)
            hist = hist.at[i].set(value)
            recent = jax.lax.dynamic_slice(hist, (jnp.maximum(i - window + 1, 0),), (window,))
            lo, hi = jnp.min(recent), jnp.max(recent)
            flat = (i >= window - 1) & (hi - lo <= rs.tol_abs + rs.tol_rel * jnp.abs(lo))
            small = info.noise_std < rs.tol_x
            code = jnp.where(small, 2, jnp.where(flat, 1, 0)).astype(jnp.int32)
            used = used + (stop == 0).astype(jnp.int32)
            stop = jnp.where(stop > 0, stop, code)
            return (st, hist, stop, used), info

        hist = jnp.full((num_updates,), jnp.inf, jnp.float32)
        init = (state, hist, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        (state, _, stop, used), history = jax.lax.scan(body, init, (keys, jnp.arange(num_updates)))
        z = solver.output(state)
        solution, reward, viol, _, _ = solver.replay(z)
        res = MBDResult(
            z=z,
            solution=solution,
            reward=reward,
            violation=viol,
            states=None,
            rewards=None,
            history=history,
            iterates=None,
        )
        return res, used, stop

    return run


def _minimize_restarts(
    problem: BBOProblem, config: MBDConfig, seed: int, rs: Restarts
) -> MinimizeResult:
    """IPOP: runs with samples x popsize_factor each time, until the budget is spent."""
    budget = config.num_samples * config.num_updates
    extra = 1 if config.reading == "reference" else 0  # num_steps = updates + extra
    objective = problem.objective()
    key = jax.random.key(seed)
    spent, samples = 0, config.num_samples
    runs, results, finals = [], [], []
    curve_e, curve_b, curve_m = [], [], []
    seconds = compile_s = 0.0
    overall = np.inf
    for r in range(rs.max_restarts + 1):
        updates = (budget - spent) // samples
        if updates < rs.min_updates and r > 0:
            break
        updates = max(updates, 1)
        cfg = dataclasses.replace(config, num_samples=samples, num_steps=updates + extra)
        solver = make_solver(objective, cfg)
        window = rs.window or 10 + math.ceil(30 * problem.dim / samples)
        window = min(window, updates)
        # The first run draws as one plain solve does, so it matches it until it stops.
        k = key if r == 0 else jax.random.fold_in(key, r)
        (res, used, stop), c_s, r_s = compile_and_run(
            _stoppable_solve(solver, updates, window, rs), k
        )
        compile_s, seconds = compile_s + c_s, seconds + r_s
        used, stop = int(used), int(stop)
        h = jax.tree_util.tree_map(lambda a, u=used: np.asarray(a)[:u], res.history)
        res = res.replace(history=h)
        best, final = run_values(res)
        run_best = min(final, float(best[-1]) if used else np.inf)
        curve_e.extend(spent + samples * np.arange(1, used + 1))
        curve_b.extend(np.minimum(best, overall))
        curve_m.extend(-np.asarray(h.reward_mean, np.float64))
        spent += used * samples + 1
        overall = min(overall, run_best)
        runs.append(RunRecord(samples, used, used * samples + 1, run_best, _STOPS[stop]))
        results.append(res)
        finals.append(final)
        if rs.popsize_factor > 1.0:
            samples = max(samples + 1, round(samples * rs.popsize_factor))
    _check_valid(problem, [x.history for x in results])
    pick = int(np.argmin(finals))
    return MinimizeResult(
        best_value=overall,
        best_point=np.asarray(results[pick].solution),
        final_value=finals[pick],
        evaluations=spent,
        curve_evaluations=np.asarray(curve_e, np.int64),
        curve_best=np.asarray(curve_b, np.float64),
        curve_mean=np.asarray(curve_m, np.float64),
        seconds=seconds,
        compile_seconds=compile_s,
        result=results[pick],
        runs=tuple(runs),
    )


_STOPS = {0: "budget", 1: "stagnation", 2: "noise"}


def plot_convergence(result: MinimizeResult, path, title: str = "") -> None:
    """Best and mean sample value against evaluations (log scale where positive).

    Args:
        result: from :func:`minimize`.
        path: PNG file to write.
        title: figure title.
    """
    from mbd.plotting import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    ax.plot(result.curve_evaluations, result.curve_mean, label="mean of the samples", alpha=0.8)
    ax.plot(result.curve_evaluations, result.curve_best, label="best sample so far", lw=2)
    ax.axhline(
        result.final_value,
        color="k",
        ls="--",
        lw=1,
        label=f"final estimate: {result.final_value:.4g}",
    )
    vals = np.concatenate([result.curve_mean, result.curve_best, [result.final_value]])
    if np.all(vals[np.isfinite(vals)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("function evaluations")
    ax.set_ylabel("value (lower is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
