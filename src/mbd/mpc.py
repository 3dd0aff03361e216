"""MBD as a controller: receding-horizon MPC in closed loop.

A controller is a factory of pure functions, as the solvers are::

    ctrl = make_controller(problem, "mbd", MBDConfig(num_samples=256), MPCConfig())
    cs = ctrl.init(key, x0)                    # a full solve from scratch (warm-up)
    u, cs, info = ctrl.step(key, cs, x)        # a few updates from the shifted plan

Each control step starts from the previous plan moved one step earlier (the last
control repeated; with splines, the knots re-fit to the shifted spline, see
:func:`mbd.splines.shift_matrix`), sets the problem's initial state to the measured
state ``x`` (the instance of a :class:`~mbd.solver.ParametricSolve`, so nothing
recompiles), runs ``MPCConfig.iterations`` updates and applies the first control.

Methods share the budget (samples x iterations per control step):

- ``mbd``: MBD's reference update (weighted mean, Eq. 6 with Eq. 10c) with the paper's
  noise, restarted at each control step part-way up the schedule: the K updates use the
  stds sqrt(1 - alpha_bar_i) of the N-step schedule at K diffusion steps i evenly spaced
  from i_0 = round(noise_level (N - 1)) down to 1 (an SDEdit-style warm start);
- ``dial`` (MBD with DIAL-MPC's annealing, Xue et al. 2024, arXiv 2409.15610): at update
  k = 0 .. K-1 and plan row h = 0 .. R-1 the std is
  ``noise_max * exp(-k / (beta_traj K) - (R - 1 - h) / (beta_horizon R))``: it shrinks
  over the updates and is smallest for the controls applied soonest (which earlier
  control steps have refined most);
- the baselines ``mppi``, ``cem``, ``ps`` (predictive sampling), ``cmaes``, ``random``:
  their own update with their own noise, warm-started at the shifted plan.

:func:`closed_loop` runs T control steps in one ``lax.scan`` (the plant may be another
model, e.g. with a different mass, to show robustness); :func:`run_timed` runs the same
loop from Python, one jitted step at a time, to measure the control rate.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbd.parallel import Parallel
from mbd.problem import Array, Problem, PyTree
from mbd.schedule import make_schedule
from mbd.solver import ConfigError, MBDConfig, MBDResult, Solver, make_mbd
from mbd.splines import shift_matrix

MPC_METHODS: tuple[str, ...] = ("mbd", "dial", "mppi", "cem", "ps", "cmaes", "random")


@dataclasses.dataclass(frozen=True)
class MPCConfig:
    """Hyper-parameters of the receding-horizon loop.

    Attributes:
        iterations: planner updates per control step (K >= 1).
        warmup_iterations: updates of the first plan, from zeros, in ``init`` (>= 1).
        noise_level: ``mbd``: where on the diffusion schedule each control step restarts,
            in (0, 1] (1: the widest noise, sqrt(1 - alpha_bar_{N-1})).
        noise_max: ``dial``: the largest std, normalized units (> 0).
        beta_traj: ``dial``: how slowly the noise shrinks over the updates (> 0).
        beta_horizon: ``dial``: how slowly it shrinks towards the current step (> 0).
    """

    iterations: int = 2
    warmup_iterations: int = 49
    noise_level: float = 1.0
    noise_max: float = 1.0
    beta_traj: float = 0.5
    beta_horizon: float = 0.9

    def __post_init__(self) -> None:
        validate_mpc(self)


def validate_mpc(config: MPCConfig) -> None:
    """Checks every field; raises :class:`~mbd.solver.ConfigError` naming it."""
    for name in ("iterations", "warmup_iterations"):
        v = getattr(config, name)
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ConfigError(name, f"must be an integer >= 1 (got {v})")
    if not (
        isinstance(config.noise_level, int | float)
        and math.isfinite(config.noise_level)
        and 0 < config.noise_level <= 1
    ):
        raise ConfigError("noise_level", f"must be in (0, 1] (got {config.noise_level})")
    for name in ("noise_max", "beta_traj", "beta_horizon"):
        v = getattr(config, name)
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ConfigError(name, f"must be finite and > 0 (got {v})")


def mbd_noise(config: MBDConfig, iterations: int, level: float) -> np.ndarray:
    """The ``mbd`` method's stds of one control step's updates.

    Args:
        config: supplies the schedule (``num_steps``, betas).
        iterations: K.
        level: restart level in (0, 1].

    Returns:
        (K,) float32: sqrt(1 - alpha_bar_i) at K steps i from round(level (N-1)) to 1.
    """
    n = max(config.num_steps, 2)
    sch = make_schedule(config.schedule, n, config.beta_start, config.beta_end)
    top = max(1, round(level * (n - 1)))
    i = np.round(np.linspace(top, 1, iterations)).astype(int)
    return np.sqrt(1.0 - sch.alpha_bars[i]).astype(np.float32)


def dial_noise(mpc: MPCConfig, rows: int) -> np.ndarray:
    """DIAL-MPC's annealed stds, over updates and along the plan.

    Args:
        mpc: supplies K, ``noise_max``, ``beta_traj``, ``beta_horizon``.
        rows: R, rows of the decision variable (controls, or knots).

    Returns:
        (K, R, 1) float32.
    """
    k = np.arange(mpc.iterations)[:, None]
    h = np.arange(rows)[None, :]
    std = mpc.noise_max * np.exp(
        -k / (mpc.beta_traj * mpc.iterations) - (rows - 1 - h) / (mpc.beta_horizon * rows)
    )
    return std[..., None].astype(np.float32)


@struct.dataclass
class ControllerState:
    """What a controller carries between control steps.

    Attributes:
        plan: the plan for the next call of ``step``, normalized, ``shape``.
        t: control steps taken, int32.
        demo_reference: the demonstration's reference from the next step on (its rows
            move one step earlier per control step, the last repeated), or None.
    """

    plan: Array
    t: Array
    demo_reference: Array | None = None


class StepReport(NamedTuple):
    """Diagnostics of one control step.

    Attributes:
        predicted_reward: mean per-step reward of the new plan on the planning model.
        sample_reward: mean sample reward of the last update.
    """

    predicted_reward: Array
    sample_reward: Array


class Controller(NamedTuple):
    """The pure functions of a receding-horizon controller (see :func:`make_controller`).

    Attributes:
        init: ``init(key, x0=None, params=None) -> ControllerState``: the warm-up plan.
        step: ``step(key, cs, x, params=None) -> (u, cs, StepReport)``: u of shape (nu,)
            in real units.
        problem: the planning problem.
        method: the method's name.
        planner: the per-step :class:`~mbd.solver.Solver`.
        warmup: the warm-up :class:`~mbd.solver.Solver`.
    """

    init: Callable[..., ControllerState]
    step: Callable[..., tuple[Array, ControllerState, StepReport]]
    problem: Problem
    method: str
    planner: Solver
    warmup: Solver


def _method_solver(
    problem: Problem, method: str, config: Any, iterations: int, noise=None, parallel=None
):
    from mbd.baselines import get_method, method_config

    if method in ("mbd", "dial"):
        base = config if isinstance(config, MBDConfig) else MBDConfig()
        cfg = dataclasses.replace(base, num_steps=iterations + 1, reading="reference")
        return make_mbd(problem, cfg, noise_std=noise, parallel=parallel)
    spec = get_method(method)
    if isinstance(config, spec.config_cls):
        cfg = dataclasses.replace(config, num_iterations=iterations)
    else:
        base = config if isinstance(config, MBDConfig) else None
        cfg = method_config(method, base, num_iterations=iterations)
    return spec.make(problem, cfg, parallel=parallel)


def make_controller(
    problem: Problem,
    method: str = "mbd",
    config: Any = None,
    mpc: MPCConfig | None = None,
    parallel: Parallel = None,
) -> Controller:
    """Builds a receding-horizon controller over a problem.

    Args:
        problem: the planning model; its horizon is the MPC horizon, its ``knots`` the
            control parameterization.
        method: one of :data:`MPC_METHODS`.
        config: an :class:`~mbd.solver.MBDConfig` (the budget: ``num_samples``; for
            ``mbd`` also the schedule and temperature), or the method's own config (its
            ``num_iterations`` is replaced by the MPC iterations). None: defaults.
        mpc: the loop's hyper-parameters (``MPCConfig()`` if None).
        parallel: where each step's samples are evaluated (devices, chunks; see
            :mod:`mbd.parallel`).

    Returns:
        :class:`Controller`. ``init`` and ``step`` are pure; jit them (each compiles
        once) or run a whole loop with :func:`closed_loop`.

    Raises:
        ValueError: for an unknown method or a problem that is not a trajectory problem.
    """
    mpc = MPCConfig() if mpc is None else mpc
    validate_mpc(mpc)
    if method not in MPC_METHODS:
        raise ValueError(f"unknown MPC method {method!r}; choose one of {', '.join(MPC_METHODS)}")
    if not isinstance(problem, Problem):
        raise TypeError("MPC needs a trajectory Problem (an Objective has no state)")
    rows = problem.shape[0]
    if method in ("mbd", "dial") and getattr(config, "noise_size", "schedule") != "schedule":
        raise ValueError(
            f"MPC's {method} sets the noise of every control step itself (MPCConfig); "
            "give an MBDConfig with noise_size='schedule'"
        )
    if method == "mbd":
        base = config if isinstance(config, MBDConfig) else MBDConfig()
        noise = mbd_noise(base, mpc.iterations, mpc.noise_level)
    elif method == "dial":
        noise = dial_noise(mpc, rows)
    else:
        noise = None
    planner = _method_solver(problem, method, config, mpc.iterations, noise, parallel)
    warm_method = "mbd" if method == "dial" else method
    warmup = _method_solver(problem, warm_method, config, mpc.warmup_iterations, None, parallel)
    shift = jnp.asarray(shift_matrix(problem.horizon, problem.knots, problem.spline))

    own = problem.instance()
    # A demonstration is time-indexed: its rows follow the loop as the plan does.
    shift_rows = jnp.asarray(shift_matrix(problem.horizon, None))

    def init(key: Array, x0: PyTree = None, params: PyTree = None) -> ControllerState:
        res = warmup.solve(key, x0=x0, params=params)
        return ControllerState(
            plan=res.z, t=jnp.zeros((), jnp.int32), demo_reference=own.demo_reference
        )

    def step(
        key: Array, cs: ControllerState, x: PyTree, params: PyTree = None
    ) -> tuple[Array, ControllerState, StepReport]:
        inst = problem.make_instance(x, params)._replace(demo_reference=cs.demo_reference)
        res: MBDResult = planner.solve(key, cs.plan, instance=inst)
        u = res.solution[0]
        ref = cs.demo_reference
        new = ControllerState(
            plan=shift @ res.z,
            t=cs.t + 1,
            demo_reference=None if ref is None else jnp.tensordot(shift_rows, ref, axes=1),
        )
        report = StepReport(predicted_reward=res.reward, sample_reward=res.history.reward_mean[-1])
        return u, new, report

    return Controller(
        init=init, step=step, problem=problem, method=method, planner=planner, warmup=warmup
    )


class LoopResult(NamedTuple):
    """A closed-loop run of T control steps.

    Attributes:
        states: plant states x_1 .. x_T (pytree, leading axis T).
        controls: applied controls (T, nu), real units.
        rewards: the plant's stage rewards (T,).
        predicted: the planner's predicted mean per-step reward at each step (T,).
    """

    states: PyTree
    controls: Array
    rewards: Array
    predicted: Array

    @property
    def mean_reward(self) -> Array:
        """Closed-loop return per step: mean of ``rewards``."""
        return jnp.mean(self.rewards)


def closed_loop(
    controller: Controller,
    key: Array,
    steps: int,
    x0: PyTree = None,
    params: PyTree = None,
    plant_params: PyTree = None,
    plant: Callable[..., tuple[PyTree, Array]] | None = None,
) -> LoopResult:
    """Runs the controller against a plant for ``steps`` control steps, in one scan.

    Args:
        controller: from :func:`make_controller`.
        key: PRNG key (one for the warm-up, one per control step).
        steps: T >= 1.
        x0: the plant's initial state (the problem's if None).
        params: the planner's params (the problem's if None).
        plant_params: the plant's params where they differ from the planner's (model
            mismatch); None: the planner's.
        plant: optional plant ``plant(x, u) -> (x_next, r)``; None: the problem's own
            step with ``plant_params``.

    Returns:
        :class:`LoopResult`. Jit the call (``steps`` static) to compile the loop once.
    """
    problem = controller.problem
    x0 = problem.init_state if x0 is None else x0
    p_plant = params if plant_params is None else plant_params

    def plant_step(x, u):
        if plant is not None:
            return plant(x, u)
        return _plant_step(problem, x, u, p_plant)

    k0, k_loop = jax.random.split(key)
    cs = controller.init(k0, x0, params)

    def body(carry, k):
        x, cs = carry
        u, cs, report = controller.step(k, cs, x, params)
        x_next, r = plant_step(x, u)
        return (x_next, cs), (x_next, u, jnp.asarray(r), report.predicted_reward)

    keys = jax.random.split(k_loop, steps)
    _, (states, controls, rewards, predicted) = jax.lax.scan(body, (x0, cs), keys)
    return LoopResult(states=states, controls=controls, rewards=rewards, predicted=predicted)


class TimedLoop(NamedTuple):
    """A closed loop run step by step from Python, with timings.

    Attributes:
        result: the :class:`LoopResult`.
        step_seconds: wall time of each control step's solve, (T,).
        compile_seconds: time of the warm-up (its compile and solve) and of the step's
            and the plant's compiles (a dry run of each).
        num_compiles: programs the controller's jitted step has compiled in all, over
            every run of it (1: no run recompiled).
    """

    result: LoopResult
    step_seconds: np.ndarray
    compile_seconds: float
    num_compiles: int


def _plant_step(problem: Problem, x: PyTree, u: Array, params: PyTree):
    """The problem's step, its next state cast to the types of ``x`` (a simulator may
    return weakly typed leaves, which would make the next control step compile again)."""
    x_next, r = problem.call_step(x, u, params)
    x_next = jax.tree_util.tree_map(
        lambda a, b: jax.lax.convert_element_type(a, jnp.result_type(b)), x_next, x
    )
    return x_next, r


@functools.lru_cache(maxsize=64)
def _jitted(fn: Callable[..., Any]) -> Callable[..., Any]:
    return jax.jit(fn)


@functools.lru_cache(maxsize=64)
def _jitted_plant(problem: Problem) -> Callable[..., Any]:
    return jax.jit(functools.partial(_plant_step, problem))


def run_timed(
    controller: Controller,
    key: Array,
    steps: int,
    x0: PyTree = None,
    params: PyTree = None,
    plant_params: PyTree = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TimedLoop:
    """Runs the closed loop one jitted control step at a time, timing each solve.

    Same keys and result as :func:`closed_loop` (up to the last bits of reduction order).

    Args:
        controller: from :func:`make_controller`.
        key: PRNG key.
        steps: T >= 1.
        x0: plant initial state.
        params: planner params.
        plant_params: plant params (model mismatch); the planner's if None.
        on_step: optional ``on_step(t, reward)`` after each control step.

    Returns:
        :class:`TimedLoop`.
    """
    import time

    problem = controller.problem
    x0 = problem.init_state if x0 is None else x0
    inst = problem.make_instance(x0, params)
    params = inst.params
    p_plant = params if plant_params is None else plant_params
    # One jitted function per controller, kept across calls: later runs do not compile.
    init, step = _jitted(controller.init), _jitted(controller.step)
    plant = _jitted_plant(problem)
    k0, k_loop = jax.random.split(key)
    keys = jax.random.split(k_loop, steps)
    t0 = time.perf_counter()
    cs = jax.block_until_ready(init(k0, inst.x0, params))
    # A dry run of the (pure) step and plant compiles them; its outputs are dropped.
    jax.block_until_ready(step(keys[0], cs, inst.x0, params))
    jax.block_until_ready(plant(inst.x0, jnp.zeros(problem.action_dim), p_plant))
    compile_seconds = time.perf_counter() - t0
    x = inst.x0
    out, times = [], []
    for t in range(steps):
        s0 = time.perf_counter()
        u, cs, report = step(keys[t], cs, x, params)
        u = jax.block_until_ready(u)
        times.append(time.perf_counter() - s0)
        x, r = plant(x, u, p_plant)
        out.append((x, u, r, report.predicted_reward))
        if on_step is not None:
            on_step(t, float(r))
    states, controls, rewards, predicted = (
        jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[o[i] for o in out]) for i in range(4)
    )
    return TimedLoop(
        result=LoopResult(states, controls, rewards, predicted),
        step_seconds=np.asarray(times),
        compile_seconds=compile_seconds,
        num_compiles=int(step._cache_size()),
    )


__all__ = [
    "MPC_METHODS",
    "Controller",
    "ControllerState",
    "LoopResult",
    "MPCConfig",
    "StepReport",
    "TimedLoop",
    "closed_loop",
    "dial_noise",
    "make_controller",
    "mbd_noise",
    "run_timed",
]
