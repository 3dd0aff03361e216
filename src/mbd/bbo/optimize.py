"""MBD as a black-box minimizer (paper Appendix A.2): one call, one summary.

problem = make_user_problem(lambda y: jnp.sum((y - 0.3) ** 2), dim=50, low=-1, high=1)
result = minimize(problem, seed=0)
result.best_value, result.best_point, result.evaluations
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import numpy as np

from mbd.bbo.functions import BBOProblem
from mbd.solver import MBDConfig, MBDResult, make_solver

BBO_CONFIG = MBDConfig(num_samples=64, num_steps=101, temperature=1.0)
"""Defaults for black-box problems: the authors' script (64 samples, 100 diffusion steps,
lambda 1), reference reading; 100 updates of 64 samples = 6,400 evaluations."""


@dataclasses.dataclass(frozen=True)
class MinimizeResult:
    """What :func:`minimize` returns.

    Attributes:
        best_value: lowest value found (the final estimate or the best sample).
        best_point: MBD's final estimate in real units, shape (d,) (its value is
            ``final_value``; the solver does not keep sample points, so where a sample
            was better only its value is known).
        final_value: value at MBD's final estimate Ybar.
        evaluations: function evaluations spent (samples plus the final estimate).
        curve_evaluations: cumulative evaluations after each update, (K,).
        curve_best: best sample value so far after each update, (K,).
        curve_mean: mean sample value of each update, (K,).
        seconds: solve wall time, compilation excluded.
        compile_seconds: compilation time.
        result: the solver's :class:`~mbd.MBDResult`.
    """

    best_value: float
    best_point: np.ndarray
    final_value: float
    evaluations: int
    curve_evaluations: np.ndarray
    curve_best: np.ndarray
    curve_mean: np.ndarray
    seconds: float
    compile_seconds: float
    result: MBDResult

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays but the curves)."""
        return {
            "best_value": self.best_value,
            "final_value": self.final_value,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "compile_seconds": self.compile_seconds,
            "curve_evaluations": self.curve_evaluations.tolist(),
            "curve_best": self.curve_best.tolist(),
            "curve_mean": self.curve_mean.tolist(),
        }


def minimize(
    problem: BBOProblem, config: MBDConfig = BBO_CONFIG, seed: int = 0, progress=None
) -> MinimizeResult:
    """Minimizes a :class:`BBOProblem` with MBD (Alg. 1 on reward = -value).

    Args:
        problem: from :func:`~mbd.bbo.make_test_problem` or :func:`~mbd.bbo.make_user_problem`.
        config: solver hyper-parameters (default :data:`BBO_CONFIG`).
        seed: random seed.
        progress: optional per-update callback, see :func:`mbd.make_solver`.

    Returns:
        :class:`MinimizeResult`.

    Raises:
        ValueError: the function returned NaN or inf for every sample of every update.
    """
    solver = make_solver(problem.objective(), config, progress=progress)
    key = jax.random.key(seed)
    t = time.perf_counter()
    compiled = jax.jit(solver.solve).lower(key).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    res = jax.block_until_ready(compiled(key))
    seconds = time.perf_counter() - t
    h = res.history
    if not np.any(np.asarray(h.valid_fraction) > 0):
        raise ValueError(
            f"{problem.name}: the function returned NaN or inf for every sample; "
            "check it on points of the box"
        )
    best = np.asarray(-h.reward_max, np.float64)
    best = np.minimum.accumulate(np.where(np.isfinite(best), best, np.inf))
    mean = -np.asarray(h.reward_mean, np.float64)
    final = float(-res.reward)
    n = config.num_samples
    k = len(best)
    best_value = min(final if np.isfinite(final) else np.inf, float(best[-1]))
    return MinimizeResult(
        best_value=best_value,
        best_point=np.asarray(res.solution),
        final_value=final,
        evaluations=k * n + 1,
        curve_evaluations=n * np.arange(1, k + 1),
        curve_best=best,
        curve_mean=mean,
        seconds=seconds,
        compile_seconds=compile_s,
        result=res,
    )


def plot_convergence(result: MinimizeResult, path, title: str = "") -> None:
    """Best and mean sample value against evaluations (log scale where positive).

    Args:
        result: from :func:`minimize`.
        path: PNG file to write.
        title: figure title.
    """
    from mbd.plotting import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    ax.plot(result.curve_evaluations, result.curve_mean, label="mean of the samples", alpha=0.8)
    ax.plot(result.curve_evaluations, result.curve_best, label="best sample so far", lw=2)
    ax.axhline(
        result.final_value,
        color="k",
        ls="--",
        lw=1,
        label=f"final estimate: {result.final_value:.4g}",
    )
    vals = np.concatenate([result.curve_mean, result.curve_best, [result.final_value]])
    if np.all(vals[np.isfinite(vals)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("function evaluations")
    ax.set_ylabel("value (lower is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
