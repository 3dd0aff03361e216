"""How a batch of normalized samples is scored, shared by MBD and every baseline.

For a :class:`~mbd.problem.Problem` each sample (T, nu) in [-1, 1] is mapped to real
controls and rolled out (Alg. 2, line 4: ``lax.scan`` over time and ``vmap`` over
samples, or the engine's whole-horizon rollout where it has one); its score is the mean
per-step reward. For an :class:`~mbd.problem.Objective` the score is ``fn(decode(z))``.
The solvers never name an engine: they see an :class:`Evaluator`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbd.parallel import Parallel, estimate_bytes, spread
from mbd.problem import Array, Instance, Objective, Problem, PyTree, Rollout, rollout


class Evaluation(NamedTuple):
    """Per-sample evaluation of a batch (B samples).

    Attributes:
        reward: (B,) scores; violation: (B,) constraint violation; demo_loglik: (B,) or None.
    """

    reward: Array
    violation: Array
    demo_loglik: Array | None


class Evaluator(NamedTuple):
    """How a solver scores normalized samples of one problem (see :func:`make_evaluator`).

    Attributes:
        evaluate: ``evaluate(z, inst=None) -> Evaluation`` for a batch z of shape
            (B, *shape) on an :class:`~mbd.problem.Instance` (None: the problem's own).
        replay: ``replay(z, inst=None) -> (solution, reward, violation, states,
            rewards)`` for one normalized z: real-unit solution, scalar score, scalar
            violation, rollout states (or None) and per-step rewards (T,) (or None).
        bounded: whether samples live in the box [-1, 1] (and are clipped to it).
        shape: shape of the decision variable.
        make_instance: ``make_instance(x0=None, params=None, ...) -> Instance``, checked
            against the problem (see :meth:`mbd.problem.Problem.make_instance`).
        floor_bytes: a lower bound of the memory a solve with this evaluator needs on
            one device (:func:`mbd.parallel.estimate_bytes`), checked before compiling;
            None when the batch size was not given.
    """

    evaluate: Callable[..., Evaluation]
    replay: Callable[..., tuple[Array, Array, Array, PyTree, Array | None]]
    bounded: bool
    shape: tuple[int, ...]
    make_instance: Callable[..., Instance]
    floor_bytes: int | None = None


def _problem_functions(problem: Problem):
    demo = problem.demo
    own = problem.instance()

    def one(z, inst):
        u = problem.controls(z)
        ro: Rollout = rollout(problem, u, inst.x0, inst.params)
        reward = jnp.mean(ro.rewards)
        q = None
        if demo is not None:
            obs = u if demo.observe is None else demo.observe(ro.states, u)
            q = demo.log_likelihood(jnp.asarray(obs), inst.demo_reference)
        return reward, ro.violation, q, ro

    # Jitted so that the vmapped rollout of the samples and the replay reuse one trace of
    # ``one`` (jit caches it at one sample's shapes): about a tenth less lowering time for
    # Brax's hopper, which a start from the persistent cache still pays.
    one_jit = jax.jit(one)

    def evaluate(zs, inst=None):
        inst = own if inst is None else inst
        reward, viol, q, _ = jax.vmap(one_jit, in_axes=(0, None))(zs, inst)
        return Evaluation(reward=reward, violation=viol, demo_loglik=q)

    def replay(z, inst=None):
        reward, viol, _, ro = one_jit(z, own if inst is None else inst)
        return problem.controls(z), reward, viol, ro.states, ro.rewards

    return evaluate, replay, True


def make_evaluator(
    problem: Problem | Objective,
    parallel: Parallel = None,
    num_samples: int | None = None,
) -> Evaluator:
    """Builds the batch evaluation of a problem, shared by MBD and the baselines.

    For a :class:`~mbd.problem.Problem`, each sample z (T, nu) in [-1, 1] is mapped to
    real controls and rolled out (``lax.scan`` over time, ``vmap`` over samples; Alg. 2
    line 4); its score is the mean per-step reward. For an
    :class:`~mbd.problem.Objective`, the score is ``fn(decode(z))``.

    Args:
        problem: a Problem or an Objective.
        parallel: how the samples are spread: a :class:`mbd.parallel.ParallelConfig`
            (devices, chunk), a ``jax.sharding.Mesh``, or None (one device, all at once).
        num_samples: B, the batch a solve evaluates per step; sets ``floor_bytes``.

    Returns:
        :class:`Evaluator`.
    """
    if isinstance(problem, Problem):
        evaluate, replay, bounded = _problem_functions(problem)
    elif isinstance(problem, Objective):
        evaluate, replay, bounded = _objective_functions(problem)
    else:
        raise TypeError(f"problem must be a Problem or an Objective (got {type(problem).__name__})")
    shape = tuple(problem.shape)
    floor = None
    if num_samples is not None:
        floor = estimate_bytes(num_samples, shape, *_state_size(problem), parallel)
    return Evaluator(
        evaluate=spread(evaluate, parallel),
        replay=replay,
        bounded=bounded,
        shape=shape,
        make_instance=problem.make_instance,
        floor_bytes=floor,
    )


def _state_size(problem: Problem | Objective) -> tuple[int, int]:
    """(bytes of one state, rollout steps T); (0, 0) for an Objective."""
    if not isinstance(problem, Problem):
        return 0, 0
    leaves = jax.tree_util.tree_leaves(problem.init_state)
    return sum(int(np.asarray(leaf).nbytes) for leaf in leaves), problem.horizon


def _objective_functions(obj: Objective):
    demo = obj.demo
    own = obj.instance()

    def one(z, inst):
        y = obj.decode(z)
        reward = jnp.asarray(obj.fn(y)).reshape(())
        if obj.constraint is None:
            viol = jnp.zeros((), dtype=reward.dtype)
        else:
            viol = jnp.sum(jnp.maximum(jnp.asarray(obj.constraint(y)), 0.0))
        q = None
        if demo is not None:
            obs = y if demo.observe is None else demo.observe(y)
            q = demo.log_likelihood(jnp.asarray(obs), inst.demo_reference)
        return reward, viol, q

    def evaluate(zs, inst=None):
        inst = own if inst is None else inst
        reward, viol, q = jax.vmap(one, in_axes=(0, None))(zs, inst)
        return Evaluation(reward=reward, violation=viol, demo_loglik=q)

    def replay(z, inst=None):
        reward, viol, _ = one(z, own if inst is None else inst)
        return obj.decode(z), reward, viol, None, None

    return evaluate, replay, obj.bounded


__all__ = ["Evaluation", "Evaluator", "make_evaluator"]
