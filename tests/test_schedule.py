"""Noise schedules against hand-computed values (paper Eq. 3, A.4.2)."""

from __future__ import annotations

import numpy as np
import pytest

from mbd.schedule import make_betas, make_schedule


def test_linear_schedule_hand_values():
    s = make_schedule("linear", 3, 1e-4, 1e-2)
    np.testing.assert_allclose(s.betas, [1e-4, 5.05e-3, 1e-2], rtol=1e-12)
    np.testing.assert_allclose(s.alphas, [0.9999, 0.99495, 0.99], rtol=1e-12)
    ab = [0.9999, 0.9999 * 0.99495, 0.9999 * 0.99495 * 0.99]
    np.testing.assert_allclose(s.alpha_bars, ab, rtol=1e-12)


def test_paper_schedule_end_value():
    # NOTES.md: alpha_bar_N = exp(-sum beta) ~ 0.60 for N = 100: never pure noise.
    s = make_schedule("linear", 100)
    assert s.alpha_bars[-1] == pytest.approx(0.6025, abs=1e-3)


def test_quadratic_is_linear_in_sqrt_beta():
    b = make_betas("quadratic", 4, 1e-4, 1e-2)
    np.testing.assert_allclose(np.sqrt(b), [0.01, 0.04, 0.07, 0.1], rtol=1e-12)


def test_cosine_shares_end_points_with_linear():
    lin = make_schedule("linear", 50, 1e-4, 2e-2)
    cos = make_schedule("cosine", 50, 1e-4, 2e-2)
    assert cos.betas[0] == pytest.approx(1e-4)
    assert cos.alpha_bars[-1] == pytest.approx(lin.alpha_bars[-1], rel=1e-9)
    assert np.all(np.diff(cos.alpha_bars) < 0)
    assert np.all((cos.betas > 0) & (cos.betas < 1))
    # Not the linear schedule: the cosine keeps alpha_bar higher in the middle.
    assert (
        cos.alpha_bars[25] > lin.alpha_bars[25] + 1e-3
        or cos.alpha_bars[25] < lin.alpha_bars[25] - 1e-3
    )


@pytest.mark.parametrize(
    "args",
    [("bogus", 10, 1e-4, 1e-2), ("linear", 0, 1e-4, 1e-2), ("linear", 10, 0.0, 1e-2),
     ("linear", 10, 1e-4, float("nan")), ("linear", 10, 1e-4, 1.5)],
)  # fmt: skip
def test_bad_schedules_raise(args):
    with pytest.raises(ValueError):
        make_betas(*args)
