"""``mbd.bbo.minimize``: precision under an offset and in float64, one compile per problem
and budget, the measured-best default and its budget (issue 25)."""

import dataclasses
import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.bbo import BBO_CONFIG, default_config, make_test_problem, make_user_problem, minimize
from mbd.bbo.compare import shaped_config
from mbd.bbo.optimize import Restarts
from mbd.compile import count_compiles

TARGET = np.linspace(-0.5, 0.5, 10)


def _sphere(offset: float):
    return make_user_problem(
        lambda y: jnp.sum((y - TARGET) ** 2) + offset, dim=10, low=-1.0, high=1.0
    )


def test_an_offset_costs_no_precision_beyond_float32():
    # |y - t|^2 + 100 in float32, d = 10, shaped MBD, 4,000 evaluations: values are
    # centred before the weights, so the search ends within one float32 step at 100
    # (7.6e-6) of the minimum; before, it stalled at 3e-5 (final estimate 1.4e-4).
    cfg = shaped_config(4000, 20, 10)
    r = minimize(_sphere(100.0), cfg, seed=0)
    assert r.best_value - 100.0 <= 7.7e-6
    assert r.final_value - 100.0 <= 7.7e-6


X64_SCRIPT = """
import json, jax, jax.numpy as jnp, numpy as np
from mbd.bbo import make_user_problem, minimize
from mbd.bbo.compare import shaped_config
assert jax.config.jax_enable_x64
t = np.linspace(-0.5, 0.5, 10)
cfg = shaped_config(4000, 20, 10)
assert cfg.noise_shape == "full"
out = {}
for off in (0.0, 100.0):
    p = make_user_problem(lambda y: jnp.sum((y - t) ** 2) + off, dim=10, low=-1, high=1)
    r = minimize(p, cfg, seed=0)
    out[str(off)] = [r.best_value - off, r.final_value - off]
    out["dtype"] = str(r.result.history.reward_max.dtype)
print(json.dumps(out))
"""


def test_float64_functions_are_ranked_in_float64_and_full_shape_runs_under_x64():
    # With jax_enable_x64 the function gets float64 points and its float64 values are
    # compared in float64: the offset search reaches what the search on f - 100 does.
    # The full noise shape (shaped_config's) used to fail there ("scan body function
    # carry input and carry output must have equal types"). A process of its own: x64
    # switched on and off in one process confuses JAX's caches of eager operations.
    env = {**os.environ, "JAX_ENABLE_X64": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", X64_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["dtype"] == "float64"
    (plain, _), (best, final) = out["0.0"], out["100.0"]
    assert plain < 1e-8
    assert best < max(10 * plain, 1e-11) and final < 1e-8


def test_another_seed_runs_the_compiled_program_again():
    p = make_user_problem(lambda y: jnp.sum((y - 0.3) ** 2), dim=5, low=-1, high=1)
    for config in (mbd.MBDConfig(num_samples=16, num_steps=21, temperature=1.0), None):
        first = minimize(p, config, seed=0, max_evaluations=320)
        with count_compiles() as c:
            second = minimize(p, config, seed=1, max_evaluations=320)
        assert c.of("_bbo_solve") == 0 and second.compile_seconds == 0.0
        assert first.compile_seconds > 0.0
        assert second.best_value != first.best_value  # the seed is an argument
    # Restarts: runs with the same samples and updates share a program, across calls
    # and seeds (a constant function: every run levels off after 5 updates).
    q = make_user_problem(lambda y: 0.0 * jnp.sum(y) + 1.0, dim=3, low=-1, high=1)
    cfg = mbd.MBDConfig(num_samples=8, num_steps=101, temperature=1.0, noise_size="adaptive")
    rs = Restarts(max_restarts=3, window=5)
    minimize(q, cfg, seed=0, restarts=rs)
    with count_compiles() as c:
        r = minimize(q, cfg, seed=1, restarts=rs)
    assert len(r.runs) == 3 and c.of("_bbo_solve") == 0 and r.compile_seconds == 0.0


def test_default_is_the_measured_best_configuration_sized_by_the_budget():
    # mbd-shaped of docs/results.md ("Every method at equal budget"): 20 samples and
    # 10,000 evaluations at d = 10, 40 and 8,000 at d = 40, 100 and 20,000 at d = 200.
    assert default_config(10) == shaped_config(10_000, 20, 10)
    assert default_config(40, 8000) == shaped_config(8000, 40, 40)
    assert default_config(200) == shaped_config(20_000, 100, 200)
    assert default_config(3000).noise_shape == "diagonal"
    small = default_config(5, 50)  # samples at most a tenth of the budget
    assert (small.num_samples, small.num_updates) == (5, 10)
    assert default_config(5, 1).num_samples * default_config(5, 1).num_updates == 1
    p = make_test_problem("ellipsoid", 10, seed=0)
    best = minimize(p, seed=0, max_evaluations=6400)
    paper = minimize(p, BBO_CONFIG, seed=0)
    assert best.evaluations == paper.evaluations == 6401
    # Rotated ellipsoid: the paper's MBD ends near 1e4, the default below 1e-3.
    assert best.best_value < 1e-3 < 1e3 < paper.best_value
    # max_evaluations resizes a given config too
    r = minimize(p, dataclasses.replace(BBO_CONFIG, num_samples=16), max_evaluations=100)
    assert r.evaluations == 6 * 16 + 1


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "100", None])
def test_bad_max_evaluations_fail_with_one_line(bad):
    p = make_user_problem(lambda y: jnp.sum(y**2), dim=2, low=-1, high=1)
    if bad is None:  # below the given config's samples
        with pytest.raises(ValueError, match=r"at least the config's num_samples \(64\)"):
            minimize(p, BBO_CONFIG, max_evaluations=10)
        return
    with pytest.raises(ValueError, match=r"max_evaluations must be an integer >= 1") as e:
        minimize(p, max_evaluations=bad)
    assert "\n" not in str(e.value)
