"""The asynchronous real-time loop: the world never waits for the planner.

The plant runs at wall-clock pace on its own: a simulation stepped in its own thread
(:class:`SimPlant`), or the user's robot through a state-reading and a command-sending
callback (:class:`CallbackPlant`). Every ``plant.dt`` seconds it is given the control of
the current plan at the current time: the plan was made from the state measured at time
t_m, so at time t its row ``floor((t - t_m) / dt)`` applies (zero-order hold, as the
planning model holds each control for one control step; a spline plan was already
interpolated between its knots into those rows). Meanwhile the planner (the calling
thread) replans, over and over, from the latest measured state: it shifts its last plan
by the control steps that actually passed (:meth:`~mbd.mpc.controller.Controller.replan`)
and runs its updates. A slow planner shows as worse control, never as a paused world.

Everything is measured: the real-time factor (simulated / wall seconds of the plant),
the replanning rate, the latency of each replan (state read to plan ready) and the
replans that missed their deadline (``1 / rate`` with a rate, else one control period).
With a rate, :mod:`mbd.mpc.deadline` sizes the planner to it on this machine and
re-sizes it while running.

A :class:`FakeClock` runs the same loop in one thread, deterministically: a replan costs
what the clock's cost model says (the planner still computes), and the plant ticks that
fall inside it use the plan before it. Tests use it; so can a user, to replay what a
given planner latency does to a task.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from mbd.mpc.controller import Controller, ControllerState
from mbd.mpc.loops import _jitted, _jitted_plant, _plant_step, cast_like, check_plant_params
from mbd.problem import Array, Problem, PyTree

MISS_WINDOW = 100
"""Replans of one budget over which the re-check counts missed deadlines."""
MISSED_ALLOWED = 1
"""Misses allowed in a budget's last :data:`MISS_WINDOW` replans (1 %); one more and the
loop steps down to the next smaller budget for the rest of the run."""


class PlantError(RuntimeError):
    """The plant (its step, or a user callback) raised; the loop stopped. The message is
    one line naming the plant's function, the time and the original error."""


# --------------------------------------------------------------------------------------
# Clocks
# --------------------------------------------------------------------------------------


class Clock(Protocol):
    """What the loop reads the time from."""

    threaded: bool
    """Whether the plant runs in its own thread (a wall clock) or is ticked in turn with
    the planner (a fake clock)."""

    def now(self) -> float:
        """Seconds, from any origin."""
        ...

    def sleep(self, seconds: float) -> None:
        """Waits ``seconds`` (>= 0)."""
        ...


class WallClock:
    """The machine's monotonic clock (``time.perf_counter``)."""

    threaded = True

    def now(self) -> float:
        """Seconds since an arbitrary origin."""
        return time.perf_counter()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when the loop moves it: deterministic and fast.

    Args:
        plan_seconds: what one replan costs on this clock: seconds, or a function
            ``plan_seconds(num_samples, iterations) -> seconds``.
    """

    threaded = False

    def __init__(self, plan_seconds: float | Callable[[int, int], float] = 0.0):
        self.t = 0.0
        self._cost = plan_seconds

    def now(self) -> float:
        """The clock's time."""
        return self.t

    def sleep(self, seconds: float) -> None:
        """Moves the clock forward."""
        self.t += max(0.0, float(seconds))

    def plan_seconds(self, num_samples: int, iterations: int) -> float:
        """The cost of one replan of this budget."""
        c = self._cost
        return float(c(num_samples, iterations) if callable(c) else c)


# --------------------------------------------------------------------------------------
# Plants
# --------------------------------------------------------------------------------------


class Plant(Protocol):
    """What the loop runs against. ``dt``: seconds between commands."""

    dt: float

    def state(self) -> tuple[PyTree, float]:
        """The latest measured state (the planner's state type) and its time, seconds
        since the loop started."""
        ...

    def tick(self, t: float, u: np.ndarray) -> float:
        """Applies ``u`` (nu,) from time ``t`` for ``dt`` seconds; returns the stage
        reward where the plant knows it, else NaN."""
        ...


class SimPlant:
    """A simulation of a problem's own step as the plant (the planner's model, or another
    one: ``params`` of the plant, e.g. a heavier mass, or a ``step`` of one's own).

    Args:
        problem: supplies ``step``, ``dt`` and the initial state.
        x0: the initial state (the problem's if None).
        params: the plant's params (the problem's if None); refused for a problem
            without params (see :func:`mbd.mpc.loops.check_plant_params`).
        step: optional ``step(x, u) -> (x_next, reward)`` replacing the problem's.
    """

    def __init__(
        self,
        problem: Problem,
        x0: PyTree = None,
        params: PyTree = None,
        step: Callable[[PyTree, Array], tuple[PyTree, Array]] | None = None,
    ):
        if problem.dt is None:
            raise ValueError(
                f"problem {problem.name!r} has no dt (seconds per control step): a real-time "
                "plant needs one (make_problem(..., dt=...))"
            )
        check_plant_params(problem, params, "SimPlant")
        if step is not None and params is not None:
            raise ValueError("SimPlant: give params or step, not both (a step has its own)")
        self.dt = float(problem.dt)
        self.problem = problem
        self._own_step = step is not None
        self._params = problem.params if params is None else params
        if step is None:
            self._step = _jitted_plant(problem)  # params an argument: a new one compiles nothing
        else:
            own = jax.jit(step)
            self._step = lambda x, u, p: own(x, u)
        self._x0 = problem.init_state if x0 is None else x0
        self._x = self._x0
        self._next: PyTree = None
        self._computing = False
        self._pending: list[Callable[[PyTree], PyTree]] = []  # pushes during a tick
        self._t = 0.0
        self._lock = threading.Lock()
        self.name = "step"

    def warm_up(self) -> None:
        """Compiles the plant's step (its output is dropped)."""
        jax.block_until_ready(self._step(self._x, jnp.zeros(self.problem.action_dim), self._params))

    @property
    def params(self) -> PyTree:
        """The plant's params (for a step of one's own: unused)."""
        with self._lock:
            return self._params

    def set_params(self, params: PyTree) -> None:
        """The plant's params from the next tick on (same structure: nothing compiles);
        refused for a problem without params, and for a step of one's own."""
        check_plant_params(self.problem, params, "SimPlant.set_params")
        if self._own_step:
            raise ValueError("SimPlant.set_params: this plant steps with a step of its own")
        with self._lock:
            self._params = params

    def reset(self) -> None:
        """The state goes back to the initial one (the next tick starts from it)."""
        self.perturb(lambda x: self._x0)

    def state(self) -> tuple[PyTree, float]:
        """The state at the start of the current tick and its simulated time (the state
        a tick computes is measured only when its time comes)."""
        with self._lock:
            return self._x, self._t

    def tick(self, t: float, u: np.ndarray) -> float:
        """Publishes the state of time t (computed by the last tick), then computes the
        state at t + dt holding ``u``; returns the stage reward."""
        with self._lock:
            if self._next is not None:
                self._x, self._next = self._next, None
            self._t = t
            x, params = self._x, self._params
            self._computing = True
        try:
            x_next, r = self._step(x, jnp.asarray(u, jnp.float32), params)
            x_next = jax.block_until_ready(x_next)
        except BaseException:
            with self._lock:
                self._computing, self._pending = False, []
            raise
        with self._lock:
            for apply in self._pending:  # a push during the step acts on what it computed
                x_next = apply(x_next)
            self._computing, self._pending = False, []
            self._next = x_next
        return float(r)

    @property
    def last(self) -> PyTree:
        """The state the last tick computed (at its time + dt)."""
        return self._next if self._next is not None else self._x

    def perturb(self, fn: Callable[[PyTree], PyTree]) -> None:
        """Replaces the state by ``fn(state)`` between ticks (a push, a reset): the state
        the next tick starts from."""

        def apply(x):  # the same types (JAX arrays, dtypes): the planner compiles nothing
            return cast_like(fn(x), x)

        with self._lock:
            if self._computing:  # the tick under way computes the next state: push that
                self._pending.append(apply)
            elif self._next is not None:
                self._next = apply(self._next)
            else:
                self._x = apply(self._x)


@dataclasses.dataclass
class CallbackPlant:
    """The user's robot: the loop reads its state and sends its commands.

    Attributes:
        read_state: ``read_state() -> x`` (the planner's state type), called by the planner.
        send_command: ``send_command(u)`` with u (nu,) real units, every ``dt`` seconds.
        dt: seconds between commands.
        clock: what its times are read from; the loop's clock (give a loop on a
            :class:`FakeClock` the same one).
    """

    read_state: Callable[[], PyTree]
    send_command: Callable[[np.ndarray], None]
    dt: float
    clock: Clock = dataclasses.field(default_factory=WallClock)

    def __post_init__(self) -> None:
        if not (isinstance(self.dt, int | float) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be finite and > 0 seconds (got {self.dt!r})")
        self._start = self.clock.now()
        self.name = "send_command"

    def begin(self) -> None:
        """Time 0 is now (the loop calls it as the plant starts)."""
        self._start = self.clock.now()

    def state(self) -> tuple[PyTree, float]:
        """``read_state()`` and the time since the loop started."""
        t = self.clock.now() - self._start
        return self.read_state(), t

    def tick(self, t: float, u: np.ndarray) -> float:
        """``send_command(u)``; the reward is unknown (NaN)."""
        self.send_command(u)
        return math.nan


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


class Plan(NamedTuple):
    """A plan as the plant reads it.

    Attributes:
        t0: the time of the state it was planned from (seconds since the start).
        controls: (H, nu) float32, row h for [t0 + h dt, t0 + (h + 1) dt).
        report: the controller's :class:`~mbd.mpc.controller.PlanReport` (host arrays).
    """

    t0: float
    controls: np.ndarray
    report: Any

    def at(self, t: float, dt: float) -> tuple[np.ndarray, bool]:
        """The control at time t and whether t is before the plan's end (past it the last
        row is held; before its start, the first)."""
        j = math.floor((t - self.t0) / dt + 1e-6)
        inside = j < len(self.controls)  # (j < 0: a plant clock ahead of the planner's)
        return self.controls[min(max(j, 0), len(self.controls) - 1)], inside


class Replan(NamedTuple):
    """One replan's record: times are seconds on the loop's clock since the start."""

    read: float
    ready: float
    state_time: float
    elapsed_steps: int
    num_samples: int
    iterations: int
    predicted_reward: float


@dataclasses.dataclass
class RealtimeResult:
    """What a real-time run did.

    Attributes:
        times: (T,) plant time of each tick (seconds since the start).
        states: the plant's states after each tick (pytree, leading T), or after the
            last ``keep`` ticks of :meth:`RealtimeLoop.run`; None for callback plants.
        controls: (T, nu) the controls applied.
        rewards: (T,) the plant's stage rewards (NaN where unknown).
        replans: one :class:`Replan` per plan installed.
        wall_seconds: wall time of the plant's run.
        late_ticks: ticks that started more than a control period late.
        starved_ticks: ticks past the end of the newest plan (its last row held).
        deadline: seconds a replan may take before it counts as missed.
        budgets: the budget switches: (time, num_samples, iterations, why).
        interrupted: stopped by Ctrl-C (KeyboardInterrupt) before the duration.
    """

    times: np.ndarray
    states: PyTree
    controls: np.ndarray
    rewards: np.ndarray
    replans: list[Replan]
    wall_seconds: float
    late_ticks: int
    starved_ticks: int
    deadline: float
    budgets: list[tuple[float, int, int, str]]
    interrupted: bool = False

    @property
    def sim_seconds(self) -> float:
        """Simulated seconds: ticks x dt."""
        if len(self.times) < 1:
            return 0.0
        dt = float(self.times[1] - self.times[0]) if len(self.times) > 1 else 0.0
        return float(self.times[-1] - self.times[0]) + dt

    def summary(self) -> dict[str, Any]:
        """The figures of the run, as ``mbd mpc --realtime`` writes them."""
        lat = np.array([r.ready - r.read for r in self.replans])
        ready = np.array([r.ready for r in self.replans])
        gaps = np.diff(ready)
        rewards = self.rewards[np.isfinite(self.rewards)]
        return {
            "realtime_factor": (
                self.sim_seconds / self.wall_seconds
                if self.wall_seconds and len(self.times)
                else None
            ),
            "sim_seconds": self.sim_seconds,
            "wall_seconds": self.wall_seconds,
            "ticks": len(self.times),
            "replans": len(self.replans),
            "replan_hz": float(1.0 / np.median(gaps)) if len(gaps) else None,
            "latency_ms": {
                "median": float(1e3 * np.median(lat)) if len(lat) else None,
                "p95": float(1e3 * np.percentile(lat, 95)) if len(lat) else None,
                "max": float(1e3 * np.max(lat)) if len(lat) else None,
            },
            "deadline_ms": 1e3 * self.deadline,
            "missed_deadlines": int(np.sum(lat > self.deadline)),
            "missed_fraction": float(np.mean(lat > self.deadline)) if len(lat) else 0.0,
            "late_ticks": self.late_ticks,
            "starved_ticks": self.starved_ticks,
            "closed_loop_return": float(np.mean(rewards)) if len(rewards) else None,
            "budgets": [
                {"time": t, "num_samples": n, "iterations": k, "why": why}
                for t, n, k, why in self.budgets
            ],
            "interrupted": self.interrupted,
        }


class RealtimeLoop:
    """A planner and a plant run side by side (see the module doc).

    Args:
        budgets: the planner: one controller, or a ladder of them, smallest budget first
            (from :func:`mbd.mpc.deadline.fit_to_rate`), all planning the same problem.
        plant: a :class:`Plant`.
        start: index into ``budgets`` of the budget to start with (default the last).
        rate: replans per second (Hz); None: replan as fast as the planner can.
        clock: :class:`WallClock` (default) or :class:`FakeClock`.
        params: the planner's params (the problem's if None); :meth:`set_params` changes
            them while running, without compiling.
        recheck: replans per window of the deadline re-check (with several budgets).
        on_replan: optional ``on_replan(replan: Replan, plan: Plan)`` after each replan,
            in the planner's thread (a progress line, a live view).
        lookahead: plan from where the plant will be when the plan is ready, not from
            where it was read: the measured state is stepped on the planner's model,
            holding the current plan's controls (those the plant applies meanwhile),
            over the ticks the replan is expected to take (the median latency of the
            last replans); the new plan keeps those controls for those ticks. Without
            it a plan's first controls are applied a latency late.
    """

    def __init__(
        self,
        budgets: Controller | Sequence[Controller],
        plant: Plant,
        start: int | None = None,
        rate: float | None = None,
        clock: Clock | None = None,
        params: PyTree = None,
        recheck: int = 10,
        on_replan: Callable[[Replan, Plan], None] | None = None,
        lookahead: bool = False,
    ):
        self.budgets = [budgets] if isinstance(budgets, Controller) else list(budgets)
        if not self.budgets or not all(isinstance(b, Controller) for b in self.budgets):
            raise TypeError("give a Controller (mbd.mpc.make_controller) or a list of them")
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be finite and > 0 Hz (got {rate!r})")
        if not isinstance(lookahead, bool | np.bool_):
            raise TypeError(f"lookahead must be True or False (got {lookahead!r})")
        self.plant = plant
        self.level = len(self.budgets) - 1 if start is None else int(start)
        self._ceiling = len(self.budgets) - 1  # the largest budget the re-check may pick
        self.rate = rate
        self.clock = WallClock() if clock is None else clock
        self.problem = self.budgets[0].problem
        self.dt = float(plant.dt)
        self.deadline = 1.0 / rate if rate else self.dt
        self.recheck = int(recheck)
        self.on_replan = on_replan
        self._params = params
        self._lock = threading.Lock()
        self._plan: Plan | None = None
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._live: dict | None = None  # the run's records, for stats()
        self._last_read: tuple[PyTree, float] = (self.problem.init_state, 0.0)
        self._interrupted = False
        self._error: BaseException | None = None
        # the jitted functions fit_to_rate timed: its compiles serve the loop
        self._jit = [(_jitted(b.init), _jitted(b.replan)) for b in self.budgets]
        self.lookahead = bool(lookahead)
        self._predict = _predictor(self.problem) if self.lookahead else None

    # -- steering (thread-safe) --------------------------------------------------------

    @property
    def params(self) -> PyTree:
        """The planner's params: what :meth:`set_params` set last, else the problem's."""
        with self._lock:
            return self.problem.params if self._params is None else self._params

    def set_params(self, params: PyTree, plant: bool | Callable[[PyTree], PyTree] = False) -> None:
        """The planner's params from the next replan on (same structure: no compile).

        Args:
            params: the new params.
            plant: a :class:`SimPlant`'s params change too (a command both the task's
                reward and the simulated world follow): True for the same params, or a
                function ``plant(params) -> params`` that makes the plant's (e.g. a mass
                kept off the model's); ignored for other plants.
        """
        with self._lock:
            self._params = params
        if plant and isinstance(self.plant, SimPlant):
            self.plant.set_params(plant(params) if callable(plant) else params)

    def pause(self) -> None:
        """Freezes the world: the plant stops ticking and the planner waits; the plant's
        clock does not count the pause (nor does the real-time factor).

        Raises:
            TypeError: a plant that is not a :class:`SimPlant` (a robot does not wait),
                or a :class:`FakeClock` loop.
        """
        if not isinstance(self.plant, SimPlant) or not self.clock.threaded:
            raise TypeError("pause needs a SimPlant on a wall clock (a robot does not wait)")
        with self._lock:
            if self._paused_since is None:
                self._paused_since = self.clock.now()
                self._running.clear()

    def resume(self) -> None:
        """Undoes :meth:`pause`."""
        with self._lock:
            if self._paused_since is not None:
                self._paused_total += self.clock.now() - self._paused_since
                self._paused_since = None
                self._running.set()

    @property
    def paused(self) -> bool:
        """Whether :meth:`pause` holds the loop."""
        return not self._running.is_set()

    def paused_seconds(self) -> float:
        """Seconds the loop has been paused in all (the current pause included)."""
        with self._lock:
            now = 0.0 if self._paused_since is None else self.clock.now() - self._paused_since
            return self._paused_total + now

    def reset(self) -> None:
        """A :class:`SimPlant`'s state goes back to its initial one (the loop runs on)."""
        if not isinstance(self.plant, SimPlant):
            raise TypeError("reset needs a SimPlant (a robot is reset by its own means)")
        self.plant.reset()

    def stats(self, last: int = 400) -> dict[str, Any]:
        """What the loop is doing, while it runs (a live view reads it).

        Args:
            last: how many of the latest ticks' times and rewards to return.

        Returns:
            dict: ``times`` and ``rewards`` (the last ``last`` ticks, arrays),
            ``sim_seconds``, ``realtime_factor`` (so far, pauses left out),
            ``replans``, ``replan_hz`` and ``latency_ms`` (median of the last 20
            replans), ``num_samples`` and ``iterations`` of the current budget,
            ``paused``.
        """
        live = self._live
        b = self.budgets[self.level]
        out: dict[str, Any] = {
            "times": np.zeros(0), "rewards": np.zeros(0), "sim_seconds": 0.0,
            "realtime_factor": None, "replans": 0, "replan_hz": None, "latency_ms": None,
            "num_samples": b.num_samples, "iterations": b.iterations, "paused": self.paused,
        }  # fmt: skip
        if live is None:
            return out
        rec, replans = live["rec"], live["replans"]
        n = min(len(rec["times"]), len(rec["rewards"]))  # a tick may be half recorded
        times = np.asarray(rec["times"][max(0, n - last) : n], np.float64)
        rewards = np.asarray(rec["rewards"][max(0, n - last) : n], np.float64)
        sim = n * self.dt
        wall = self.clock.now() - live["t0"] - self.paused_seconds()
        win = replans[-20:]
        ready = np.array([r.ready for r in win])
        lat = np.array([r.ready - r.read for r in win])
        out.update(
            times=times,
            rewards=rewards,
            sim_seconds=sim,
            realtime_factor=sim / wall if n and wall > 0 else None,
            replans=len(replans),
            replan_hz=float(1.0 / np.median(np.diff(ready))) if len(ready) > 2 else None,
            latency_ms=float(1e3 * np.median(lat)) if len(lat) else None,
        )
        return out

    def stop(self) -> None:
        """Asks the loop to stop after the current replan and tick."""
        self._stop.set()

    def interrupt(self) -> None:
        """:meth:`stop`, the run marked ``interrupted`` (a Ctrl-C handler calls it)."""
        self._interrupted = True
        self._stop.set()

    def snapshot(self) -> tuple[Plan | None, PyTree, float]:
        """(the current plan, the plant's latest state, its time): for a live view. For
        a :class:`CallbackPlant` the state is the one the planner read last (the robot's
        ``read_state`` is called by the planner only)."""
        if isinstance(self.plant, SimPlant):
            x, t = self.plant.state()
            with self._lock:
                return self._plan, x, t
        with self._lock:
            x, t = self._last_read
            return self._plan, x, t

    # -- running -----------------------------------------------------------------------

    def _install(self, plan: Plan) -> None:
        with self._lock:
            self._plan = plan

    def _tick(self, t: float, rec: dict) -> None:
        with self._lock:
            plan = self._plan
        u, inside = plan.at(t, self.dt)
        try:
            r = self.plant.tick(t, u)
        except Exception as e:
            raise PlantError(_one_line(getattr(self.plant, "name", "plant"), t, e)) from None
        rec["times"].append(t)
        rec["controls"].append(np.asarray(u))
        rec["rewards"].append(r)
        rec["starved"] += not inside
        if isinstance(self.plant, SimPlant):
            rec["states"].append(self.plant.last)

    def _plant_thread(self, duration: float, t_wall0: float, rec: dict) -> None:
        k = 0
        try:
            while not self._stop.is_set() and k * self.dt < duration - 1e-9:
                while not self._running.wait(0.05):  # paused: the world waits
                    if self._stop.is_set():
                        return
                due = t_wall0 + self.paused_seconds() + k * self.dt
                lag = self.clock.now() - due
                if lag < 0:
                    self.clock.sleep(-lag)
                    if not self._running.is_set():  # paused while waiting: no tick
                        continue
                elif lag > self.dt:
                    rec["late"] += 1
                self._tick(k * self.dt, rec)
                k += 1
            if not self._stop.is_set():  # the last command holds for its dt too
                self.clock.sleep(t_wall0 + self.paused_seconds() + k * self.dt - self.clock.now())
        except BaseException as e:
            self._error = e
        finally:
            rec["wall_end"] = self.clock.now()
            self._stop.set()

    def _read(self):
        try:
            x, t = self.plant.state()
            with self._lock:
                self._last_read = (x, t)
            return x, t
        except Exception as e:
            name = "read_state" if isinstance(self.plant, CallbackPlant) else "state"
            raise PlantError(_one_line(name, math.nan, e)) from None

    def _replan(self, key, cs: ControllerState, t_prev: float, replans: list, t0: float):
        """Reads the state, replans, installs; returns (cs, the state's time)."""
        x, t_m = self._read()
        params = self.params
        budget = self.budgets[self.level]
        _, replan = self._jit[self.level]
        read = self.clock.now()
        held = self._held_controls(t_m, read - t0 - self.paused_seconds(), replans)
        if len(held):  # where the plant will be when this plan is ready (``lookahead``)
            x = self._predict(x, held, params)
        t_s = t_m + len(held) * self.dt  # the time of the state planned from
        elapsed = max(0, round((t_s - t_prev) / self.dt))
        cs, report = replan(key, cs, x, jnp.int32(elapsed), params)
        report = jax.tree_util.tree_map(np.asarray, jax.block_until_ready(report))
        if isinstance(self.clock, FakeClock):
            cost = self.clock.plan_seconds(budget.num_samples, budget.iterations)
            self._advance_plant(read + cost)  # the plant ticks while the planner works
            self.clock.t = max(self.clock.t, read + cost)
        ready = self.clock.now()
        controls = np.asarray(report.controls, np.float32)
        if len(held):
            controls = np.concatenate([held, controls])
        plan = Plan(t_m, controls, report)
        self._install(plan)
        replans.append(
            Replan(
                read - t0,
                ready - t0,
                t_m,
                elapsed,
                budget.num_samples,
                budget.iterations,
                float(report.predicted_reward),
            )
        )
        if self.on_replan is not None:
            self.on_replan(replans[-1], plan)
        return cs, t_s

    def _held_controls(self, t_m: float, now: float, replans: list) -> np.ndarray:
        """``lookahead``: the current plan's controls (k, nu) for the k ticks from t_m
        until a replan started at plant time ``now`` is expected ready; (0, nu) without
        ``lookahead`` or before any replan was timed."""
        nu = self.problem.action_dim
        if not self.lookahead or not replans:
            return np.zeros((0, nu), np.float32)
        latency = float(np.median([r.ready - r.read for r in replans[-5:]]))
        k = max(0, math.ceil((now - t_m + latency) / self.dt - 1e-6))
        k = min(k, self.problem.horizon)
        with self._lock:
            plan = self._plan
        rows = [plan.at(t_m + i * self.dt, self.dt)[0] for i in range(k)]
        return np.asarray(rows, np.float32).reshape(k, nu)

    def _advance_plant(self, until: float) -> None:
        """Fake clock: the plant ticks due before ``until`` (the planner is busy)."""
        st = self._fake
        while (
            st["k"] * self.dt < st["duration"] - 1e-9
            and st["t0"] + st["k"] * self.dt < until - 1e-9
        ):
            self.clock.t = max(self.clock.t, st["t0"] + st["k"] * self.dt)
            self._tick(st["k"] * self.dt, st["rec"])
            st["k"] += 1

    def _recheck(self, replans: list, budgets: list, t0: float) -> None:
        """With a ladder of budgets: step down when the last window's replans missed their
        deadline (its 90th percentile past it), or when the budget missed more than
        :data:`MISSED_ALLOWED` of its last :data:`MISS_WINDOW` replans (rare misses, too
        few for the percentile, but over 1 %: that budget is not tried again this run);
        step up when all of the window's replans used under half the deadline."""
        win = replans[-self.recheck :]
        if len(self.budgets) < 2 or len(win) < self.recheck:
            return
        if any(r.num_samples != self.budgets[self.level].num_samples for r in win):
            return  # a window of the current budget only
        lat = np.array([r.ready - r.read for r in win])
        new, why = self.level, ""
        missed = self._missed(replans, self.level)
        if np.percentile(lat, 90) > self.deadline and self.level > 0:
            new, why = self.level - 1, f"p90 latency {1e3 * np.percentile(lat, 90):.1f} ms"
        elif missed > MISSED_ALLOWED and self.level > 0:
            new, why = self.level - 1, f"{missed} of its last replans missed"
            self._ceiling = new
        elif np.max(lat) < 0.5 * self.deadline and self.level < min(
            len(self.budgets) - 1, self._ceiling
        ):
            new, why = self.level + 1, f"max latency {1e3 * np.max(lat):.1f} ms"
        if new != self.level:
            self.level = new
            b = self.budgets[new]
            budgets.append((self.clock.now() - t0, b.num_samples, b.iterations, why))

    def _missed(self, replans: list, level: int) -> int:
        """Replans past the deadline among the last :data:`MISS_WINDOW` of budget
        ``level``'s."""
        b = self.budgets[level]
        mine = [
            r for r in replans[-10 * MISS_WINDOW :]
            if (r.num_samples, r.iterations) == (b.num_samples, b.iterations)
        ]  # fmt: skip
        return sum(r.ready - r.read > self.deadline for r in mine[-MISS_WINDOW:])

    def run(self, key: Array, duration: float, keep: int | None = None) -> RealtimeResult:
        """Warms up (compiles, plans from the plant's first state), then runs the plant
        for ``duration`` seconds while the planner replans.

        Args:
            key: PRNG key (one for the warm-up, one per replan).
            duration: seconds of plant time (> 0; ``math.inf`` on a wall clock: until
                :meth:`stop` or Ctrl-C).
            keep: keep the plant's states of the last ``keep`` ticks only (None: all);
                a run of no set length needs a bound.

        Returns:
            :class:`RealtimeResult`; also after Ctrl-C (``interrupted``).

        Raises:
            PlantError: one line naming the plant function that raised.
        """
        if not (duration > 0) or (math.isinf(duration) and not self.clock.threaded):
            raise ValueError(
                f"duration must be > 0 seconds, and finite on a fake clock (got {duration!r})"
            )
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ValueError(f"keep must be None or an integer >= 1 (got {keep!r})")
        self._stop.clear()  # a Ctrl-C from here on (compiles included) stops the run
        self._ceiling = len(self.budgets) - 1
        self._interrupted = False
        x, _ = self._read()
        params = self.params
        init, replan = self._jit[self.level]
        k_init, k_first, key = jax.random.split(key, 3)
        cs = jax.block_until_ready(init(k_init, x, params))
        for _, rp in self._jit:  # compile every budget's replan now
            jax.block_until_ready(rp(k_init, cs, x, jnp.int32(0), params))
        if hasattr(self.plant, "warm_up"):
            self.plant.warm_up()
        if self._predict is not None:  # compiled now, not at the first replan
            jax.block_until_ready(self._predict(x, np.zeros((1, self.problem.action_dim)), params))
        cs, rep0 = replan(k_first, cs, x, jnp.int32(0), params)
        rep0 = jax.tree_util.tree_map(np.asarray, rep0)
        # The plant starts now, at time 0, from the state this plan was made from.
        self._install(Plan(0.0, np.asarray(rep0.controls, np.float32), rep0))
        t_m = 0.0
        if hasattr(self.plant, "begin"):
            self.plant.begin()
        states_kept = collections.deque(maxlen=keep)
        rec: dict = {
            "times": [], "controls": [], "rewards": [], "states": states_kept, "late": 0,
            "starved": 0,
        }  # fmt: skip
        replans: list[Replan] = []
        b = self.budgets[self.level]
        budgets = [(0.0, b.num_samples, b.iterations, "start")]
        t0 = self.clock.now()
        with self._lock:
            self._paused_total = 0.0
            if self._paused_since is not None:  # paused before the start: from now
                self._paused_since = t0
        self._live = {"rec": rec, "replans": replans, "t0": t0}
        thread = None
        if self.clock.threaded:
            thread = threading.Thread(
                target=self._plant_thread, args=(duration, t0, rec), name="mbd-plant", daemon=True
            )
            thread.start()
        else:
            self._fake = {"k": 0, "t0": t0, "duration": duration, "rec": rec}
        interrupted = False
        n = 0
        try:
            while not self._stop.is_set():
                if not self.clock.threaded and self._fake["k"] * self.dt >= duration - 1e-9:
                    break
                if self.paused and self.clock.threaded:  # nothing moves: nothing to plan
                    self._running.wait(0.05)
                    continue
                if self.rate:
                    due = t0 + self.paused_seconds() + n / self.rate
                    wait = due - self.clock.now()
                    if wait > 0:
                        if not self.clock.threaded:
                            self._advance_plant(due)
                        self.clock.sleep(due - self.clock.now())
                    since = self.clock.now() - t0 - self.paused_seconds()
                    n = max(n + 1, math.floor(since * self.rate) + 1)
                key, k = jax.random.split(key)
                cs, t_m = self._replan(k, cs, t_m, replans, t0)
                self._recheck(replans, budgets, t0)
                if (
                    not self.clock.threaded
                    and not self.rate
                    and replans[-1].ready == replans[-1].read
                ):
                    # a replan that costs no fake time: the plant moves on by a tick
                    self._advance_plant(t0 + (self._fake["k"] + 0.5) * self.dt)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self._stop.set()
            if thread is not None:
                thread.join()
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        interrupted = interrupted or self._interrupted
        if not self.clock.threaded:  # the last command holds for its dt too
            self.clock.t = max(self.clock.t, t0 + len(rec["times"]) * self.dt)
        wall = rec.get("wall_end", self.clock.now()) - t0 - self.paused_seconds()
        self.resume()
        states = None
        if rec["states"]:
            states = jax.tree_util.tree_map(lambda *a: np.stack(a), *rec["states"])
        return RealtimeResult(
            times=np.asarray(rec["times"]),
            states=states,
            controls=np.asarray(rec["controls"]).reshape(-1, self.problem.action_dim),
            rewards=np.asarray(rec["rewards"], np.float64),
            replans=replans,
            wall_seconds=float(wall),
            late_ticks=rec["late"],
            starved_ticks=rec["starved"],
            deadline=self.deadline,
            budgets=budgets,
            interrupted=interrupted,
        )


def _predictor(problem: Problem) -> Callable[[PyTree, np.ndarray, PyTree], PyTree]:
    """``predict(x, controls (k, nu), params) -> x_k``: the planner's model stepped k <= H
    times, in one jitted program for every k (the controls padded to the horizon H),
    through the plant's step (:func:`~mbd.mpc.loops._plant_step`: the next state in
    ``x``'s types), so that the replan compiles nothing."""
    horizon, nu = problem.horizon, problem.action_dim

    @jax.jit
    def run(x, controls, k, params):
        def body(i, x):
            return _plant_step(problem, x, controls[i], params)[0]

        return jax.lax.fori_loop(0, k, body, x)

    def predict(x, controls, params):
        k = len(controls)
        padded = np.zeros((horizon, nu), np.float32)
        padded[:k] = controls
        return run(x, padded, jnp.int32(k), params)

    return predict


def _one_line(name: str, t: float, e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    at = "" if math.isnan(t) else f" at t = {t:.3f} s"
    return f"the plant's {name} raised{at}: {type(e).__name__}: {msg}"


def run_realtime(
    controller: Controller | Sequence[Controller],
    duration: float,
    key: Array,
    plant: Plant | None = None,
    rate: float | None = None,
    clock: Clock | None = None,
    params: PyTree = None,
) -> RealtimeResult:
    """Runs a controller against a plant in real time (see :class:`RealtimeLoop`).

    Args:
        controller: a :class:`~mbd.mpc.controller.Controller`, or a ladder of them from
            :func:`mbd.mpc.deadline.fit_to_rate`.
        duration: seconds of plant time.
        key: PRNG key.
        plant: a :class:`Plant`; None: a :class:`SimPlant` of the controller's problem.
        rate: replans per second wanted (Hz), or None (as fast as it can).
        clock: the clock (a :class:`WallClock` if None).
        params: the planner's params.

    Returns:
        :class:`RealtimeResult`.
    """
    ladder = [controller] if isinstance(controller, Controller) else list(controller)
    if plant is None:
        plant = SimPlant(ladder[0].problem)
    loop = RealtimeLoop(ladder, plant, rate=rate, clock=clock, params=params)
    return loop.run(key, duration)


__all__ = [
    "CallbackPlant",
    "Clock",
    "FakeClock",
    "Plan",
    "Plant",
    "PlantError",
    "RealtimeLoop",
    "RealtimeResult",
    "Replan",
    "SimPlant",
    "WallClock",
    "run_realtime",
]
