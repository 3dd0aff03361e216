"""mbd: Model-Based Diffusion for trajectory and black-box optimization, in JAX.

Pan, Yi, Shi, Qu (2024), "Model-Based Diffusion for Trajectory Optimization",
arXiv 2407.01573. The public API:

- problems: :class:`Problem`, :func:`make_problem`, :class:`Objective`, :class:`Demo`,
  :func:`rollout` (``mbd.problem``);
- the solver: :class:`MBDConfig`, :func:`make_solver`, :func:`solve` (``mbd.solver``);
- schedules: :func:`make_schedule` (``mbd.schedule``);
- tasks: :func:`get_task`, :func:`list_tasks` (``mbd.tasks``).
"""

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
