"""MBD as a black-box minimizer (paper Appendix A.2): one call, one summary.

problem = make_user_problem(lambda y: jnp.sum((y - 0.3) ** 2), dim=50, low=-1, high=1)
result = minimize(problem, seed=0)                  # the measured-best configuration
result = minimize(problem, BBO_CONFIG, seed=0)      # the paper's MBD
result.best_value, result.best_point, result.evaluations

By default :func:`minimize` runs :func:`default_config`: MBD with the learned full noise
shape, the adaptive noise size and lambda 0.5 (``mbd-shaped`` of :mod:`mbd.bbo.compare`),
the configuration that came within 10x of pycma's CMA-ES on 26 of 27 measured cases
where the paper's MBD did on 17 (docs/results.md, "Every method at equal budget",
``bash benchmarks/bbo_adaptive.sh``). ``max_evaluations=`` sets its budget.

Compile once: the whole solve is one compiled program per problem function, dimension,
bounds, configuration and budget, cached in this process, with the seed's key as its
argument; a second call with another seed runs that program again without compiling.

Precision: every value is centred at the best value found so far, in the function's own
dtype, before it is cast to the solver's float32 (Eq. 2's weights do not change under a
shift of the values), so a function whose minimum is 100 is solved as precisely as the
same function minus 100. With ``jax_enable_x64`` on, the points are passed to the
function in float64 and a float64 function is evaluated, compared and reported in
float64.

With ``restarts=Restarts()`` the same budget (samples x updates of the config) is spent
on a sequence of runs with growing sample counts, as IPOP-CMA-ES does (Auger and Hansen,
2005): a run ends when its best value stops improving, and the next starts afresh with
``popsize_factor`` times the samples.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbd.bbo.compare import shaped_config
from mbd.bbo.functions import BBOProblem
from mbd.problem import Objective
from mbd.solver import MBDConfig, MBDResult, StepInfo, make_solver

BBO_CONFIG = MBDConfig(num_samples=64, num_steps=101, temperature=1.0)
"""The paper's MBD on black-box problems: the authors' script (64 samples, 100 diffusion
steps, lambda 1), reference reading; 100 updates of 64 samples = 6,400 evaluations.
``minimize(problem, BBO_CONFIG)`` runs it; the default is :func:`default_config`."""


def default_samples(dim: int) -> int:
    """Samples per update of :func:`default_config`: d, clipped to [20, 100]; the
    measured points were 20 at d = 10, 40 at d = 40 and 100 at d = 200."""
    return int(min(max(dim, 20), 100))


def default_budget(dim: int) -> int:
    """Evaluations :func:`default_config` spends without ``max_evaluations``:
    max(10,000, 100 d); measured: 10,000 at d = 10, 8,000 at d = 40, 20,000 at d = 200."""
    return max(10_000, 100 * int(dim))


def check_max_evaluations(max_evaluations: Any) -> int:
    """``max_evaluations`` as an int; raises a one-line ValueError unless it is an
    integer >= 1 (a bool is not)."""
    v = max_evaluations
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise ValueError(f"max_evaluations must be an integer >= 1 (got {v!r})")
    return int(v)


def default_config(dim: int, max_evaluations: int | None = None) -> MBDConfig:
    """The best configuration this project has measured on black-box functions, sized
    for d and a budget.

    MBD with the learned noise shape (full up to
    :data:`~mbd.bbo.compare.SHAPED_FULL_MAX_DIM` dimensions, diagonal above), the
    adaptive noise size and lambda = 0.5: ``mbd-shaped`` of :mod:`mbd.bbo.compare`. On
    nine rotated, ill-conditioned and multimodal functions at d = 10, 40 and 200, 5 seeds
    each, it came within a factor of 10 of pycma's CMA-ES's median precision on 26 of
    the 27 cases, the paper's MBD (:data:`BBO_CONFIG`) on 17 (docs/results.md, "Every
    method at equal budget, d = 10, 40 and 200"; ``bash benchmarks/bbo_adaptive.sh``).
    That measurement used 20 samples at d = 10, 40 at d = 40 and 100 at d = 200
    (:func:`default_samples`) and 1,000 d, 200 d and 100 d evaluations
    (:func:`default_budget`).

    Args:
        dim: d >= 1.
        max_evaluations: evaluations of samples to spend (>= 1; None:
            :func:`default_budget`); ``minimize`` adds one for the final estimate.

    Returns:
        An :class:`~mbd.MBDConfig` whose samples x updates is at most the budget: the
        samples of :func:`default_samples`, but at most a tenth of the budget (at least
        2, at most the budget), and as many updates as fit.

    Raises:
        ValueError: ``max_evaluations`` not an integer >= 1.
    """
    budget = default_budget(dim) if max_evaluations is None else max_evaluations
    budget = check_max_evaluations(budget)
    n = min(default_samples(dim), max(2, budget // 10), budget)
    return shaped_config((budget // n) * n, n, int(dim))


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
    config: MBDConfig | None = None,
    seed: int = 0,
    progress: Callable[[int, StepInfo], None] | None = None,
    restarts: Restarts | None = None,
    *,
    max_evaluations: int | None = None,
) -> MinimizeResult:
    """Minimizes a :class:`BBOProblem` with MBD (Alg. 1 on reward = -value).

    The default configuration is :func:`default_config`: the learned full noise shape,
    the adaptive noise size and lambda 0.5, with d samples (clipped to [20, 100]) per
    update and max(10,000, 100 d) evaluations, the configuration that came within 10x of
    pycma's CMA-ES on 26 of 27 measured cases (docs/results.md, "Every method at equal
    budget, d = 10, 40 and 200"; ``bash benchmarks/bbo_adaptive.sh``). The paper's MBD
    is ``config=BBO_CONFIG``.

    The solve compiles once per problem function, dimension, bounds, configuration and
    budget (a cache in this process); another seed reuses the program.

    Args:
        problem: from :func:`~mbd.bbo.make_test_problem` or :func:`~mbd.bbo.make_user_problem`.
        config: solver hyper-parameters; None: :func:`default_config` for the problem's
            dimension and ``max_evaluations``; :data:`BBO_CONFIG`: the paper's MBD.
        seed: random seed.
        progress: optional ``progress(k, info)`` after each update k (0-based), with the
            values of ``info`` as rewards (minus the function's values); not with
            restarts.
        restarts: None for one run of ``config``; a :class:`Restarts` to spend the same
            budget on runs with growing sample counts (IPOP).
        max_evaluations: evaluations of samples to spend (an integer >= 1; one more
            evaluates the final estimate of each run). With ``config`` None it sizes
            :func:`default_config`; with a ``config`` it sets its number of updates to
            ``max_evaluations // num_samples``. None: the config's own budget.

    Returns:
        :class:`MinimizeResult`.

    Raises:
        ValueError: a bad ``max_evaluations`` or one below the config's samples; the
            function returned NaN or inf for every sample of every update; a progress
            callback together with restarts.
    """
    if max_evaluations is not None:
        max_evaluations = check_max_evaluations(max_evaluations)
    if config is None:
        config = default_config(problem.dim, max_evaluations)
    elif max_evaluations is not None:
        updates = max_evaluations // config.num_samples
        if updates < 1:
            raise ValueError(
                f"max_evaluations must be at least the config's num_samples "
                f"({config.num_samples}) (got {max_evaluations})"
            )
        extra = 1 if config.reading == "reference" else 0  # num_steps = updates + extra
        config = dataclasses.replace(config, num_steps=updates + extra)
    if restarts is not None:
        if progress is not None:
            raise ValueError("minimize: progress callbacks are not supported with restarts")
        return _minimize_restarts(problem, config, seed, restarts)
    program = _program(problem, config, None, progress is not None)
    (res, used, _), compile_s, seconds = program.run(jax.random.key(seed), progress)
    h = res.history
    _check_valid(problem, [h])
    best, final = run_values(res)
    n = config.num_samples
    k = int(used)
    return MinimizeResult(
        best_value=min(final, float(best[-1])),
        best_point=np.asarray(res.solution),
        final_value=final,
        evaluations=k * n + 1,
        curve_evaluations=n * np.arange(1, k + 1),
        curve_best=best,
        curve_mean=-np.asarray(h.reward_mean, np.float64),
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


# --------------------------------------------------------------------------------------
# The compiled solve, cached
# --------------------------------------------------------------------------------------


class _Stop(NamedTuple):
    """When a run of the restarts ends (see :class:`Restarts`); hashable for the cache."""

    window: int
    tol_abs: float
    tol_rel: float
    tol_x: float


class _Program:
    """One compiled solve: ``run(key)``, the key its only argument (compiled on the first
    call). It holds the problem's function, so that the function's id, part of the cache
    key, stays unique while the program is cached."""

    def __init__(self, fn: Callable, make_run: Callable, with_progress: bool):
        self.fn = fn
        self._progress: list[Callable | None] = [None]  # read by the host callback
        self._jit = jax.jit(make_run(self._progress if with_progress else None))
        self._compiled = None

    def run(self, key, progress=None) -> tuple[Any, float, float]:
        """(outputs, compile seconds of this call (0 when compiled before), run seconds)."""
        compile_s = 0.0
        if self._compiled is None:
            t = time.perf_counter()
            self._compiled = self._jit.lower(key).compile()
            compile_s = time.perf_counter() - t
        self._progress[0] = progress
        try:
            t = time.perf_counter()
            out = jax.block_until_ready(self._compiled(key))
            return out, compile_s, time.perf_counter() - t
        finally:
            self._progress[0] = None


CACHE_SIZE = 32
"""Compiled solves :func:`minimize` keeps (least recently used dropped first)."""

_CACHE: collections.OrderedDict[tuple, _Program] = collections.OrderedDict()


def clear_cache() -> None:
    """Drops every compiled solve :func:`minimize` keeps (and the functions they hold)."""
    _CACHE.clear()


def _program(
    problem: BBOProblem, config: MBDConfig, stop: _Stop | None, with_progress: bool
) -> _Program:
    """The cached compiled solve of this problem structure, config and stop rule."""
    key = (
        id(problem.minimize),
        problem.dim,
        np.asarray(problem.low, np.float32).tobytes(),
        np.asarray(problem.high, np.float32).tobytes(),
        config,
        stop,
        with_progress,
        bool(jax.config.jax_enable_x64),
        jax.default_backend(),
    )
    prog = _CACHE.get(key)
    if prog is not None and prog.fn is problem.minimize:
        _CACHE.move_to_end(key)
        return prog
    prog = _Program(
        problem.minimize,
        lambda slot: _make_run(problem, config, stop, slot),
        with_progress,
    )
    _CACHE[key] = prog
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return prog


def _make_run(problem: BBOProblem, config: MBDConfig, stop: _Stop | None, progress_slot):
    """``solve(key) -> (MBDResult, updates taken, stop code)``: the whole solve in one scan.

    Each update's values are centred at the best value found so far, in the function's
    own dtype, before the cast to the solver's float32: the weights (Eq. 2, 10d) are
    unchanged by a shift of the rewards, but the centred ones keep their digits however
    large the values' offset. The history holds the uncentred values (as rewards). With
    a ``stop``, the updates after a run stagnates are no-ops (no evaluations).

    Stop codes: 0 none (budget), 1 stagnation, 2 noise size below ``tol_x``.
    """
    f = problem.minimize
    point_dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    dim = problem.dim

    def value(y):  # f(y) in its own dtype, y: real point (d,)
        return jnp.asarray(f(y.astype(point_dtype))).reshape(())

    y_spec = jax.ShapeDtypeStruct((dim,), jnp.float32)
    value_dtype = jnp.result_type(jax.eval_shape(value, y_spec).dtype, jnp.float32)

    def objective(center) -> Objective:
        def reward(y):  # -(f(y) - c), cast to float32 only after centring
            # The z-scored weights of Eq. 2 / 10d do not change when every reward of a
            # batch moves by the same c; only the digits float32 keeps do.
            return -(value(y).astype(value_dtype) - center).astype(jnp.float32)

        return Objective(
            fn=reward, shape=(dim,), low=problem.low, high=problem.high, name=problem.name
        )

    num_updates = config.num_updates
    plain = objective(jnp.zeros((), value_dtype))
    base = make_solver(plain, config)

    def report(i, info):  # host side: the user's progress callback, if one is set
        if progress_slot[0] is not None:
            progress_slot[0](int(i), info)

    def _bbo_solve(key):
        k_init, k_steps = jax.random.split(key)
        state = base.init(k_init)
        keys = jax.random.split(k_steps, num_updates)

        def update(k, st, center):
            new, info = make_solver(objective(center), config).step(k, st)
            # Keep the carry's dtypes (with jax_enable_x64 some would widen).
            new = jax.tree_util.tree_map(lambda a, b: a.astype(b.dtype), new, st)
            return new, info

        def body(carry, xs):
            st, best, hist, code, used = carry
            k, i = xs
            center = jnp.where(jnp.isfinite(best), best, jnp.zeros((), value_dtype))
            active = code == 0
            if stop is None:
                st, info = update(k, st, center)
            else:
                info_shape = jax.eval_shape(update, k, st, center)[1]
                blank = jax.tree_util.tree_map(
                    lambda a: jnp.full(a.shape, jnp.nan, a.dtype), info_shape
                )
                blank = blank._replace(fallback=jnp.zeros((), info_shape.fallback.dtype))
                st, info = jax.lax.cond(
                    active, lambda s: update(k, s, center), lambda s: (s, blank), st
                )
            ok = jnp.isfinite(info.reward_max)
            value_k = jnp.where(ok, center - info.reward_max.astype(value_dtype), jnp.inf)
            mean_k = jnp.where(
                info.valid_fraction > 0, center - info.reward_mean.astype(value_dtype), jnp.nan
            )
            info = info._replace(reward_max=-value_k, reward_mean=-mean_k)
            best = jnp.minimum(best, value_k)
            used = used + active.astype(jnp.int32)
            if stop is not None:
                hist = hist.at[i].set(value_k)
                w = stop.window
                recent = jax.lax.dynamic_slice(hist, (jnp.maximum(i - w + 1, 0),), (w,))
                lo, hi = jnp.min(recent), jnp.max(recent)
                flat = (i >= w - 1) & (hi - lo <= stop.tol_abs + stop.tol_rel * jnp.abs(lo))
                small = info.noise_std < stop.tol_x
                new_code = jnp.where(small, 2, jnp.where(flat, 1, 0)).astype(jnp.int32)
                code = jnp.where(active, new_code, code)
            if progress_slot is not None:
                jax.debug.callback(report, i, info, ordered=True)
            return (st, best, hist, code, used), info

        hist = jnp.full((num_updates if stop is not None else 1,), jnp.inf, value_dtype)
        inf = jnp.full((), jnp.inf, value_dtype)
        zero = jnp.zeros((), jnp.int32)
        init = (state, inf, hist, zero, zero)
        xs = (keys, jnp.arange(num_updates, dtype=jnp.int32))
        (state, _, _, code, used), history = jax.lax.scan(body, init, xs)
        z = base.output(state)
        y = plain.decode(z)
        final = value(y).astype(value_dtype)
        res = MBDResult(
            z=z,
            solution=y,
            reward=-final,
            violation=jnp.zeros((), jnp.float32),
            states=None,
            rewards=None,
            history=history,
            iterates=None,
        )
        return res, used, code

    return _bbo_solve


def _minimize_restarts(
    problem: BBOProblem, config: MBDConfig, seed: int, rs: Restarts
) -> MinimizeResult:
    """IPOP: runs with samples x popsize_factor each time, until the budget is spent.

    Each run is a cached compiled program (see :func:`minimize`): the first run, and any
    later one with the same samples and updates, reuses the program of an earlier call.
    """
    budget = config.num_samples * config.num_updates
    extra = 1 if config.reading == "reference" else 0  # num_steps = updates + extra
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
        window = rs.window or 10 + math.ceil(30 * problem.dim / samples)
        stop = _Stop(min(window, updates), rs.tol_abs, rs.tol_rel, rs.tol_x)
        # The first run draws as one plain solve does, so it matches it until it stops.
        k = key if r == 0 else jax.random.fold_in(key, r)
        (res, used, code), c_s, r_s = _program(problem, cfg, stop, False).run(k)
        compile_s, seconds = compile_s + c_s, seconds + r_s
        used, code = int(used), int(code)
        h = jax.tree_util.tree_map(lambda a, u=used: np.asarray(a)[:u], res.history)
        res = res.replace(history=h)
        best, final = run_values(res)
        run_best = min(final, float(best[-1]) if used else np.inf)
        curve_e.extend(spent + samples * np.arange(1, used + 1))
        curve_b.extend(np.minimum(best, overall))
        curve_m.extend(-np.asarray(h.reward_mean, np.float64))
        spent += used * samples + 1
        overall = min(overall, run_best)
        runs.append(RunRecord(samples, used, used * samples + 1, run_best, _STOPS[code]))
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
