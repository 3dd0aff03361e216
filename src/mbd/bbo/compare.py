"""MBD and the usual zeroth-order optimizers behind one interface, at equal budgets.

Every method minimizes a :class:`~mbd.bbo.functions.BBOProblem` over the normalized box
z in [-1, 1]^d (mapped onto the domain; points outside are clipped, as MBD's samples
are), proposes ``popsize`` points per generation for ``budget // popsize`` generations,
and at the end evaluates its own recommendation once (MBD: the estimate Ybar; CMA-ES and
SNES: the distribution mean; Shiwa: its recommendation; random search: nothing new). So
each run uses ``budget`` evaluations plus at most one, and reports the best value among
the points it evaluated.

Methods (registry :data:`METHODS`):

- ``mbd``: this library's Alg. 1 (reference reading, lambda 1, 64 samples; paper A.2),
- ``mbd-shaped``: the same with the learned full noise shape, the adaptive noise size
  and lambda 0.5 (``noise_shape="full"``, ``noise_size="adaptive"``; diagonal above
  :data:`SHAPED_FULL_MAX_DIM` dimensions),
- ``mbd-ipop``: ``mbd-shaped`` with IPOP restarts (:class:`mbd.bbo.Restarts`),
- ``cem``: the cross-entropy method of :mod:`mbd.baselines.cem` (library defaults:
  10 % elites, initial std 0.5),
- ``cma``: CMA-ES through pycma (``pip install 'mbd[bbo]'``), with pycma's own bound
  handling, sigma0 = 0.5 (a quarter of the box width), no restarts,
- ``cma-ipop``: the same with IPOP restarts (population doubled after each of pycma's
  own stops) under the one budget,
- ``evosax-cma``, ``evosax-snes``: evosax's CMA-ES and SNES, std_init 0.5,
- ``shiwa``: nevergrad's Shiwa algorithm selector, told ``num_workers = popsize``,
- ``random``: uniform random search on the box.

All start from the centre of the box (z = 0).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbd.bbo.functions import BBOProblem
from mbd.compile import compile_and_run


class Trace(NamedTuple):
    """One run of one method.

    Attributes:
        evaluations: cumulative function evaluations after each generation, (G,) int.
        best: best value found so far after each generation, (G,) float.
        final_value: best value of the run, including the final recommendation.
        final_point: where it was found, real units, (d,); for the ``mbd`` methods the
            final estimate Ybar and for ``cem`` the final mean (their solvers keep no
            sample points, so when a sample beat the estimate only its value is known).
        num_evaluations: evaluations used (budget, plus 1 for a recommendation).
        seconds: wall time of the run, compilation excluded.
        compile_seconds: time spent compiling (JAX methods; 0 otherwise).
    """

    evaluations: np.ndarray
    best: np.ndarray
    final_value: float
    final_point: np.ndarray
    num_evaluations: int
    seconds: float
    compile_seconds: float


RunFn = Callable[[BBOProblem, int, int, int], Trace]


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered optimizer.

    Attributes:
        name: registry key, as typed on the command line.
        summary: one line.
        run: ``run(problem, budget, popsize, seed) -> Trace``.
        extra: the pip extra it needs (None for plain mbd).
    """

    name: str
    summary: str
    run: RunFn
    extra: str | None = None


def _import(module: str, extra: str = "bbo"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"this method needs {module.split('.')[0]}: pip install 'mbd[{extra}]'"
        ) from e


def _finish(problem, values, gens, popsize, best_z, best_v, rec_z, t0, compile_s) -> Trace:
    """Assembles a Trace from per-generation best values and an optional recommendation."""
    best = np.minimum.accumulate(np.asarray(values, np.float64))
    n = gens * popsize
    final_v, final_z = float(best_v), np.asarray(best_z)
    if rec_z is not None:
        rv = float(problem.batch_values()(jnp.asarray(rec_z, jnp.float32)[None])[0])
        n += 1
        if rv < final_v or not np.isfinite(final_v):
            final_v, final_z = rv, np.asarray(rec_z)
    seconds = time.perf_counter() - t0
    point = np.asarray(problem.decode(jnp.asarray(final_z, jnp.float32)))
    return Trace(
        evaluations=popsize * np.arange(1, gens + 1),
        best=best,
        final_value=final_v,
        final_point=point,
        num_evaluations=n,
        seconds=seconds,
        compile_seconds=compile_s,
    )


def _nan_to_inf(v):
    return jnp.where(jnp.isnan(v), jnp.inf, v)


# --------------------------------------------------------------------------------------
# MBD
# --------------------------------------------------------------------------------------


def mbd_config(budget: int, popsize: int, temperature: float = 1.0, reading: str = "reference"):
    """The MBD configuration that spends ``budget`` evaluations in batches of ``popsize``.

    Reference reading: N - 1 updates of ``popsize`` samples, so N = budget / popsize + 1;
    paper reading: N updates. lambda = 1 as in the authors' black-box script.
    """
    from mbd.solver import MBDConfig

    gens = budget // popsize
    steps = gens + 1 if reading == "reference" else gens
    return MBDConfig(num_samples=popsize, num_steps=steps, temperature=temperature, reading=reading)


SHAPED_FULL_MAX_DIM = 1024
"""Above this dimension ``mbd-shaped`` learns a diagonal shape instead of a full one."""


SHAPED_TEMPERATURE = 0.5
"""lambda of ``mbd-shaped``: with a learned shape, a sharper weighting (Eq. 2) learns the
shape faster. At d = 10, 10,000 evaluations, seeds 0-2, full shape and adaptive size,
lambda 0.5 instead of 1 took the median on the rotated Rosenbrock from 5e-5 to 7e-11 and
on the discus from 5e-8 to 9e-9 (``benchmarks/bench_shaped_noise.py --temperature 0.5``
against the lambda-1 table of docs/results.md)."""


def shaped_config(budget: int, popsize: int, dim: int):
    """:func:`mbd_config` with the learned noise shape, the adaptive noise size and
    lambda = :data:`SHAPED_TEMPERATURE`."""
    shape = "full" if dim <= SHAPED_FULL_MAX_DIM else "diagonal"
    return dataclasses.replace(
        mbd_config(budget, popsize, temperature=SHAPED_TEMPERATURE),
        noise_shape=shape,
        noise_size="adaptive",
    )


def run_mbd(
    problem: BBOProblem, budget: int, popsize: int, seed: int, config=None, restarts=None
) -> Trace:
    """MBD (Alg. 1) on the problem's objective; see :func:`mbd_config`."""
    from mbd.bbo.optimize import minimize

    cfg = mbd_config(budget, popsize) if config is None else config
    r = minimize(problem, cfg, seed, restarts=restarts)
    return Trace(
        evaluations=r.curve_evaluations,
        best=r.curve_best,
        final_value=r.best_value,
        final_point=r.best_point,
        num_evaluations=r.evaluations,
        seconds=r.seconds,
        compile_seconds=r.compile_seconds,
    )


def run_mbd_shaped(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """MBD with the learned noise shape and the adaptive size (:func:`shaped_config`)."""
    return run_mbd(problem, budget, popsize, seed, shaped_config(budget, popsize, problem.dim))


def run_mbd_ipop(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """``mbd-shaped`` with IPOP restarts (:class:`mbd.bbo.Restarts` defaults)."""
    from mbd.bbo.optimize import Restarts

    cfg = shaped_config(budget, popsize, problem.dim)
    return run_mbd(problem, budget, popsize, seed, cfg, Restarts())


def run_cem(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """CEM (:mod:`mbd.baselines.cem`, its defaults) for ``budget // popsize`` iterations;
    its recommendation is the final mean."""
    from mbd.baselines.cem import CEMConfig, make_cem
    from mbd.bbo.optimize import run_values

    gens = budget // popsize
    solver = make_cem(problem.objective(), CEMConfig(num_samples=popsize, num_iterations=gens))
    res, compile_s, seconds = compile_and_run(solver.solve, jax.random.key(seed))
    best, final = run_values(res)
    return Trace(
        evaluations=popsize * np.arange(1, gens + 1),
        best=best,
        final_value=min(float(best[-1]), final),
        final_point=np.asarray(res.solution),
        num_evaluations=gens * popsize + 1,
        seconds=seconds,
        compile_seconds=compile_s,
    )


# --------------------------------------------------------------------------------------
# evosax (CMA-ES, SNES) and random search: whole run in one jitted lax.scan
# --------------------------------------------------------------------------------------


def _run_evosax(name: str, problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    algos = _import("evosax.algorithms")
    cls = {"cma": algos.CMA_ES, "snes": algos.SNES}[name]
    d = problem.dim
    es = cls(population_size=popsize, solution=jnp.zeros(d))
    params = es.default_params.replace(std_init=jnp.asarray(0.5))
    values = jax.vmap(lambda z: problem.minimize(problem.decode(z)))
    gens = budget // popsize

    def run(key):
        k0, k1 = jax.random.split(key)
        state = es.init(k0, jnp.zeros(d), params)

        def body(state, k):
            ka, kt = jax.random.split(k)
            pop, state = es.ask(ka, state, params)
            fit = _nan_to_inf(values(pop))
            state, _ = es.tell(kt, pop, fit, state, params)
            return state, jnp.min(fit)

        state, best = jax.lax.scan(body, state, jax.random.split(k1, gens))
        return best, state.best_solution, state.best_fitness, state.mean

    key = jax.random.key(seed)
    t = time.perf_counter()
    compiled = jax.jit(run).lower(key).compile()
    compile_s = time.perf_counter() - t
    problem.batch_values()(jnp.zeros((1, d)))  # compile the recommendation's evaluation
    t0 = time.perf_counter()
    best, best_z, best_v, mean = jax.block_until_ready(compiled(key))
    return _finish(problem, best, gens, popsize, best_z, best_v, mean, t0, compile_s)


def run_evosax_cma(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """evosax's CMA-ES (full covariance), std_init 0.5, mean at the box centre."""
    return _run_evosax("cma", problem, budget, popsize, seed)


def run_evosax_snes(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """evosax's separable NES, std_init 0.5, mean at the box centre."""
    return _run_evosax("snes", problem, budget, popsize, seed)


def run_random(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """Uniform random search on the box, in one jitted scan."""
    d = problem.dim
    values = jax.vmap(lambda z: problem.minimize(problem.decode(z)))
    gens = budget // popsize

    def run(key):
        def body(carry, k):
            bz, bv = carry
            z = jax.random.uniform(k, (popsize, d), minval=-1.0, maxval=1.0)
            f = _nan_to_inf(values(z))
            i = jnp.argmin(f)
            better = f[i] < bv
            return (jnp.where(better, z[i], bz), jnp.where(better, f[i], bv)), f[i]

        init = (jnp.zeros(d), jnp.asarray(jnp.inf))
        (bz, bv), best = jax.lax.scan(body, init, jax.random.split(key, gens))
        return best, bz, bv

    key = jax.random.key(seed)
    t = time.perf_counter()
    compiled = jax.jit(run).lower(key).compile()
    compile_s = time.perf_counter() - t
    t0 = time.perf_counter()
    best, bz, bv = jax.block_until_ready(compiled(key))
    return _finish(problem, best, gens, popsize, bz, bv, None, t0, compile_s)


# --------------------------------------------------------------------------------------
# pycma and nevergrad: ask/tell loops on the host, batch evaluation jitted
# --------------------------------------------------------------------------------------


def _host_values(problem: BBOProblem, popsize: int):
    f = problem.batch_values()
    t = time.perf_counter()
    f(jnp.zeros((popsize, problem.dim), jnp.float32)).block_until_ready()
    compile_s = time.perf_counter() - t

    def values(z: np.ndarray) -> np.ndarray:
        v = np.asarray(f(jnp.asarray(z, jnp.float32)), np.float64)
        return np.where(np.isnan(v), np.inf, v)

    return values, compile_s


def run_pycma(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """CMA-ES through pycma: x0 = 0, sigma0 = 0.5, bounds [-1, 1] (pycma's BoundTransform)."""
    cma = _import("cma")
    values, compile_s = _host_values(problem, popsize)
    gens = budget // popsize
    t0 = time.perf_counter()
    es = cma.CMAEvolutionStrategy(
        np.zeros(problem.dim),
        0.5,
        {
            "popsize": popsize,
            "bounds": [-1.0, 1.0],
            "seed": seed + 1,
            "verbose": -9,
            "maxfevals": budget + 1,
            "tolfun": 0,
            "tolx": 0,
            "tolfunhist": 0,
            "tolstagnation": gens + 1,
        },
    )
    per_gen, bz, bv = [], np.zeros(problem.dim), np.inf
    for _ in range(gens):
        xs = es.ask()
        f = values(np.asarray(xs))
        es.tell(xs, [float(v) if np.isfinite(v) else 1e300 for v in f])
        i = int(np.argmin(f))
        if f[i] < bv:
            bz, bv = np.asarray(xs[i]), float(f[i])
        per_gen.append(f[i])
    return _finish(problem, per_gen, gens, popsize, bz, bv, es.mean, t0, compile_s)


def run_pycma_ipop(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """pycma's CMA-ES with IPOP restarts: each run ends at one of pycma's own stopping
    criteria, and the next starts at the centre with twice the population, until
    ``budget`` evaluations are spent (each run's final mean is evaluated once)."""
    cma = _import("cma")
    values, compile_s = _host_values(problem, popsize)
    t0 = time.perf_counter()
    evals, best_curve, bz, bv, spent, lam, r = [], [], np.zeros(problem.dim), np.inf, 0, popsize, 0
    while budget - spent >= 2 * lam:
        es = cma.CMAEvolutionStrategy(
            np.zeros(problem.dim),
            0.5,
            {
                "popsize": lam,
                "bounds": [-1.0, 1.0],
                "seed": seed + 1 + 1000 * r,
                "verbose": -9,
                "maxfevals": budget - spent,
            },
        )
        while not es.stop() and budget - spent >= lam:
            xs = es.ask()
            f = values(np.asarray(xs))
            es.tell(xs, [float(v) if np.isfinite(v) else 1e300 for v in f])
            spent += lam
            i = int(np.argmin(f))
            if f[i] < bv:
                bz, bv = np.asarray(xs[i]), float(f[i])
            evals.append(spent)
            best_curve.append(bv)
        rv = float(values(np.asarray(es.mean)[None].repeat(popsize, 0))[0])
        spent += 1
        if rv < bv:
            bz, bv = np.asarray(es.mean), rv
        lam, r = 2 * lam, r + 1
    point = np.asarray(problem.decode(jnp.asarray(bz, jnp.float32)))
    return Trace(
        evaluations=np.asarray(evals, np.int64),
        best=np.asarray(best_curve, np.float64),
        final_value=bv,
        final_point=point,
        num_evaluations=spent,
        seconds=time.perf_counter() - t0,
        compile_seconds=compile_s,
    )


def run_shiwa(problem: BBOProblem, budget: int, popsize: int, seed: int) -> Trace:
    """nevergrad's Shiwa on the box [-1, 1]^d, ``num_workers = popsize``, batch ask/tell."""
    ng = _import("nevergrad")
    values, compile_s = _host_values(problem, popsize)
    gens = budget // popsize
    t0 = time.perf_counter()
    param = ng.p.Array(init=np.zeros(problem.dim)).set_bounds(-1.0, 1.0)
    param.random_state = np.random.RandomState(seed)
    opt = ng.optimizers.Shiwa(parametrization=param, budget=budget, num_workers=popsize)
    per_gen, bz, bv = [], np.zeros(problem.dim), np.inf
    for _ in range(gens):
        cands = [opt.ask() for _ in range(popsize)]
        xs = np.stack([c.value for c in cands])
        f = values(xs)
        for c, v in zip(cands, f, strict=True):
            opt.tell(c, float(v) if np.isfinite(v) else 1e300)
        i = int(np.argmin(f))
        if f[i] < bv:
            bz, bv = xs[i], float(f[i])
        per_gen.append(f[i])
    rec = opt.provide_recommendation().value
    return _finish(problem, per_gen, gens, popsize, bz, bv, rec, t0, compile_s)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("mbd", "MBD, Alg. 1 (reference reading, lambda 1)", run_mbd),
        Method("mbd-shaped", "MBD, learned noise shape and adaptive size", run_mbd_shaped),
        Method("mbd-ipop", "MBD, shaped and adaptive, with IPOP restarts", run_mbd_ipop),
        Method("cem", "cross-entropy method (diagonal Gaussian)", run_cem),
        Method("cma", "CMA-ES (pycma)", run_pycma, "bbo"),
        Method("cma-ipop", "CMA-ES (pycma) with IPOP restarts", run_pycma_ipop, "bbo"),
        Method("evosax-cma", "CMA-ES (evosax)", run_evosax_cma, "bbo"),
        Method("evosax-snes", "separable NES (evosax)", run_evosax_snes, "bbo"),
        Method("shiwa", "Shiwa algorithm selector (nevergrad)", run_shiwa, "bbo"),
        Method("random", "uniform random search", run_random),
    )
}


def get_method(name: str) -> Method:
    """Looks a method up by name.

    Raises:
        KeyError: naming the known methods.
    """
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]
