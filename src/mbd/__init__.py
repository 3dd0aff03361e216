"""mbd: Model-Based Diffusion for trajectory and black-box optimization, in JAX.

Pan, Yi, Shi, Qu (2024), "Model-Based Diffusion for Trajectory Optimization",
arXiv 2407.01573. The public API:

- problems: :class:`Problem`, :func:`make_problem`, :class:`Objective`, :class:`Demo`,
  :func:`rollout` (``mbd.problem``);
- the solver: :class:`MBDConfig`, :func:`make_solver`, :func:`solve` (``mbd.solver``);
- schedules: :func:`make_schedule` (``mbd.schedule``);
- tasks: :func:`get_task`, :func:`list_tasks` (``mbd.tasks``).

The submodules (``mbd.bbo``, ``mbd.tasks``, ``mbd.mpc``, ``mbd.baselines``, ...) load on
first use, so ``import mbd`` then ``mbd.bbo.minimize(...)`` works without importing
their optional dependencies up front.
"""

import importlib

from mbd.problem import Demo, Objective, Problem, Rollout, make_problem, rollout
from mbd.schedule import Schedule, make_schedule
from mbd.solver import (
    ConfigError,
    Evaluation,
    Evaluator,
    MBDConfig,
    MBDResult,
    MBDState,
    Solver,
    StepInfo,
    compute_weights,
    make_evaluator,
    make_solver,
    solve,
)

__version__ = "0.1.0"

_SUBMODULES = frozenset(
    {
        "baselines",
        "bbo",
        "bench",
        "compile",
        "figures",
        "mpc",
        "parallel",
        "plotting",
        "problem",
        "runner",
        "schedule",
        "sim",
        "solver",
        "splines",
        "tasks",
    }
)


def __getattr__(name: str):
    """Loads a submodule on first access (``mbd.bbo``, ``mbd.tasks``, ...)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"mbd.{name}")
    raise AttributeError(f"module 'mbd' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "Demo",
    "Evaluation",
    "Evaluator",
    "MBDConfig",
    "MBDResult",
    "MBDState",
    "Objective",
    "Problem",
    "Rollout",
    "Schedule",
    "Solver",
    "StepInfo",
    "__version__",
    "compute_weights",
    "make_evaluator",
    "make_problem",
    "make_schedule",
    "make_solver",
    "rollout",
    "solve",
]
