"""Registry of the paper's tasks: name -> :class:`TaskSpec`.

A task builds a :class:`~mbd.problem.Problem` and carries the hyper-parameters
recommended for it. Tasks that need a heavy simulator import it lazily inside ``make``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from mbd.problem import Problem
from mbd.solver import MBDConfig


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    Attributes:
        name: registry key, as typed on the command line.
        summary: one line for ``mbd tasks``.
        make: ``make(horizon=..., demo=..., seed=...) -> Problem``.
        config: recommended solver hyper-parameters.
        horizon: recommended horizon T.
        has_demo: whether ``demo=True`` is supported.
        plot: optional ``plot(problem, result, path)`` that draws the task's picture.
        metrics: optional ``metrics(problem, result) -> dict`` of task-specific figures
            (JSON-ready) for the run summary.
        render: optional ``render(problem, result, path)`` that writes an interactive
            replay (``render.html``) of the planned trajectory.
        backends: Brax pipelines ``make(backend=...)`` accepts (with engine ``brax``),
            the default first; empty for a task with a single built-in simulator.
        engines: engines ``make(engine=...)`` accepts (``auto`` first); empty for a task
            with a single built-in simulator.
        plant: optional ``plant(**make's arguments) -> Problem``: the model a closed loop
            runs as the plant where it differs from the planner's (None: the same).
        mpc_defaults: ``mbd mpc`` option defaults of the task (e.g. ``noise_level``).
        loop_metrics: optional ``loop_metrics(problem, states) -> dict``: what a closed
            loop did (a fall, progress, the pole held up), from the plant's states.
        param_ranges: the params a user steers while the loop runs (the live view's
            sliders, :mod:`mbd.view`): name -> (low, high).
        drawing: optional ``drawing() -> mbd.view.scene.Drawing``: how the live view
            draws a task in pure JAX (a MuJoCo task is drawn from its model).
    """

    name: str
    summary: str
    make: Callable[..., Problem]
    config: MBDConfig
    horizon: int
    has_demo: bool = False
    plot: Callable[..., None] | None = None
    metrics: Callable[..., dict] | None = None
    render: Callable[..., None] | None = None
    backends: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    plant: Callable[..., Problem] | None = None
    mpc_defaults: tuple[tuple[str, object], ...] = ()
    loop_metrics: Callable[..., dict] | None = None
    param_ranges: tuple[tuple[str, float, float], ...] = ()
    drawing: Callable[[], Any] | None = None


def engine_options(task: TaskSpec, engine: str | None) -> dict:
    """``make`` keyword arguments that select ``engine`` where the task has engines.

    Args:
        task: a registered task.
        engine: an engine name, or None (the task's default).

    Returns:
        ``{"engine": engine}`` for a simulator task given an engine, else ``{}``.
    """
    return {"engine": engine} if engine is not None and task.engines else {}


_REGISTRY: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Adds a task to the registry (a name can be registered once).

    Args:
        spec: the task.

    Returns:
        The same spec.
    """
    if spec.name in _REGISTRY:
        raise ValueError(f"task {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    """Looks a task up by name.

    Raises:
        KeyError: with the list of known tasks, when ``name`` is unknown.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_tasks() -> list[TaskSpec]:
    """All registered tasks, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _register_builtin() -> None:
    from mbd.tasks import car2d

    def plot_car2d(problem, result, path):
        from mbd.plotting import plot_car2d as _plot

        _plot(problem, result, path)

    register_task(
        TaskSpec(
            name="car2d",
            summary="kinematic car escaping a U-maze of 11 discs to a goal behind it "
            "(pure JAX; --demo adds an RRT demonstration, Eq. 13)",
            make=car2d.make,
            config=MBDConfig(num_samples=2048, num_steps=100, temperature=0.1),
            horizon=car2d.HORIZON,
            has_demo=True,
            plot=plot_car2d,
            metrics=car2d.metrics,
        )
    )
    _register_robots()


def _register_robots() -> None:
    # Importing the module does not import Brax: each task's ``make`` does, and raises
    # ImportError naming ``pip install 'mbd[brax]'`` when it is missing.
    from mbd.tasks import mujoco_tasks, robots

    for t in robots.TASKS:
        register_task(
            TaskSpec(
                name=t.name,
                summary=t.summary,
                make=t.make,
                config=robots.AUTHORS[t.name],
                horizon=robots.HORIZONS[t.name],
                has_demo=t.has_demo,
                metrics=t.metrics,
                render=robots.render,
                backends=t.backends,
                engines=robots.ENGINES,
                loop_metrics=functools.partial(mujoco_tasks.loop_metrics, t.name),
            )
        )

    from mbd.tasks import classic, toys

    register_task(
        TaskSpec(
            name="pendulum",
            summary="torque-limited pendulum swing-up and balance (pure JAX; for mbd mpc)",
            make=classic.pendulum,
            config=MBDConfig(num_samples=256, num_steps=50, temperature=0.1),
            horizon=classic.PENDULUM_HORIZON,
            param_ranges=tuple((k, *v) for k, v in classic.PARAM_RANGES["pendulum"].items()),
            drawing=functools.partial(classic.drawing, "pendulum"),
        )
    )
    register_task(
        TaskSpec(
            name="cartpole",
            summary="cart-pole swing-up from hanging down (pure JAX; for mbd mpc)",
            make=classic.cartpole,
            config=MBDConfig(num_samples=256, num_steps=50, temperature=0.1),
            horizon=classic.CARTPOLE_HORIZON,
            param_ranges=tuple((k, *v) for k, v in classic.PARAM_RANGES["cartpole"].items()),
            drawing=functools.partial(classic.drawing, "cartpole"),
        )
    )

    from mbd.sim.engines import ENGINES
    from mbd.tasks import dmc

    register_task(
        TaskSpec(
            name="hopper-hop",
            summary="hopper hopping forward at 0.5 m/s without falling: 2 - |vx - 0.5| per "
            "step while the torso is up and upright, 0 after a fall, less its pitch, pitch "
            "rate and height error (MuJoCo; for mbd mpc)",
            make=functools.partial(mujoco_tasks.make, "hopper-hop"),
            config=MBDConfig(num_samples=128, num_steps=50, temperature=0.1),
            horizon=20,
            render=robots.render,
            engines=("auto", *ENGINES),
            loop_metrics=functools.partial(mujoco_tasks.loop_metrics, "hopper-hop"),
            mpc_defaults=(("knots", 5), ("spline", "cubic"), ("lookahead", True)),
        )
    )

    register_task(
        TaskSpec(
            name="humanoidstand",
            summary="humanoid standing up from lying on its back, in closed loop: "
            "time_to_stand in summary.json (humanoidstandup's model and reward; MuJoCo; "
            "for mbd mpc)",
            make=functools.partial(mujoco_tasks.make, "humanoidstandup"),
            config=MBDConfig(num_samples=128, num_steps=50, temperature=0.1),
            horizon=20,
            render=robots.render,
            engines=("auto", *ENGINES),
            loop_metrics=functools.partial(mujoco_tasks.loop_metrics, "humanoidstand"),
        )
    )

    from mbd.tasks import legged

    register_task(
        TaskSpec(
            name="quadruped",
            summary="Go2-class quadruped (shipped MJCF) trotting on command: forward and "
            "lateral velocity and yaw rate are params (MuJoCo; for mbd mpc)",
            make=legged.make_quadruped,
            config=MBDConfig(num_samples=128, num_steps=50, temperature=0.1),
            horizon=25,
            render=robots.render,
            engines=("auto", *ENGINES),
            loop_metrics=legged.quadruped_metrics,
            mpc_defaults=(("knots", 6), ("spline", "cubic"), ("noise_level", 0.3)),
            param_ranges=tuple((k, *v) for k, v in legged.COMMAND_RANGES.items()),
        )
    )

    for name, what, mpc_defaults in (
        # measured on the fake clock at the latency of 64 x 2 on 2 cores (docs/results.md)
        ("dmc-cartpole", "cart-pole", (("noise_level", 0.3), ("knots", 6), ("spline", "cubic"))),
        ("dmc-acrobot", "acrobot (only the elbow driven)", (("noise_level", 0.5),)),
    ):
        register_task(
            TaskSpec(
                name=name,
                summary=f"dm_control's {what} swing-up and balance on MuJoCo "
                "(mbd[dmc]; for mbd mpc --realtime)",
                make=functools.partial(dmc.make, name),
                config=MBDConfig(num_samples=128, num_steps=50, temperature=0.1),
                horizon=dmc.HORIZONS[name],
                engines=("auto", *ENGINES),
                plant=functools.partial(dmc.make, name, plant=True),
                loop_metrics=functools.partial(dmc.closed_loop_metrics, name),
                mpc_defaults=mpc_defaults,
            )
        )

    register_task(
        TaskSpec(
            name="pointmass",
            summary="toy: 2-D point mass to a goal, dense quadratic reward (pure JAX)",
            make=toys.pointmass,
            config=MBDConfig(num_samples=64, num_steps=50, temperature=0.1),
            horizon=toys.POINTMASS_HORIZON,
        )
    )
    register_task(
        TaskSpec(
            name="twobasins",
            summary="toy: 1-D point mass choosing a near shallow or a far narrow high "
            "reward basin (pure JAX; multimodal)",
            make=toys.twobasins,
            config=MBDConfig(num_samples=64, num_steps=50, temperature=0.1),
            horizon=toys.TWOBASINS_HORIZON,
        )
    )


_register_builtin()

__all__ = ["TaskSpec", "engine_options", "get_task", "list_tasks", "register_task"]
