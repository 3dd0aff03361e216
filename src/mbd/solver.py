"""Model-Based Diffusion (Pan, Yi, Shi, Qu 2024, arXiv 2407.01573), Algorithms 1 and 2.

One core serves generic optimization (Alg. 1, an :class:`~mbd.problem.Objective`) and
trajectory optimization (Alg. 2, a :class:`~mbd.problem.Problem`). The solver is a
factory of pure functions over an immutable state, as optax and evosax are::

    solver = make_solver(problem, MBDConfig(num_samples=256))
    result = solver.solve(jax.random.key(0))          # one jitted lax.scan
    # or step by step:
    state = solver.init(key)
    state, info = solver.step(step_key, state)

Two readings of the algorithm are offered (``MBDConfig.reading``):

``"reference"`` (default) — what the authors' public code runs, which produced the
    paper's Tables 2 and 3: start from the initial guess (zeros), sample around the
    current estimate Ybar with standard deviation sqrt(1 - alpha_bar_i), clip to the
    action box, and replace Ybar by the weighted mean, for i = N-1 .. 1 (N - 1 updates).
    Substituting the score (Eq. 9b) into Eq. 6 and rescaling by sqrt(alpha_bar_{i-1})
    gives exactly Ybar_{i-1} = weighted mean, so this is the same update, written in the
    clean variable.
``"paper"`` — Alg. 1/2 as printed: Y^N ~ N(0, I); at step i sample
    N(Y^i / sqrt(alpha_bar_{i-1}), (1 / alpha_bar_{i-1} - 1) I) (Eq. 8), weight, take the
    Monte Carlo score (Eq. 9b / 10c) and the score-ascent step (Eq. 6), for i = N .. 1. The
    schedule then has N + 1 entries beta_0 .. beta_N (A.4.2).

The reference reading is the default because it is what the published numbers were
measured with, it starts deterministically from the user's guess, and its search noise
(std at most sqrt(1 - alpha_bar_N) ~ 0.63) stays inside the action box, while the
paper's starts from a random point and samples with std up to sqrt(1/alpha_bar - 1) ~ 0.8.

The readings also differ with a demonstration. The paper's Eq. 13 lets the demo term
p_demo(Y) p_J(Y_demo) win only where it beats p_J(Y), i.e. for samples already close to
the demonstration; the reference reading shifts the demo term so that the batch's
closest sample always scores r_demo, which keeps pulling towards the demonstration when
the reward is flat. On car2d (zero reward until 0.2 m from the goal) this is the
difference between reaching the goal (reference) and not moving towards it (paper).

Weights: w = p_J * p_g (Eq. 10d) with p_J = exp(normalized reward / lambda) and p_g the
indicator that every constraint holds; with a demonstration, w = max(w_model, w_demo) p_g
(Eq. 13): the constraint gates the demonstration term as well. Rewards that are NaN or
infinite get weight 0; if no sample is feasible, the samples are weighted by their
constraint violation instead (and the step is reported).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbd.errors import ConfigError as ConfigError
from mbd.evaluate import Evaluation as Evaluation
from mbd.evaluate import Evaluator as Evaluator
from mbd.evaluate import _state_size
from mbd.evaluate import make_evaluator as make_evaluator
from mbd.noise import apply_shape as apply_shape
from mbd.noise import initial_shape as initial_shape
from mbd.noise import shape_rates as shape_rates
from mbd.noise import shape_update as shape_update
from mbd.noise import size_update as size_update
from mbd.parallel import Parallel, estimate_bytes, resolve
from mbd.problem import Array, Instance, Objective, Problem, PyTree
from mbd.schedule import SCHEDULES, ScheduleName, make_schedule
from mbd.weights import ESS_BISECTIONS as ESS_BISECTIONS
from mbd.weights import Weights as Weights
from mbd.weights import compute_weights as compute_weights
from mbd.weights import ess_temperature as ess_temperature

Reading = Literal["reference", "paper"]
READINGS: tuple[str, ...] = ("reference", "paper")
Normalization = Literal["zscore", "none"]
NORMALIZATIONS: tuple[str, ...] = ("zscore", "none")
InitName = Literal["auto", "zeros", "random"]
INITS: tuple[str, ...] = ("auto", "zeros", "random")
NoiseShape = Literal["isotropic", "diagonal", "full"]
NOISE_SHAPES: tuple[str, ...] = ("isotropic", "diagonal", "full")
NoiseSize = Literal["schedule", "adaptive"]
NOISE_SIZES: tuple[str, ...] = ("schedule", "adaptive")
Output = Literal["mean", "mode"]
OUTPUTS: tuple[str, ...] = ("mean", "mode")
FULL_SHAPE_MAX_DIM = 2048
"""Largest decision dimension for ``noise_shape="full"`` (a D x D matrix and its
Cholesky factor each update)."""


_VALIDATE = contextvars.ContextVar("mbd_validate_config", default=True)


@contextlib.contextmanager
def deferred_validation() -> Iterator[None]:
    """Context in which :class:`MBDConfig` skips its checks (a CLI parses first, then
    calls :func:`validate_config` itself to print a one-line error)."""
    token = _VALIDATE.set(False)
    try:
        yield
    finally:
        _VALIDATE.reset(token)


@dataclasses.dataclass(frozen=True)
class MBDConfig:
    """Hyper-parameters of MBD. Defaults follow the paper (Table 4, A.4.2).

    Attributes:
        num_samples: Monte Carlo samples per diffusion step (Nsample; >= 1).
        num_steps: diffusion steps N (>= 1; >= 2 for the reference reading).
        temperature: lambda of p_J = exp(normalized reward / lambda) (Eq. 2), in
            [1e-30, 1e30] (a tiny lambda puts all the weight on the best sample).
        schedule: beta schedule: linear (A.4.2), quadratic, or cosine.
        beta_start: first beta, in (0, 1), at most ``beta_end``.
        beta_end: last beta, in (0, 1).
        reading: ``reference`` (authors' code; default) or ``paper`` (Alg. 1/2 as printed).
        normalize: reward normalization before the temperature: ``zscore`` (batch
            (r - mean) / std over feasible samples, std < 1e-4 taken as 1; the authors'
            code) or ``none`` (raw rewards, p_J = exp(r / lambda) as in Eq. 2).
        init: initial estimate: ``auto`` (zeros for reference, N(0, I) for paper),
            ``zeros``, or ``random``; ``solve(key, init)`` with an array overrides it.
        keep_iterates: also return the estimate after every diffusion step (for plots).
        noise_shape: the shape of the sampling noise: ``isotropic`` (the paper's), or a
            covariance S learned from the weighted samples, ``diagonal`` or ``full``
            (mbd.noise.shape_update); the schedule or the adaptive size sets its size.
        shape_rate: the rank-mu rate at which S follows the weighted samples, in (0, 1];
            None: CMA-ES's, from the weights' effective sample size
            (mbd.noise.shape_rates).
        noise_size: the size of the sampling noise: ``schedule`` (the paper's,
            sqrt(1 - alpha_bar_i)) or ``adaptive``: a size that follows the search by
            the length of the estimate's path (mbd.noise.size_update), never above
            the schedule's.
        ess_target: None (the paper's fixed ``temperature``) or a fraction in (0, 1]:
            each step then takes the temperature at which the weights' effective sample
            size is that fraction of the weighed samples (mbd.weights.ess_temperature),
            so the weights neither collapse onto one sample nor spread evenly, whatever
            the spread of this step's rewards.
        output: the plan a solve returns: ``mean`` (the paper's: the last update's
            Monte Carlo estimate Ybar of Eq. 9b, a weighted mean of its samples) or
            ``mode``: the last update's highest-weight sample, the mode of the same
            weighted sample set. Where the reward is rough at the scale of the last
            noise (contact-rich tasks), the mean of a few good samples can score far
            below each of them; the mode is a plan that was rolled out and scored.
    """

    num_samples: int = 2048
    num_steps: int = 100
    temperature: float = 0.1
    schedule: ScheduleName = "linear"
    beta_start: float = 1e-4
    beta_end: float = 1e-2
    reading: Reading = "reference"
    normalize: Normalization = "zscore"
    init: InitName = "auto"
    keep_iterates: bool = False
    noise_shape: NoiseShape = "isotropic"
    shape_rate: float | None = None
    noise_size: NoiseSize = "schedule"
    ess_target: float | None = None
    output: Output = "mean"

    def __post_init__(self) -> None:
        if _VALIDATE.get():
            validate_config(self)

    @property
    def num_updates(self) -> int:
        """Number of score-ascent updates: N (paper) or N - 1 (reference)."""
        return self.num_steps if self.reading == "paper" else self.num_steps - 1


TEMPERATURE_RANGE = (1e-30, 1e30)
"""The temperatures lambda :func:`validate_config` accepts (the weights are float32)."""


def validate_config(config: MBDConfig) -> None:
    """Checks every field; raises :class:`ConfigError` naming the field and the range."""

    def is_int(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    if not is_int(config.num_samples) or config.num_samples < 1:
        raise ConfigError("num_samples", f"must be an integer >= 1 (got {config.num_samples})")
    if config.reading not in READINGS:
        raise ConfigError("reading", f"must be one of {', '.join(READINGS)} (got {config.reading})")
    low = 2 if config.reading == "reference" else 1
    if not is_int(config.num_steps) or config.num_steps < low:
        raise ConfigError(
            "num_steps",
            f"must be an integer >= {low} for the {config.reading} reading "
            f"(got {config.num_steps})",
        )
    t = config.temperature
    if not (isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)):
        raise ConfigError("temperature", f"must be a number in [1e-30, 1e+30] (got {t})")
    if not TEMPERATURE_RANGE[0] <= t <= TEMPERATURE_RANGE[1]:
        # log w = r / lambda is float32: near float32's smallest numbers lambda rounds to
        # 0 (r / lambda is inf or NaN, every weight 0); near its largest, to inf.
        raise ConfigError(
            "temperature",
            f"must be in [1e-30, 1e+30] (got {t:g}): the weights are computed in float32, "
            "where a lambda outside it rounds to 0 or overflows",
        )
    if config.schedule not in SCHEDULES:
        raise ConfigError(
            "schedule", f"must be one of {', '.join(SCHEDULES)} (got {config.schedule})"
        )
    for name in ("beta_start", "beta_end"):
        b = getattr(config, name)
        if not (isinstance(b, int | float) and math.isfinite(b) and 0 < b < 1):
            raise ConfigError(name, f"must be finite and in (0, 1) (got {b})")
    if config.beta_start > config.beta_end:
        raise ConfigError(
            "beta_start",
            f"must be <= beta_end (got {config.beta_start:g} > {config.beta_end:g}): the "
            "noise must shrink as the diffusion steps run; swap the two",
        )
    if config.normalize not in NORMALIZATIONS:
        raise ConfigError(
            "normalize", f"must be one of {', '.join(NORMALIZATIONS)} (got {config.normalize})"
        )
    if config.init not in INITS:
        raise ConfigError("init", f"must be one of {', '.join(INITS)} (got {config.init})")
    if config.noise_shape not in NOISE_SHAPES:
        raise ConfigError(
            "noise_shape",
            f"must be one of {', '.join(NOISE_SHAPES)} (got {config.noise_shape})",
        )

    def is_fraction(v: Any) -> bool:  # a number (not a bool) in (0, 1]
        number = isinstance(v, int | float) and not isinstance(v, bool)
        return number and math.isfinite(v) and 0 < v <= 1

    c = config.shape_rate
    if c is not None and not is_fraction(c):
        raise ConfigError("shape_rate", f"must be None or in (0, 1] (got {c})")
    if config.noise_shape != "isotropic" and config.reading != "reference":
        raise ConfigError(
            "noise_shape", f"shaped noise needs the reference reading (got {config.reading})"
        )
    if config.noise_size not in NOISE_SIZES:
        raise ConfigError(
            "noise_size", f"must be one of {', '.join(NOISE_SIZES)} (got {config.noise_size})"
        )
    if config.noise_size != "schedule" and config.reading != "reference":
        raise ConfigError(
            "noise_size", f"an adaptive size needs the reference reading (got {config.reading})"
        )
    e = config.ess_target
    if e is not None and not is_fraction(e):
        raise ConfigError("ess_target", f"must be None or a fraction in (0, 1] (got {e})")
    if config.output not in OUTPUTS:
        raise ConfigError("output", f"must be one of {', '.join(OUTPUTS)} (got {config.output})")


# --------------------------------------------------------------------------------------
# State, history, result
# --------------------------------------------------------------------------------------


@struct.dataclass
class MBDState:
    """Solver state: a pytree of arrays, so a solve scans and vmaps.

    Attributes:
        y: the diffusion iterate, shape ``shape``: Y^i (paper) or Ybar (reference).
        mean: current estimate of the clean solution Ybar^(0) (normalized units).
        step: number of updates done, int32 scalar.
        shape: the learned noise shape S (``noise_shape``): its diagonal (D,) or its
            Cholesky factor (D, D) with D = prod(shape); None for isotropic noise.
        shape_path: the path of the estimate's steps that S learns from, (D,).
        size: the adaptive noise size sigma (``noise_size="adaptive"``), scalar; None
            with the schedule's size.
        path: the estimate's evolution path p_sigma (D,) of :func:`size_update`.
        mode: the last update's highest-weight sample (``output="mode"``), normalized,
            shape ``shape``; the initial estimate before any update; None with
            ``output="mean"``.
    """

    y: Array
    mean: Array
    step: Array
    shape: Array | None = None
    shape_path: Array | None = None
    size: Array | None = None
    path: Array | None = None
    mode: Array | None = None


class StepInfo(NamedTuple):
    """Diagnostics of one diffusion step (each a scalar; stacked to (K,) in a solve).

    Attributes:
        reward_mean: mean score of the samples with finite reward.
        reward_max: best score among feasible samples (-inf if none).
        feasible_fraction: share of samples that are feasible with finite reward.
        valid_fraction: share of samples with finite reward.
        fallback: no sample feasible; weighted by violation instead.
        ess: effective sample size 1 / sum w^2 (0 when no sample was valid).
        noise_std: sampling standard deviation of this step.
        temperature: lambda of Eq. 2 this step weighed with (with ``ess_target``, the
            one it chose); NaN for methods that do not weigh by it (CEM, CMA-ES, ...).
    """

    reward_mean: Array
    reward_max: Array
    feasible_fraction: Array
    valid_fraction: Array
    fallback: Array
    ess: Array
    noise_std: Array
    temperature: Array


@struct.dataclass
class MBDResult:
    """What a solve returns.

    Attributes:
        z: the solution in the solver's normalized units, shape ``shape``.
        solution: the solution in real units: controls (T, nu) for a Problem, y for an
            Objective.
        reward: score of the solution: mean per-step reward of the controls replayed open
            loop (Problem) or fn(y) (Objective), scalar.
        violation: total constraint violation of the solution (0 = feasible), scalar.
        states: rollout states x_1 .. x_T (pytree, leading axis T), or None (Objective).
        rewards: per-step rewards (T,) of the replay, or None (Objective).
        history: :class:`StepInfo` with arrays of shape (K,), K = number of updates.
        iterates: estimates after each update, (K, *shape) normalized, or None.
    """

    z: Array
    solution: Array
    reward: Array
    violation: Array
    states: PyTree
    rewards: Array | None
    history: StepInfo
    iterates: Array | None


class Solver(NamedTuple):
    """The pure functions of one MBD solver (see :func:`make_solver`).

    Attributes:
        init: ``init(key, guess=None) -> state``; guess in normalized units, ``shape``.
        step: ``step(key, state, inst=None) -> (state, StepInfo)``: one diffusion step on
            an :class:`~mbd.problem.Instance` (None: the problem's own).
        solve: ``solve(key, guess=None, *, x0=None, params=None, instance=None) ->
            MBDResult``: the whole diffusion, compiled once for every instance (a
            :class:`ParametricSolve`).
        evaluate: ``evaluate(z, inst=None) -> Evaluation`` for a batch z (B, *shape).
        replay: ``replay(z, inst=None)``: the fields of a result for one solution.
        shape: shape of the decision variable.
        num_updates: K, number of updates in ``solve``.
        output: ``output(state) -> z``: the solution a state holds, normalized, ``shape``.
    """

    init: Callable[..., Any]
    step: Callable[..., tuple[Any, StepInfo]]
    solve: ParametricSolve
    evaluate: Callable[..., Evaluation]
    replay: Callable[..., tuple[Array, Array, Array, PyTree, Array | None]]
    shape: tuple[int, ...]
    num_updates: int
    output: Callable[[Any], Array]


class ParametricSolve:
    """A jitted solve whose problem instance is an argument: compiled once per problem
    structure, config and shapes, then run for any seed, initial state, params or
    demonstration reference without recompiling.

    ``solve(key, guess=None, *, x0=None, params=None, instance=None)``: the values left
    None are the problem's own (filled in before the jitted call, so they do not change
    what is compiled). ``guess`` None and an array are two compiles (two structures).
    ``jax.vmap`` over keys, initial states or params works as on any JAX function.
    """

    def __init__(
        self,
        fn: Callable[..., MBDResult],
        make_instance: Callable[..., Instance],
        chunked: _Chunked | None = None,
        floor_bytes: int | None = None,
    ):
        self._jit = jax.jit(fn)
        self.floor_bytes = floor_bytes
        """A lower bound of the bytes one solve needs per device (None: unknown),
        checked before the first compile."""
        self._floor_checked = False
        # Many instances in one program: vmap over keys and instances (guess shared).
        self._batched = jax.jit(jax.vmap(fn, in_axes=(0, None, 0)))
        self._make_instance = make_instance
        self._chunked = chunked

    def instance(
        self, x0: PyTree = None, params: PyTree = None, instance: Instance | None = None
    ) -> Instance:
        """The checked :class:`~mbd.problem.Instance` a call with these arguments solves."""
        if instance is not None:
            if x0 is not None or params is not None:
                raise ValueError("give either instance or x0 / params, not both")
            return self._make_instance(
                instance.x0, instance.params, instance.demo_reference, instance.demo_reward
            )
        return self._make_instance(x0, params)

    def __call__(
        self,
        key: Array,
        guess: Array | None = None,
        *,
        x0: PyTree = None,
        params: PyTree = None,
        instance: Instance | None = None,
    ) -> MBDResult:
        """Solves one instance.

        Args:
            key: PRNG key.
            guess: optional initial estimate, normalized, ``shape``.
            x0: initial state (the problem's ``init_state`` if None).
            params: the problem's params (its own if None).
            instance: a whole :class:`~mbd.problem.Instance` instead of x0 / params.

        Returns:
            :class:`MBDResult`.
        """
        inst = self.instance(x0, params, instance)
        if not self._floor_checked:
            self.check_floor()
        if self._chunked is not None and not isinstance(key, jax.core.Tracer):
            return self._chunked.run(key, guess, inst)
        return self._jit(key, guess, inst)

    def check_floor(self, batch: int = 1) -> None:
        """Refuses, before anything compiles, a solve whose memory floor
        (``floor_bytes`` x ``batch``) exceeds the free memory.

        Raises:
            mbd.compile.SolveTooLarge: naming both figures.
        """
        from mbd.compile import check_fits

        if self.floor_bytes is not None:
            check_fits(self.floor_bytes * batch, at_least=True)
        self._floor_checked = True

    def _stack(self, keys: Array, instances: list[Instance] | Instance) -> Instance:
        if isinstance(instances, Instance):
            return instances
        checked = [self.instance(instance=i) for i in instances]
        if len(checked) != len(keys):
            raise ValueError(f"{len(keys)} keys for {len(checked)} instances: give one each")
        return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *checked)

    def batch(
        self, keys: Array, instances: list[Instance] | Instance, guess: Array | None = None
    ) -> MBDResult:
        """Solves B instances at once: one program, vmapped over keys and instances.

        Args:
            keys: (B,) PRNG keys (e.g. ``jnp.stack([jax.random.key(s) for s in seeds])``),
                one per instance.
            instances: a list of B :class:`~mbd.problem.Instance` (each checked against the
                problem, e.g. ``task.make(seed=s).instance()``), or one Instance whose
                leaves already have a leading axis B.
            guess: optional initial estimate shared by all, ``shape``.

        Returns:
            :class:`MBDResult` whose every leaf has a leading axis B. It equals B
            sequential solves with the same keys up to the last bits: a batch may sum
            in another order (``tests/test_parametric.py`` measures it).
        """
        return self._batched(keys, guess, self._stack(keys, instances))

    def compile_batch(
        self, keys: Array, instances: list[Instance] | Instance, guess: Array | None = None
    ) -> Callable[[], MBDResult]:
        """Compiles :meth:`batch` for these arguments ahead of time.

        Returns:
            A function of no arguments that runs the batch; its ``memory_bytes`` is what
            the program needs (None if not reported).

        Raises:
            mbd.compile.SolveTooLarge: when the program needs more memory than is free.
        """
        from mbd.compile import check_fits, program_bytes

        stacked = self._stack(keys, instances)
        self.check_floor(len(keys))
        program = self._batched.lower(keys, guess, stacked).compile()

        def run() -> MBDResult:
            return program(keys, guess, stacked)

        run.memory_bytes = program_bytes(program)
        check_fits(run.memory_bytes)
        return run

    def lower(self, key: Array, guess: Array | None = None, **kwargs: Any):
        """``jax.jit(...).lower`` with the same arguments as a call (to compile ahead)."""
        return self._jit.lower(key, guess, self.instance(**kwargs))

    def compile(self, key: Array, guess: Array | None = None, **kwargs: Any) -> CompiledSolve:
        """Compiles ahead of time (to time the compile apart from the solve).

        Args:
            key: an example key.
            guess: None, or an example guess (the compiled program then needs one).
            **kwargs: ``x0``, ``params`` or ``instance``, as for a call.

        Returns:
            A :class:`CompiledSolve` taking the same arguments as a call.

        Raises:
            mbd.compile.SolveTooLarge: when the solve's memory floor exceeds the free
                memory (checked before compiling), or the compiled program needs more
                than is free (XLA's own memory analysis, checked before anything runs).
        """
        from mbd.compile import check_fits, program_bytes

        self.check_floor()
        if self._chunked is not None:
            run, need = self._chunked.lowered(key, guess, self.instance(**kwargs))
        else:
            run = self.lower(key, guess, **kwargs).compile()
            need = program_bytes(run)
        check_fits(need)
        return CompiledSolve(run, self.instance, need)

    @property
    def num_compiles(self) -> int:
        """How many programs this solve has compiled so far (one per structure)."""
        n = int(self._jit._cache_size()) + int(self._batched._cache_size())
        if self._chunked is not None:
            n += int(self._chunked.start._cache_size()) + int(self._chunked.scan._cache_size())
        return n


class CompiledSolve:
    """A solve compiled ahead of time by :meth:`ParametricSolve.compile`; called as the
    solve is, ``(key, guess=None, *, x0=None, params=None, instance=None)``."""

    def __init__(self, compiled: Any, resolve: Callable[..., Instance], memory_bytes: int | None):
        self._compiled = compiled
        self._resolve = resolve  # ParametricSolve.instance: (x0, params, instance)
        self.memory_bytes = memory_bytes
        """Bytes the compiled program(s) need while running (None: not reported)."""

    def __call__(
        self,
        key: Array,
        guess: Array | None = None,
        *,
        x0: PyTree = None,
        params: PyTree = None,
        instance: Instance | None = None,
    ) -> MBDResult:
        """Runs the compiled solve on one instance (see :meth:`ParametricSolve.__call__`)."""
        return self._compiled(key, guess, self._resolve(x0, params, instance))


# --------------------------------------------------------------------------------------
# The solver factory
# --------------------------------------------------------------------------------------


def make_solver(
    problem: Problem | Objective,
    config: MBDConfig | None = None,
    progress: Callable[[int, StepInfo], None] | None = None,
    parallel: Parallel = None,
) -> Solver:
    """Builds MBD's pure functions for one problem and configuration.

    Args:
        problem: a :class:`~mbd.problem.Problem` (Alg. 2) or
            :class:`~mbd.problem.Objective` (Alg. 1).
        config: hyper-parameters; ``MBDConfig()`` if None.
        progress: optional host callback ``progress(k, info)`` run after each update k
            (0-based) inside ``solve``, e.g. to drive a progress bar.
        parallel: where the samples are evaluated: a
            :class:`mbd.parallel.ParallelConfig` (``devices``, ``chunk``), a
            ``jax.sharding.Mesh`` to shard them over, or None (one device).

    Returns:
        A :class:`Solver`. ``solve`` is a :class:`ParametricSolve`: it compiles once for
        this problem structure and config and reruns for any key, initial state
        (``x0=``), params and demonstration reference without recompiling.
    """
    return make_mbd(problem, config, progress, parallel=parallel)


def streamed_rows(
    config: MBDConfig, parallel: Parallel
) -> tuple[jax.sharding.Mesh | None, int | None]:
    """The mesh and the samples MBD draws at once when it streams its chunks.

    A chunk is ``chunk`` samples per device, so ``chunk`` x devices over the mesh; None
    (no streaming) when there is no chunk or it covers the batch.

    Raises:
        ConfigError: for a shaped noise (``noise_shape``), which needs the whole batch.
    """
    mesh, chunk = resolve(parallel)
    rows = None if chunk is None else chunk * (1 if mesh is None else mesh.size)
    if rows is None or rows >= config.num_samples:
        return mesh, None
    if config.noise_shape != "isotropic":
        raise ConfigError(
            "chunk",
            f"--noise-shape {config.noise_shape} needs the whole batch at once "
            f"(drop --chunk, or give one >= --num-samples {config.num_samples})",
        )
    return mesh, rows


def make_mbd(
    problem: Problem | Objective,
    config: MBDConfig | None = None,
    progress: Callable[[int, StepInfo], None] | None = None,
    noise_std: np.ndarray | None = None,
    parallel: Parallel = None,
) -> Solver:
    """:func:`make_solver` with an optional noise table of one's own (used by MPC).

    Args:
        problem: a Problem or Objective.
        config: hyper-parameters; ``MBDConfig()`` if None.
        progress: optional host callback per update.
        noise_std: optional sampling std of each update, shape (K,) or (K, R, 1) with
            R = ``shape[0]`` (a std per decision row, e.g. along the horizon), replacing
            sqrt(1 - alpha_bar_i) of the reference reading; K = ``config.num_updates``.
        parallel: where the samples are evaluated (see :func:`make_solver`).

    Returns:
        A :class:`Solver`.
    """
    config = MBDConfig() if config is None else config
    validate_config(config)
    # With chunks, MBD streams its samples (see weigh_and_mean_streamed): the evaluator
    # then only shards.
    mesh, rows = streamed_rows(config, parallel)
    n_chunks = None if rows is None else -(-config.num_samples // rows)
    adaptive = config.noise_size == "adaptive"
    want_mode = config.output == "mode"
    if adaptive and noise_std is not None:
        raise ValueError("noise_size 'adaptive' sets its own size; give no noise_std table")
    evaluator = make_evaluator(problem, parallel if rows is None else mesh, config.num_samples)
    dim = math.prod(evaluator.shape)
    if config.noise_shape == "full" and dim > FULL_SHAPE_MAX_DIM:
        raise ValueError(
            f"noise_shape 'full' learns a {dim} x {dim} covariance; above "
            f"{FULL_SHAPE_MAX_DIM} use 'diagonal' (or spline knots, fewer dimensions)"
        )
    if rows is not None:
        floor = estimate_bytes(
            config.num_samples, evaluator.shape, *_state_size(problem), parallel, streamed=True
        )
        evaluator = evaluator._replace(floor_bytes=floor)
    evaluate, replay, bounded, shape = (
        evaluator.evaluate,
        evaluator.replay,
        evaluator.bounded,
        evaluator.shape,
    )
    demo = problem.demo
    own_demo_reward = None if demo is None else jnp.float32(demo.reward)
    num_samples = config.num_samples
    paper = config.reading == "paper"
    K = config.num_updates

    # Per-update coefficients, index k = 0 .. K-1 in the order the updates run.
    if paper:
        # beta_0 .. beta_N (A.4.2); update k is diffusion step i = N - k (Alg. 1, line 2).
        sch = make_schedule(
            config.schedule, config.num_steps + 1, config.beta_start, config.beta_end
        )
        i = np.arange(config.num_steps, 0, -1)
        ab_prev = sch.alpha_bars[i - 1]
        mean_scale = 1.0 / np.sqrt(ab_prev)  # Eq. 8 / Alg. 1 line 3: mean Y^i / sqrt(ab_{i-1})
        noise = np.sqrt(1.0 / ab_prev - 1.0)  # covariance (1 / ab_{i-1} - 1) I
        ab_i = sch.alpha_bars[i]
        alpha_i = sch.alphas[i]
        ab_start = float(sch.alpha_bars[-1])
    else:
        # beta_0 .. beta_{N-1}; updates i = N-1 .. 1, sampling Ybar + sqrt(1 - ab_i) eps.
        sch = make_schedule(config.schedule, config.num_steps, config.beta_start, config.beta_end)
        i = np.arange(config.num_steps - 1, 0, -1)
        mean_scale = np.ones_like(i, dtype=np.float64)
        noise = np.sqrt(1.0 - sch.alpha_bars[i])
        ab_i = sch.alpha_bars[i]
        alpha_i = sch.alphas[i]
        ab_start = 1.0
    if noise_std is not None:
        noise_std = np.asarray(noise_std, np.float32)
        ok_shapes = ((K,), (K, shape[0], 1))
        if paper or noise_std.shape not in ok_shapes or not np.all(noise_std >= 0):
            raise ValueError(
                f"noise_std must be >= 0 with shape {ok_shapes[0]} or {ok_shapes[1]}, "
                f"for the reference reading (got {noise_std.shape}, {config.reading})"
            )
        stds = jnp.asarray(noise_std)
    else:
        stds = jnp.asarray(noise, jnp.float32)
    coef = jnp.asarray(np.stack([mean_scale, ab_i, alpha_i], axis=1), jnp.float32)

    def init(key: Array, guess: Array | None = None) -> MBDState:
        if guess is not None:
            g = jnp.asarray(guess, jnp.float32)
            if g.shape != shape:
                raise ValueError(f"initial guess has shape {g.shape}, expected {shape}")
            clean = g
            y = clean * jnp.sqrt(ab_start)  # Eq. 3: Y^N ~ sqrt(ab_N) Y^(0)
        elif config.init == "random" or (config.init == "auto" and paper):
            y = jax.random.normal(key, shape, jnp.float32)  # Alg. 1 line 1: Y^N ~ N(0, I)
            clean = y / jnp.sqrt(ab_start)
        else:
            clean = jnp.zeros(shape, jnp.float32)
            y = clean
        s_shape = initial_shape(config.noise_shape, dim)
        s_path = None if s_shape is None else jnp.zeros((dim,), jnp.float32)
        size = jnp.float32(stds[0].max()) if adaptive else None
        path = jnp.zeros((dim,), jnp.float32) if adaptive else None
        return MBDState(
            y=y,
            mean=clean,
            step=jnp.zeros((), jnp.int32),
            shape=s_shape,
            shape_path=s_path,
            size=size,
            path=path,
            mode=clean if want_mode else None,
        )

    def draw(key: Array, center: Array, std: Array, rows: int, s_shape=None) -> Array:
        eps = jax.random.normal(key, (rows, *shape), jnp.float32)
        eps = apply_shape(config.noise_shape, s_shape, eps)  # N(0, S): shaped noise
        samples = center + std * eps  # Alg. 1/2 line 3
        return jnp.clip(samples, -1.0, 1.0) if bounded else samples  # what is applied

    def weigh_and_mean(key: Array, center: Array, std: Array, inst: Instance | None, s_shape):
        """(weights, evaluation, Ybar, samples, top-weight sample or None): Alg. 2 lines
        3-5 on B samples at once."""
        samples = draw(key, center, std, num_samples, s_shape)
        ev = evaluate(samples, inst)  # Alg. 2 line 4: rollout -> dynamically feasible samples
        demo_reward = own_demo_reward if inst is None else inst.demo_reward
        wt = compute_weights(ev.reward, ev.violation, config, ev.demo_loglik, demo_reward)
        ybar = jnp.tensordot(wt.weights, samples, axes=1)  # Eq. 9b / 10d / 13
        top = samples[jnp.argmax(wt.weights)] if want_mode else None
        return wt, ev, ybar, samples, top

    def weigh_and_mean_streamed(
        key: Array, center: Array, std: Array, inst: Instance | None, s_shape=None
    ):
        """The same in chunks of ``rows`` samples: each chunk's noise is drawn from its own
        key, rolled out, and drawn again for the weighted mean, so no B x shape array
        exists (memory ~ B scalars + one chunk); no samples are returned, only the
        top-weight one where ``output="mode"`` asks for it."""
        keys = jax.random.split(key, n_chunks)
        ev = jax.lax.map(lambda k: evaluate(draw(k, center, std, rows), inst), keys)
        ev = jax.tree_util.tree_map(lambda a: a.reshape(-1)[:num_samples], ev)
        demo_reward = own_demo_reward if inst is None else inst.demo_reward
        wt = compute_weights(ev.reward, ev.violation, config, ev.demo_loglik, demo_reward)
        w = jnp.pad(wt.weights, (0, n_chunks * rows - num_samples)).reshape(n_chunks, rows)

        def add(acc, kw):
            k, wk = kw
            return acc + jnp.tensordot(wk, draw(k, center, std, rows), axes=1), None

        ybar, _ = jax.lax.scan(add, jnp.zeros(shape, jnp.float32), (keys, w))
        top = None
        if want_mode:  # its chunk drawn once more: sample j is row j % rows of chunk j // rows
            j = jnp.argmax(wt.weights)
            top = draw(keys[j // rows], center, std, rows)[j % rows]
        return wt, ev, ybar, None, top  # Eq. 9b / 10d / 13

    def learn_shape(state, samples, center, std, ybar, weights, ess):
        """The noise shape S and its path after this step (see :func:`shape_update`)."""
        d = math.prod(shape)
        c_c, c_1, c_mu = shape_rates(config.noise_shape, d, ess)
        if config.shape_rate is not None:
            c_mu = jnp.minimum(jnp.float32(config.shape_rate), 1.0 - c_1)
        scale = jnp.maximum(jnp.max(std), 1e-30)
        noise = ((samples - center) / scale).reshape(num_samples, d)
        step_n = ((ybar - center) / scale).reshape(d)
        s_path = (1.0 - c_c) * state.shape_path + jnp.sqrt(c_c * (2.0 - c_c) * ess) * step_n
        s_shape = shape_update(config.noise_shape, state.shape, noise, weights, s_path, c_1, c_mu)
        return s_shape, s_path

    def step(
        key: Array, state: MBDState, inst: Instance | None = None
    ) -> tuple[MBDState, StepInfo]:
        k = jnp.clip(state.step, 0, K - 1)
        c_mean, c_ab, c_alpha = coef[k]
        c_std = stds[k]
        if adaptive:  # never above the schedule's size
            c_std = jnp.minimum(c_std, state.size)
        center = state.y * c_mean
        weigh = weigh_and_mean if rows is None else weigh_and_mean_streamed
        wt, ev, ybar, samples, top = weigh(key, center, c_std, inst, state.shape)
        any_w = jnp.any(wt.weights > 0)
        ess = jnp.where(any_w, 1.0 / jnp.sum(wt.weights**2), 0.0)
        ybar = jnp.where(any_w, ybar, center)  # nothing valid: keep the sampling mean
        mode = jnp.where(any_w, top, ybar) if want_mode else None  # output="mode"
        if paper:
            score = -state.y / (1.0 - c_ab) + jnp.sqrt(c_ab) / (1.0 - c_ab) * ybar  # Eq. 10c
            y_next = (state.y + (1.0 - c_ab) * score) / jnp.sqrt(c_alpha)  # Eq. 6
        else:
            y_next = ybar  # Eq. 6 with Eq. 10c, in the clean variable (see module doc)
        # The adaptive parts learn from this step unless no sample had a weight.
        learned = {}
        if state.shape is not None:
            learned["shape"], learned["shape_path"] = learn_shape(
                state, samples, center, c_std, ybar, wt.weights, ess
            )
        if adaptive:  # from the size used this step (the schedule may have capped it)
            learned["size"], learned["path"] = size_update(
                jnp.max(c_std),
                state.path,
                (ybar - state.mean).reshape(-1),
                ess,
                config.noise_shape,
                state.shape,
            )
        learned = {n: jnp.where(any_w, v, getattr(state, n)) for n, v in learned.items()}
        new = state.replace(y=y_next, mean=ybar, step=state.step + 1, mode=mode, **learned)
        n = jnp.float32(num_samples)
        finite_r = jnp.where(wt.valid, ev.reward, 0.0)
        info = StepInfo(
            reward_mean=jnp.sum(finite_r) / jnp.maximum(jnp.sum(wt.valid), 1),
            reward_max=jnp.max(jnp.where(wt.feasible, ev.reward, -jnp.inf)),
            feasible_fraction=jnp.sum(wt.feasible) / n,
            valid_fraction=jnp.sum(wt.valid) / n,
            fallback=wt.fallback,
            ess=ess,
            noise_std=jnp.mean(c_std),
            temperature=wt.temperature,
        )
        return new, info

    def output(state: MBDState) -> Array:
        return state.mode if want_mode else state.mean

    solve = make_scan_solve(
        init,
        step,
        output,
        evaluator,
        K,
        progress=progress,
        keep_iterates=config.keep_iterates,
    )

    return Solver(
        init=init,
        step=step,
        solve=solve,
        evaluate=evaluate,
        replay=replay,
        shape=shape,
        num_updates=K,
        output=output,
    )


def make_scan_solve(
    init: Callable[..., Any],
    step: Callable[..., tuple[Any, StepInfo]],
    output: Callable[[Any], Array],
    evaluator: Evaluator,
    num_updates: int,
    progress: Callable[[int, StepInfo], None] | None = None,
    keep_iterates: bool = False,
    clip_output: bool = False,
) -> ParametricSolve:
    """Builds a jitted whole solve: ``init``, then ``num_updates`` steps in one ``lax.scan``.

    Shared by MBD and the baselines, so that one method and seed split keys alike (one
    key for ``init``, one per step) and every solve returns the same :class:`MBDResult`.

    Args:
        init: ``init(key, guess) -> state``.
        step: ``step(key, state, inst) -> (state, StepInfo)``.
        output: ``output(state) -> z``, the solution in normalized units, ``shape``.
        evaluator: scores and replays the solution.
        num_updates: K, number of steps.
        progress: optional host callback ``progress(k, info)`` after each step k.
        keep_iterates: also return ``output(state)`` after every step, (K, *shape).
        clip_output: clip z to [-1, 1] before the replay when the search is bounded.

    Returns:
        ``solve(key, guess=None, *, x0=None, params=None, instance=None) -> MBDResult``,
        a :class:`ParametricSolve` (the instance is an argument of the compiled program).
    """

    def _start(key: Array, guess: Array | None):
        k_init, k_steps = jax.random.split(key)
        return init(k_init, guess), jax.random.split(k_steps, num_updates)

    def _scan(state, ks, inst: Instance):
        def body(st, k_key):
            st, info = step(k_key, st, inst)
            return st, (info, output(st) if keep_iterates else None)

        return jax.lax.scan(body, state, ks)

    def _finish(state, history, iterates, inst: Instance) -> MBDResult:
        z = output(state)
        if clip_output and evaluator.bounded:
            z = jnp.clip(z, -1.0, 1.0)
        solution, reward, viol, states, rewards = evaluator.replay(z, inst)
        return MBDResult(
            z=z,
            solution=solution,
            reward=reward,
            violation=viol,
            states=states,
            rewards=rewards,
            history=history,
            iterates=iterates,
        )

    def _solve(key: Array, guess: Array | None, inst: Instance) -> MBDResult:
        state, keys = _start(key, guess)
        state, (history, iterates) = _scan(state, keys, inst)
        return _finish(state, history, iterates, inst)

    chunked = None
    if progress is not None:
        # Progress without host callbacks inside the program (a program with callbacks is
        # never written to the persistent compilation cache): the updates run in equal
        # chunks of one compiled scan, and ``progress`` is called between them.
        size = max(d for d in range(1, num_updates + 1) if num_updates % d == 0 and
                   d <= max(1, num_updates // 10))  # fmt: skip
        chunked = _Chunked(_start, _scan, _finish, num_updates, size, progress)
    return ParametricSolve(_solve, evaluator.make_instance, chunked, evaluator.floor_bytes)


class _Chunked:
    """A solve run as ``start`` then equal chunks of one compiled ``scan`` (for progress).

    Each chunk also replays the estimate it ends with (one rollout, against the chunk's
    ``size x num_samples``), so the last chunk's replay is the result and no third
    program (and no third trace of the dynamics) is needed.
    """

    def __init__(self, start, scan, finish, num_updates: int, size: int, progress):
        def scan_replay(state, ks, inst):
            state, (hist, its) = scan(state, ks, inst)
            return state, (hist, its), finish(state, None, None, inst)

        self.start = jax.jit(start)
        self.scan = jax.jit(scan_replay)
        self.num_updates = num_updates
        self.size = size
        self.progress = progress

    def lowered(self, key: Array, guess: Array | None, inst: Instance):
        """Compiles the two programs; returns a runner with the compiled ones and the
        memory the larger of them needs (None if not reported)."""
        start_lowered = self.start.lower(key, guess)
        st, keys = start_lowered.out_info
        chunk_keys = jax.ShapeDtypeStruct((self.size, *keys.shape[1:]), keys.dtype)
        scan_lowered = self.scan.lower(st, chunk_keys, inst)
        from mbd.compile import program_bytes

        start, scan = start_lowered.compile(), scan_lowered.compile()
        sizes = [program_bytes(start), program_bytes(scan)]
        need = None if None in sizes else max(sizes)
        return (lambda k, g, i: self.run(k, g, i, start, scan)), need

    def run(self, key, guess, inst, start=None, scan=None) -> MBDResult:
        start, scan = start or self.start, scan or self.scan
        state, keys = start(key, guess)
        parts = []
        result = None
        for c in range(0, self.num_updates, self.size):
            state, part, result = scan(state, keys[c : c + self.size], inst)
            info = jax.tree_util.tree_map(np.asarray, part[0])
            for j in range(self.size):
                self.progress(c + j, jax.tree_util.tree_map(lambda a, j=j: a[j], info))
            parts.append(part)
        history, iterates = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
        return result.replace(history=history, iterates=iterates)


def solve(
    problem: Problem | Objective,
    config: MBDConfig | None = None,
    key: Array | int = 0,
    guess: Array | None = None,
) -> MBDResult:
    """Convenience: build a solver and run one solve.

    Args:
        problem: a Problem or Objective.
        config: hyper-parameters (``MBDConfig()`` if None).
        key: a JAX key or an integer seed.
        guess: optional initial guess in normalized units, shape ``problem.shape``.

    Returns:
        :class:`MBDResult`.
    """
    if isinstance(key, int):
        key = jax.random.key(key)
    return make_solver(problem, config).solve(key, guess)
