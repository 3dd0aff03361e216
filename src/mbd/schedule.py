"""Noise schedules of the forward diffusion process (paper Eq. 3 and Appendix A.4.2).

A schedule is the sequence beta_0 .. beta_{M-1}; alpha_i = 1 - beta_i and
alpha_bar_i = prod_{k <= i} alpha_k (Eq. 3). The paper uses a linear schedule from
beta_0 = 1e-4 to beta_N = 1e-2 with N = 100 steps.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np

ScheduleName = Literal["linear", "quadratic", "cosine"]
SCHEDULES: tuple[str, ...] = ("linear", "quadratic", "cosine")


class Schedule(NamedTuple):
    """Arrays of one noise schedule, all of shape (M,), float64 NumPy.

    Attributes:
        betas: beta_i, the forward noise added at step i.
        alphas: alpha_i = 1 - beta_i.
        alpha_bars: alpha_bar_i = prod_{k <= i} alpha_k (Eq. 3).
    """

    betas: np.ndarray
    alphas: np.ndarray
    alpha_bars: np.ndarray


def make_betas(
    name: ScheduleName, num: int, beta_start: float = 1e-4, beta_end: float = 1e-2
) -> np.ndarray:
    """Builds the betas of a named schedule.

    Args:
        name: ``"linear"`` (paper A.4.2: evenly spaced from ``beta_start`` to ``beta_end``),
            ``"quadratic"`` (evenly spaced in sqrt(beta), as DDPM's "scaled linear"), or
            ``"cosine"`` (after Nichol and Dhariwal 2021: alpha_bar follows a squared cosine
            between the same end points as the linear schedule, 1 - beta_start and
            prod(1 - linear betas), so it keeps the noise low for longer at both ends).
        num: number of betas M >= 1.
        beta_start: first beta, in (0, 1).
        beta_end: last beta, in (0, 1).

    Returns:
        Array of shape (M,), float64, every entry in (0, 1).

    Raises:
        ValueError: unknown name, M < 1, or betas outside (0, 1) or not finite.
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)} (got {name!r})")
    if num < 1:
        raise ValueError(f"the number of betas must be >= 1 (got {num})")
    for label, b in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not (math.isfinite(b) and 0.0 < b < 1.0):
            raise ValueError(f"{label} must be finite and in (0, 1) (got {b})")
    if name == "linear":
        betas = np.linspace(beta_start, beta_end, num)
    elif name == "quadratic":
        betas = np.linspace(math.sqrt(beta_start), math.sqrt(beta_end), num) ** 2
    else:
        ab_first = 1.0 - beta_start
        ab_last = float(np.prod(1.0 - np.linspace(beta_start, beta_end, num)))
        t = np.linspace(0.0, 1.0, num) if num > 1 else np.zeros(1)
        ab = ab_last + (ab_first - ab_last) * np.cos(t * math.pi / 2) ** 2
        betas = 1.0 - ab / np.concatenate([[1.0], ab[:-1]])
    return betas.astype(np.float64)


def make_schedule(
    name: ScheduleName, num: int, beta_start: float = 1e-4, beta_end: float = 1e-2
) -> Schedule:
    """Builds betas, alphas and alpha_bars (Eq. 3) of a named schedule.

    Args:
        name: see :func:`make_betas`.
        num: number of entries M.
        beta_start: first beta.
        beta_end: last beta.

    Returns:
        A :class:`Schedule` whose arrays have shape (M,).
    """
    betas = make_betas(name, num, beta_start, beta_end)
    alphas = 1.0 - betas
    return Schedule(betas=betas, alphas=alphas, alpha_bars=np.cumprod(alphas))
