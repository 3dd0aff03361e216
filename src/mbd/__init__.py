"""mbd: Model-Based Diffusion for trajectory and black-box optimization, in JAX.

Pan, Yi, Shi, Qu (2024), "Model-Based Diffusion for Trajectory Optimization",
arXiv 2407.01573. The public API:

- problems: :class:`Problem`, :func:`make_problem`, :class:`Objective`, :class:`Demo`,
  :func:`rollout` (``mbd.problem``);
- the solver: :class:`MBDConfig`, :func:`make_solver`, :func:`solve` (``mbd.solver``);
- schedules: :func:`make_schedule` (``mbd.schedule``);
- tasks: :func:`get_task`, :func:`list_tasks` (``mbd.tasks``).

These names and the submodules (``mbd.bbo``, ``mbd.tasks``, ``mbd.mpc``,
``mbd.baselines``, ...) load on first use, so ``import mbd`` imports neither JAX nor
any optional dependency until they are needed.
"""

import importlib

_EXPORTS = {
    **dict.fromkeys(
        ("Demo", "Objective", "Problem", "Rollout", "make_problem", "rollout"), "mbd.problem"
    ),
    **dict.fromkeys(("Schedule", "make_schedule"), "mbd.schedule"),
    **dict.fromkeys(
        (
            "ConfigError", "Evaluation", "Evaluator", "MBDConfig", "MBDResult", "MBDState",
            "Solver", "StepInfo", "compute_weights", "make_evaluator", "make_solver", "solve",
        ),
        "mbd.solver",
    ),
}  # fmt: skip
"""The public names and their modules: ``import mbd`` imports no JAX until one is used
(``mbd --version`` and the command line's usage errors answer without it)."""

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
    """Loads a public name's module, or a submodule, on first access (``mbd.MBDConfig``,
    ``mbd.bbo``, ``mbd.tasks``, ...)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later accesses skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"mbd.{name}")
    raise AttributeError(f"module 'mbd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)


__all__ = ["__version__", *_EXPORTS]
