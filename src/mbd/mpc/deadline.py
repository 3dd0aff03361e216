"""A planner that meets the deadline it is given: its budget sized to a replanning rate.

:func:`fit_to_rate` builds controllers of growing budgets (samples per update doubling
from ``min_samples``; one update per replan if even the smallest budget with
``iterations`` misses), times one replan of each on this machine (compiled first, then
the median of a few runs from the problem's initial state) and keeps those whose replan
takes at most ``margin`` of the period 1 / rate. The largest is the one to start with;
the smaller ones stay compiled, so that :class:`~mbd.mpc.realtime.RealtimeLoop`
re-checks the latency while running and steps down (or back up) without compiling.

The timing is a function argument: a :class:`~mbd.mpc.realtime.FakeClock`'s cost
model makes the choice deterministic in tests.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbd.mpc.controller import Controller
from mbd.mpc.loops import _jitted


class Trial(NamedTuple):
    """One budget timed: samples, updates per replan, seconds per replan."""

    num_samples: int
    iterations: int
    seconds: float


class Fit(NamedTuple):
    """The budgets that fit a rate.

    Attributes:
        ladder: controllers whose replan fits, smallest budget first (the smallest budget
            tried when none fits).
        trials: every budget timed, in the order tried.
        period: the deadline, seconds (1 / rate).
        fits: whether the chosen (last) budget fits the deadline.
    """

    ladder: list[Controller]
    trials: list[Trial]
    period: float
    fits: bool

    @property
    def chosen(self) -> Controller:
        """The largest budget that fits (the smallest tried when none does)."""
        return self.ladder[-1]

    def record(self) -> dict:
        """The choice, as ``summary.json`` records it."""
        c = self.chosen
        return {
            "rate_hz": 1.0 / self.period,
            "num_samples": c.num_samples,
            "iterations": c.iterations,
            "fits": self.fits,
            "trials": [t._asdict() for t in self.trials],
        }


def replan_seconds(controller: Controller, rounds: int = 5, key: jax.Array | None = None) -> float:
    """Median wall seconds of one compiled replan from the problem's initial state.

    Args:
        controller: the controller.
        rounds: replans timed after the compiling one.
        key: PRNG key (``key(0)`` if None).

    Returns:
        Seconds.
    """
    key = jax.random.key(0) if key is None else key
    init, replan = _jitted(controller.init), _jitted(controller.replan)  # shared with the loop
    x = controller.problem.init_state
    cs = jax.block_until_ready(init(key))
    jax.block_until_ready(replan(key, cs, x, jnp.int32(1)))
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        jax.block_until_ready(replan(key, cs, x, jnp.int32(1)))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fit_to_rate(
    make: Callable[[int, int], Controller],
    rate: float,
    iterations: int = 2,
    margin: float = 0.7,
    min_samples: int = 8,
    max_samples: int = 4096,
    seconds: Callable[[Controller], float] = replan_seconds,
) -> Fit:
    """Sizes the planner to a replanning rate on this machine.

    Args:
        make: ``make(num_samples, iterations) -> Controller``.
        rate: replans per second wanted (Hz, > 0).
        iterations: updates per replan to try first (>= 1); 1 if even ``min_samples``
            samples with it miss.
        margin: fraction of the period a replan may take, in (0, 1] (the rest is for the
            plant, the other thread and the noise of a shared machine).
        min_samples: the smallest budget (>= 1).
        max_samples: the largest (>= min_samples); samples double from the smallest.
        seconds: ``seconds(controller) -> s`` per replan (:func:`replan_seconds`, or a
            clock's cost model).

    Returns:
        :class:`Fit`.

    Raises:
        ValueError: naming a bad argument.
    """
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be finite and > 0 Hz (got {rate!r})")
    if not (0 < margin <= 1):
        raise ValueError(f"margin must be in (0, 1] (got {margin!r})")
    if not (isinstance(iterations, int) and iterations >= 1):
        raise ValueError(f"iterations must be an integer >= 1 (got {iterations!r})")
    if not (isinstance(min_samples, int) and 1 <= min_samples <= max_samples):
        raise ValueError(
            f"min_samples must be an integer in [1, max_samples = {max_samples}] "
            f"(got {min_samples!r})"
        )
    period = 1.0 / rate
    budget = margin * period
    trials: list[Trial] = []

    def timed(n: int, k: int) -> tuple[Controller, float]:
        c = make(n, k)
        s = float(seconds(c))
        trials.append(Trial(n, k, s))
        return c, s

    c, s = timed(min_samples, iterations)
    if s > budget and iterations > 1:
        iterations = 1
        c, s = timed(min_samples, iterations)
    if s > budget:
        return Fit([c], trials, period, False)
    ladder = [c]
    n = min_samples
    while 2 * n <= max_samples:
        n *= 2
        c, s = timed(n, iterations)
        if s > budget:
            break
        ladder.append(c)
    return Fit(ladder, trials, period, True)


__all__ = ["Fit", "Trial", "fit_to_rate", "replan_seconds"]
