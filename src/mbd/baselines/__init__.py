"""Baselines behind MBD's solver interface, and the registry of methods.

Every method is a factory ``make(problem, config, progress=None, parallel=None) ->
Solver`` of pure functions (``init``, ``step``, jitted ``solve`` returning
:class:`~mbd.solver.MBDResult` with a :class:`~mbd.solver.StepInfo` history), scoring
samples with :func:`~mbd.evaluate.make_evaluator` (on the devices and in the chunks
``parallel`` names, :mod:`mbd.parallel`). Methods compared in Pan et al. (2024), Tables 2-3:

- ``mbd``: Model-Based Diffusion itself (:func:`mbd.make_solver`);
- ``mppi``: MPPI, fixed or scheduled noise (:mod:`mbd.baselines.mppi`);
- ``cem``: the cross-entropy method, diagonal Gaussian (:mod:`mbd.baselines.cem`);
- ``cmaes``: CMA-ES through evosax, full or separable (:mod:`mbd.baselines.cmaes`);
- ``ps``: predictive sampling, the MJPC planner (:mod:`mbd.baselines.predictive`);
- ``random``: random shooting, the floor (:mod:`mbd.baselines.random_shooting`).

All run under the same budget: ``num_samples`` per iteration, the same number of
iterations (MBD's diffusion updates, N - 1 in the reference reading), the same horizon,
action bounds and initial guess (zeros)::

    cfg = method_config("cem", get_task("car2d").config, num_samples=256)
    solver = get_method("cem").make(problem, cfg)
    result = solver.solve(jax.random.key(0))

The RL baseline (Brax PPO / SAC) trains a policy instead; it lives in
:mod:`mbd.baselines.rl`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from typing import Any

from mbd.baselines.cem import CEMConfig, make_cem
from mbd.baselines.cmaes import CMAESConfig, make_cmaes
from mbd.baselines.mppi import MPPIConfig, make_mppi
from mbd.baselines.predictive import PSConfig, make_predictive
from mbd.baselines.random_shooting import RandomConfig, make_random
from mbd.solver import ConfigError, MBDConfig, Solver, make_solver


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A registered trajectory-optimization method.

    Attributes:
        name: registry key.
        summary: one line.
        config_cls: its typed, validated config dataclass.
        make: ``make(problem, config, progress=None, parallel=None) -> Solver``.
        requires: the module an extra provides (None: core only).
        extra: the ``mbd[...]`` extra that installs it.
    """

    name: str
    summary: str
    config_cls: type
    make: Callable[..., Solver]
    requires: str | None = None
    extra: str | None = None

    def available(self) -> bool:
        """Whether the method's optional dependency is installed."""
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    """Adds a method to the registry (a name can be registered once)."""
    if spec.name in _METHODS:
        raise ValueError(f"method {spec.name!r} is already registered")
    _METHODS[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    """Looks a method up by name.

    Raises:
        KeyError: naming the known methods.
    """
    if name not in _METHODS:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(_METHODS)}")
    return _METHODS[name]


def list_methods() -> list[MethodSpec]:
    """All registered methods, in registration order (mbd first)."""
    return list(_METHODS.values())


def iterations_of(config: Any) -> int:
    """Number of iterations (updates) a method's config runs."""
    if isinstance(config, MBDConfig):
        return config.num_updates
    return config.num_iterations


def method_config(
    name: str,
    task_config: MBDConfig | None = None,
    num_samples: int | None = None,
    num_iterations: int | None = None,
    **overrides: Any,
) -> Any:
    """A method's config under the budget of an MBD config (paper A.4.3: "the same
    hyper-parameters as the MBD algorithm").

    The budget is ``num_samples`` per iteration and ``num_iterations`` iterations; by
    default both come from ``task_config`` (its samples and its number of diffusion
    updates). MPPI also takes MBD's temperature and normalization. For ``mbd`` itself,
    ``num_steps`` is set so that it runs ``num_iterations`` updates.

    Args:
        name: registered method.
        task_config: MBD config of the task (``MBDConfig()`` if None).
        num_samples: samples per iteration, overriding the task's.
        num_iterations: iterations, overriding the task's.
        **overrides: other fields of the method's config.

    Returns:
        The method's validated config.

    Raises:
        ConfigError: for a value out of range.
        KeyError: for an unknown method.
    """
    spec = get_method(name)
    base = MBDConfig() if task_config is None else task_config
    n = base.num_samples if num_samples is None else num_samples
    k = base.num_updates if num_iterations is None else num_iterations
    if not isinstance(k, int) or k < 1:
        raise ConfigError("num_iterations", f"must be an integer >= 1 (got {k})")
    if spec.config_cls is MBDConfig:
        steps = k if base.reading == "paper" else k + 1
        return dataclasses.replace(base, num_samples=n, num_steps=steps, **overrides)
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    kw: dict[str, Any] = {"num_samples": n, "num_iterations": k}
    if "temperature" in fields:
        kw["temperature"] = base.temperature
    if "normalize" in fields:
        kw["normalize"] = base.normalize
    unknown = set(overrides) - fields
    if unknown:
        field = sorted(unknown)[0]
        raise ConfigError(field, f"is not an option of {name} (options: {', '.join(fields)})")
    kw.update(overrides)
    return spec.config_cls(**kw)


def _register_builtin() -> None:
    register_method(
        MethodSpec("mbd", "Model-Based Diffusion (this library; Alg. 2)", MBDConfig, make_solver)
    )
    register_method(
        MethodSpec(
            "cmaes",
            "CMA-ES through evosax: full covariance if it fits, separable otherwise",
            CMAESConfig,
            make_cmaes,
            requires="evosax",
            extra="baselines",
        )
    )
    register_method(
        MethodSpec(
            "cem", "cross-entropy method, diagonal Gaussian refit to elites", CEMConfig, make_cem
        )
    )
    register_method(
        MethodSpec(
            "mppi", "MPPI, exponential weighting, fixed or scheduled noise", MPPIConfig, make_mppi
        )
    )
    register_method(
        MethodSpec(
            "ps",
            "predictive sampling: perturb the plan, keep the best (the MJPC planner)",
            PSConfig,
            make_predictive,
        )
    )
    register_method(
        MethodSpec("random", "random shooting, best sample (the floor)", RandomConfig, make_random)
    )


_register_builtin()

__all__ = [
    "CEMConfig",
    "CMAESConfig",
    "MPPIConfig",
    "MethodSpec",
    "PSConfig",
    "RandomConfig",
    "get_method",
    "iterations_of",
    "list_methods",
    "make_cem",
    "make_cmaes",
    "make_mppi",
    "make_predictive",
    "make_random",
    "method_config",
    "register_method",
]
