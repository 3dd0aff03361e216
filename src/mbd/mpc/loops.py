"""Synchronous closed loops of a controller (:mod:`mbd.mpc.controller`).

:func:`closed_loop` runs T control steps in one ``lax.scan`` (the plant may be another
model, e.g. with a different mass, to show robustness); :func:`run_timed` runs the same
loop from Python, one jitted step at a time, to measure the control rate. In both the
plant waits for the planner; :mod:`mbd.mpc.realtime` runs them side by side instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbd.mpc.controller import Controller
from mbd.problem import Array, Problem, PyTree


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
            mismatch); None: the planner's. Refused for a problem without params.
        plant: optional plant ``plant(x, u) -> (x_next, r)``, e.g. the step of a
            problem made from another model with the same state; None: the problem's own
            step with ``plant_params``.

    Returns:
        :class:`LoopResult`. Jit the call (``steps`` static) to compile the loop once.

    Raises:
        ValueError: ``plant_params`` for a problem without params, or with ``plant``.
    """
    problem = controller.problem
    if plant is not None and plant_params is not None:
        raise ValueError("closed_loop: give plant_params or plant, not both")
    check_plant_params(problem, plant_params, "closed_loop")
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


def check_plant_params(problem: Problem, plant_params: PyTree, where: str) -> None:
    """Refuses plant params that would be ignored: a problem without params (a MuJoCo,
    MJX or Warp model made by ``make_mujoco_problem`` without ``params``, a step that
    takes none) steps the same whatever they are.

    Args:
        problem: the controller's problem.
        plant_params: the plant's params, or None.
        where: the function's name for the message.

    Raises:
        ValueError: one line, naming ``plant=`` as the way to another model.
    """
    if plant_params is not None and problem.params is None:
        raise ValueError(
            f"{where}: plant_params would be ignored: problem {problem.name!r} has no params "
            "(its step takes none, so a mass or friction cannot reach the model this way); "
            "pass plant=another_problem.step (a step of another model, e.g. "
            "make_mujoco_problem of an edited MJCF) instead"
        )


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
    plant: Callable[..., tuple[PyTree, Array]] | None = None,
    disturb: Callable[[int, PyTree], PyTree | None] | None = None,
) -> TimedLoop:
    """Runs the closed loop one jitted control step at a time, timing each solve.

    Same keys and result as :func:`closed_loop` (up to the last bits of reduction order).

    Args:
        controller: from :func:`make_controller`.
        key: PRNG key.
        steps: T >= 1.
        x0: plant initial state.
        params: planner params.
        plant_params: plant params (model mismatch); the planner's if None. Refused for
            a problem without params.
        on_step: optional ``on_step(t, reward)`` after each control step.
        plant: optional plant ``plant(x, u) -> (x_next, r)`` as in :func:`closed_loop`
            (jitted here); None: the problem's own step with ``plant_params``.
        disturb: optional ``disturb(t, x) -> x or None``, called on the host with the
            plant's state after control step t: a state it returns replaces it (a push,
            a slip: what no model foresaw), None leaves it. Its leaves are cast to the
            state's own types, so the planner compiles nothing new.

    Returns:
        :class:`TimedLoop`.

    Raises:
        ValueError: ``plant_params`` for a problem without params, or with ``plant``.
    """
    import time

    problem = controller.problem
    if plant is not None and plant_params is not None:
        raise ValueError("run_timed: give plant_params or plant, not both")
    check_plant_params(problem, plant_params, "run_timed")
    x0 = problem.init_state if x0 is None else x0
    inst = problem.make_instance(x0, params)
    params = inst.params
    p_plant = params if plant_params is None else plant_params
    # One jitted function per controller, kept across calls: later runs do not compile.
    init, step = _jitted(controller.init), _jitted(controller.step)
    if plant is None:
        plant_fn = _jitted_plant(problem)
    else:
        own = _jitted(plant)

        def plant_fn(x, u, p):  # a plant of one's own has its params inside
            del p
            return own(x, u)

    k0, k_loop = jax.random.split(key)
    keys = jax.random.split(k_loop, steps)
    t0 = time.perf_counter()
    cs = jax.block_until_ready(init(k0, inst.x0, params))
    # A dry run of the (pure) step and plant compiles them; its outputs are dropped.
    jax.block_until_ready(step(keys[0], cs, inst.x0, params))
    jax.block_until_ready(plant_fn(inst.x0, jnp.zeros(problem.action_dim), p_plant))
    compile_seconds = time.perf_counter() - t0
    x = inst.x0
    out, times = [], []
    for t in range(steps):
        s0 = time.perf_counter()
        u, cs, report = step(keys[t], cs, x, params)
        u = jax.block_until_ready(u)
        times.append(time.perf_counter() - s0)
        x, r = plant_fn(x, u, p_plant)
        if disturb is not None:
            x = _disturbed(disturb, t, x)
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


def _disturbed(disturb: Callable, t: int, x: PyTree) -> PyTree:
    """``disturb(t, x)`` with the state's structure and types kept (None: ``x``)."""
    new = disturb(t, x)
    if new is None:
        return x
    if jax.tree_util.tree_structure(new) != jax.tree_util.tree_structure(x):
        raise TypeError(
            f"run_timed: disturb returned a state of another structure at step {t} "
            f"({jax.tree_util.tree_structure(new)}, not {jax.tree_util.tree_structure(x)})"
        )
    return cast_like(new, x)


def cast_like(new: PyTree, x: PyTree) -> PyTree:
    """``new``'s leaves as JAX arrays of ``x``'s dtypes (a state put in from outside: a
    push, a reset), so that the planner compiles nothing new."""
    return jax.tree_util.tree_map(lambda a, b: jnp.asarray(a, jnp.result_type(b)), new, x)


__all__ = ["LoopResult", "TimedLoop", "check_plant_params", "closed_loop", "run_timed"]
