"""Bad input fails early with one clear message; what the user sees is right."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.cli.main import main
from mbd.plotting import car2d_extent, fmt
from mbd.runner import plan_task
from mbd.tasks import TaskSpec, car2d


def _dyn(x, u):
    return x + 0.1 * u


def _rew(x, u):
    return -jnp.sum(x**2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"reward": lambda x, u: x},
            r"reward\(x, u\) must return a scalar reward, shape \(\), "
            r"but returned shape \(2,\)",
        ),
        (
            {"dynamics": lambda x, u: x[:1]},
            r"dynamics\(x, u\) must return a state shaped as "
            r"x0: leaf 0 has shape \(1,\), expected \(2,\)",
        ),
        ({"dynamics": lambda x, u: x @ jnp.ones((3, 3))}, r"dynamics\(x, u\) fails when traced"),
        ({"init_state": jnp.array([0.0, jnp.nan])}, "init_state must be finite"),
        ({"constraint": lambda x, u: jnp.ones((2, 2))}, r"constraint\(x, u\) must return a vector"),
    ],
)
def test_problem_functions_are_checked_when_the_problem_is_built(kwargs, message):
    args = {"init_state": jnp.zeros(2), "dynamics": _dyn, "reward": _rew}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        mbd.make_problem(horizon=5, action_dim=2, **args)


def test_non_callables_and_bad_objectives_fail_at_once():
    with pytest.raises(TypeError, match="dynamics must be a function"):
        mbd.make_problem(jnp.zeros(2), "not a function", _rew, 5, 2)
    with pytest.raises(ValueError, match=r"fn\(y\) must return a scalar reward"):
        mbd.Objective(lambda y: y * 2.0, (3,))
    with pytest.raises(ValueError, match=r"step\(x, u\) must return a pair"):
        mbd.Problem(jnp.zeros(2), lambda x, u: x, 5, 2)


def test_demo_observe_shape_is_checked():
    ref = np.zeros((5, 2), np.float32)
    demo = mbd.Demo(ref, 0.5, 1.0, observe=lambda s, u: s[:, :1])
    with pytest.raises(ValueError, match=r"demo.observe\(states, controls\) returned shape"):
        mbd.make_problem(jnp.zeros(2), _dyn, _rew, 5, 2, demo=demo)


def test_an_all_invalid_solve_is_reported(tmp_path):
    problem = mbd.make_problem(jnp.zeros(2), _dyn, lambda x, u: -jnp.inf, 5, 2)
    task = TaskSpec("neginf", "every reward -inf", lambda **kw: problem,
                    mbd.MBDConfig(num_samples=8, num_steps=4), 5)  # fmt: skip
    out = plan_task(task, task.config)
    assert out.summary["invalid_steps"] == 3  # all 3 updates
    assert out.summary["reward_finite"] is False


def test_demo_term_is_gated_by_the_constraint():
    # sample 0 is closest to the demonstration but infeasible: weight 0 (Eq. 10d, 13)
    reward = jnp.array([0.0, 0.0, 0.0])
    violation = jnp.array([1.0, 0.0, 0.0])
    q = jnp.array([0.0, -0.5, -1.0])
    for reading in ("reference", "paper"):
        cfg = mbd.MBDConfig(reading=reading)
        w = mbd.compute_weights(reward, violation, cfg, q, 2.0).weights
        assert float(w[0]) == 0.0
        assert float(w[1]) > float(w[2])  # the nearer feasible sample wins
    # with no feasible sample, the demo term works on the valid ones (the fallback)
    w = mbd.compute_weights(reward, jnp.ones(3), mbd.MBDConfig(), q, 0.5).weights
    assert float(w[0]) > 0.0


def test_car2d_picture_holds_everything_drawn():
    problem = car2d.make(demo=True)
    pos = np.array([[-0.5, 0.0], [-2.63, 0.4], [-2.07, -1.0]])
    lo, hi = car2d_extent(problem, pos)
    assert lo[0] <= -2.63 - 0.1 and hi[0] >= 2.0
    ref = np.asarray(problem.demo.reference)
    assert np.all(ref >= lo) and np.all(ref <= hi)


def test_no_negative_zero():
    assert fmt(-1e-9, 4) == "0.0000"
    assert fmt(-0.0) == "0.000"
    assert fmt(-0.1234, 3) == "-0.123"
    assert fmt(float("nan")) == "nan"


def test_car2d_constraint_can_be_switched_off(tmp_path, capsys):
    out = tmp_path / "nc"
    args = ["plan", "car2d", "--no-constraint", "--num-samples", "8", "--num-steps", "3"]
    assert main([*args, "--horizon", "10", "--quiet", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["task_options"]["constrained"] is False
    assert main(["plan", "pointmass", "--no-constraint", "--out", str(tmp_path / "x")]) == 2
    assert "--no-constraint" in capsys.readouterr().err


def test_problem_rollout_uses_the_given_state():
    problem = mbd.make_problem(jnp.zeros(2), _dyn, _rew, 3, 2)
    ro = mbd.rollout(problem, jnp.ones((3, 2)), x0=jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(ro.states[-1], [1.3, 1.3], atol=1e-6)
    jax.block_until_ready(ro.rewards)


def test_a_solve_too_large_for_memory_is_refused_in_one_line(monkeypatch, tmp_path, capsys):
    import mbd.compile

    monkeypatch.setattr(mbd.compile, "available_bytes", lambda: 1000)
    args = ["plan", "car2d", "--num-samples", "64", "--num-steps", "3", "--horizon", "10"]
    assert main([*args, "--quiet", "--out", str(tmp_path / "big")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--num-samples: the solve needs" in err[0] and "0.0 GiB is available" in err[0]
    assert not (tmp_path / "big").exists()
    # the estimate is XLA's own: 64 samples x 10 steps of car2d need more than 1000 bytes
    monkeypatch.undo()  # compile() itself refuses what does not fit
    solver = mbd.make_solver(car2d.make(horizon=10), mbd.MBDConfig(num_samples=64, num_steps=3))
    need = solver.solve.compile(jax.random.key(0)).memory_bytes
    assert need is not None and need > 64 * 10 * 2 * 4


def test_submodules_load_on_first_use():
    """``import mbd`` then ``mbd.bbo`` / ``mbd.tasks`` works in a fresh interpreter, the
    submodule is not imported before it is used, and a typo is a plain AttributeError."""
    import subprocess
    import sys

    code = (
        "import sys, mbd\n"
        "assert 'mbd.bbo' not in sys.modules\n"
        "assert mbd.bbo.Restarts().max_restarts == 9\n"
        "assert callable(mbd.tasks.get_task)\n"
        "try:\n"
        "    mbd.bboo\n"
        "except AttributeError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "module 'mbd' has no attribute 'bboo'"
