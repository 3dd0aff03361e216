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

``replan(key, cs, x, elapsed)`` is the step of an asynchronous loop
(:mod:`mbd.mpc.realtime`): it shifts the last plan by the control steps that actually
passed since its state was measured, replans from the state measured now, and returns
the whole plan (controls, predicted states) for the plant to read at the time it needs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

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
        predict: replay each new plan on the planning model, for the reports'
            ``predicted_reward`` (and ``replan``'s predicted ``states``, the path a live
            view draws): one more rollout of one sample per control step, which on the
            native engine is one more host call (a quarter of a 32-sample step on a
            small model). False skips it: ``predicted_reward`` is NaN and ``states``
            None, and the controls are the same.
    """

    iterations: int = 2
    warmup_iterations: int = 49
    noise_level: float = 1.0
    noise_max: float = 1.0
    beta_traj: float = 0.5
    beta_horizon: float = 0.9
    predict: bool = True

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
    if not isinstance(config.predict, bool | np.bool_):
        raise ConfigError("predict", f"must be True or False (got {config.predict!r})")


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
        plan: the plan for the next call of ``step``, normalized, ``shape`` (``step``
            leaves it shifted by one step; ``replan`` leaves it aligned at the state it
            planned from and shifts it on the next call by the steps that passed).
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
        predicted_reward: mean per-step reward of the new plan on the planning model
            (NaN without ``MPCConfig.predict``).
        sample_reward: mean sample reward of the last update.
    """

    predicted_reward: Array
    sample_reward: Array


class PlanReport(NamedTuple):
    """The whole plan of one ``replan``, from the state measured.

    Attributes:
        controls: (H, nu) real-unit controls, row h for control step h from the measured
            state on.
        states: the planning model's predicted states x_1 .. x_H (pytree, leading H);
            None without ``MPCConfig.predict``.
        predicted_reward: mean per-step reward of the plan on the planning model (NaN
            without ``MPCConfig.predict``).
        sample_reward: mean sample reward of the last update.
        noise_std: the last update's sampling noise (normalized units: a fraction of
            half the action range), NaN for methods without one.
    """

    controls: Array
    states: PyTree
    predicted_reward: Array
    sample_reward: Array
    noise_std: Array


class Controller(NamedTuple):
    """The pure functions of a receding-horizon controller (see :func:`make_controller`).

    Attributes:
        init: ``init(key, x0=None, params=None) -> ControllerState``: the warm-up plan.
        step: ``step(key, cs, x, params=None) -> (u, cs, StepReport)``: u of shape (nu,)
            in real units.
        replan: ``replan(key, cs, x, elapsed, params=None) -> (cs, PlanReport)``: the
            last plan shifted by ``elapsed`` control steps (int, >= 0), replanned from x.
        problem: the planning problem.
        method: the method's name.
        planner: the per-step :class:`~mbd.solver.Solver`.
        warmup: the warm-up :class:`~mbd.solver.Solver`.
        num_samples: samples per update.
        iterations: updates per control step (per replan).
    """

    init: Callable[..., ControllerState]
    step: Callable[..., tuple[Array, ControllerState, StepReport]]
    replan: Callable[..., tuple[ControllerState, PlanReport]]
    problem: Problem
    method: str
    planner: Solver
    warmup: Solver
    num_samples: int = 0
    iterations: int = 0


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
    horizon = problem.horizon
    # ``replan`` shifts by any number of steps k: the k-th power of the one-step shift
    # (for per-step controls, rows moved k earlier with the last repeated).
    shifts = [np.eye(rows, dtype=np.float32)]
    for _ in range(horizon):
        shifts.append(np.asarray(shift) @ shifts[-1])
    shift_k = jnp.asarray(np.stack(shifts))  # (H + 1, R, R)
    rows_h = jnp.arange(horizon)
    predict = bool(mpc.predict)

    def predicted(res: MBDResult) -> Array:
        # Without ``predict`` nothing reads the replay, so jit drops its rollout.
        return res.reward if predict else jnp.full((), jnp.nan, jnp.float32)

    def init(key: Array, x0: PyTree = None, params: PyTree = None) -> ControllerState:
        res = warmup.solve(key, x0=x0, params=params)
        return ControllerState(
            plan=res.z, t=jnp.zeros((), jnp.int32), demo_reference=own.demo_reference
        )

    def solve_from(key, plan, ref, x, params):
        # A demonstration is time-indexed: its rows follow the loop as the plan does.
        inst = problem.make_instance(x, params)._replace(demo_reference=ref)
        return planner.solve(key, plan, instance=inst)

    def step(
        key: Array, cs: ControllerState, x: PyTree, params: PyTree = None
    ) -> tuple[Array, ControllerState, StepReport]:
        res: MBDResult = solve_from(key, cs.plan, cs.demo_reference, x, params)
        ref = cs.demo_reference
        new = ControllerState(
            plan=shift @ res.z,
            t=cs.t + 1,
            demo_reference=None if ref is None else ref[jnp.minimum(rows_h + 1, horizon - 1)],
        )
        report = StepReport(
            predicted_reward=predicted(res), sample_reward=res.history.reward_mean[-1]
        )
        return res.solution[0], new, report

    def replan(
        key: Array, cs: ControllerState, x: PyTree, elapsed: Array, params: PyTree = None
    ) -> tuple[ControllerState, PlanReport]:
        k = jnp.clip(jnp.asarray(elapsed, jnp.int32), 0, horizon)
        ref = cs.demo_reference
        ref = None if ref is None else ref[jnp.minimum(rows_h + k, horizon - 1)]
        res: MBDResult = solve_from(key, shift_k[k] @ cs.plan, ref, x, params)
        new = ControllerState(plan=res.z, t=cs.t + k, demo_reference=ref)
        report = PlanReport(
            controls=res.solution,
            states=res.states if predict else None,
            predicted_reward=predicted(res),
            sample_reward=res.history.reward_mean[-1],
            noise_std=jnp.asarray(res.history.noise_std[-1], jnp.float32),
        )
        return new, report

    return Controller(
        init=init,
        step=step,
        replan=replan,
        problem=problem,
        method=method,
        planner=planner,
        warmup=warmup,
        num_samples=int(getattr(config, "num_samples", None) or MBDConfig().num_samples),
        iterations=mpc.iterations,
    )


__all__ = [
    "MPC_METHODS",
    "Controller",
    "ControllerState",
    "MPCConfig",
    "PlanReport",
    "StepReport",
    "dial_noise",
    "make_controller",
    "mbd_noise",
    "validate_mpc",
]
