"""Receding-horizon control: closed loops, no recompilation, methods, splines, mbd mpc."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.cli.main import main
from mbd.compile import count_compiles
from mbd.mpc import MPCConfig, closed_loop, dial_noise, make_controller, mbd_noise, run_timed
from mbd.splines import control_matrix, interpolation_matrix, knot_times, shift_matrix
from mbd.tasks import car2d, classic

CFG = mbd.MBDConfig(num_samples=64, num_steps=50, temperature=0.1)
MPC = MPCConfig(iterations=2, warmup_iterations=20)


def test_pendulum_swings_up_and_holds_in_a_scanned_closed_loop():
    ctrl = make_controller(classic.pendulum(), "mbd", CFG, MPC)
    loop = jax.jit(lambda k: closed_loop(ctrl, k, 100))
    res = loop(jax.random.key(0))
    # hanging down scores cos(pi) = -1; upright and still scores 1
    assert float(jnp.mean(res.rewards[-20:])) > 0.95
    assert abs(float(jnp.cos(res.states[-1, 0])) - 1.0) < 0.01
    assert res.controls.shape == (100, 1)
    assert float(jnp.max(jnp.abs(res.controls))) <= classic.PENDULUM_TORQUE + 1e-6


def test_a_100_step_loop_compiles_the_step_once():
    ctrl = make_controller(classic.pendulum(), "mbd", CFG, MPC)
    with count_compiles() as c:
        timed = run_timed(ctrl, jax.random.key(1), 100)
    assert c.of("step") == 1
    assert timed.num_compiles == 1
    assert timed.step_seconds.shape == (100,)
    # the step-by-step loop is the scanned loop, same keys
    scanned = closed_loop(ctrl, jax.random.key(1), 100)
    np.testing.assert_allclose(timed.result.controls, scanned.controls, rtol=0, atol=1e-4)


@pytest.mark.parametrize("method", ["dial", "mppi", "cem", "ps", "cmaes", "random"])
def test_every_method_runs_in_the_loop_at_the_same_budget(method):
    ctrl = make_controller(classic.pendulum(), method, CFG, MPC)
    res = jax.jit(lambda k: closed_loop(ctrl, k, 60))(jax.random.key(0))
    assert res.rewards.shape == (60,)
    assert np.all(np.isfinite(np.asarray(res.rewards)))
    # better than doing nothing (hanging: -1 per step)
    assert float(jnp.mean(res.rewards)) > -0.9
    budget = ctrl.planner.num_updates
    assert budget == MPC.iterations


def test_model_mismatch_reaches_the_plant_only():
    ctrl = make_controller(classic.pendulum(), "mbd", CFG, MPC)
    same = closed_loop(ctrl, jax.random.key(2), 30)
    heavy = closed_loop(ctrl, jax.random.key(2), 30, plant_params={"mass": jnp.float32(2.0)})
    # the first control is planned on the same model from the same state
    np.testing.assert_allclose(same.controls[0], heavy.controls[0], rtol=0, atol=1e-6)
    # the heavier plant turns less for the same torque
    assert not np.allclose(same.states[1:], heavy.states[1:])


def test_demonstration_rows_move_with_the_loop():
    problem = car2d.make(horizon=20, demo=True)
    ctrl = make_controller(problem, "mbd", mbd.MBDConfig(num_samples=32, num_steps=10), MPC)
    cs = ctrl.init(jax.random.key(0), problem.init_state)
    ref = np.asarray(problem.demo.reference)
    _, cs, _ = ctrl.step(jax.random.key(1), cs, problem.init_state)
    np.testing.assert_array_equal(cs.demo_reference[:-1], ref[1:])
    np.testing.assert_array_equal(cs.demo_reference[-1], ref[-1])


def test_noise_tables():
    cfg = mbd.MBDConfig(num_steps=11)
    t = mbd_noise(cfg, 3, 1.0)  # diffusion steps i = 10, 6 (5.5 rounded to even), 1
    sch = mbd.make_schedule("linear", 11, 1e-4, 1e-2)
    i = np.round(np.linspace(10, 1, 3)).astype(int)
    np.testing.assert_allclose(t, np.sqrt(1 - sch.alpha_bars[i]), rtol=1e-6)
    assert t[0] > t[1] > t[2]
    d = dial_noise(MPCConfig(iterations=2, noise_max=1.0, beta_traj=0.5, beta_horizon=1.0), 4)
    assert d.shape == (2, 4, 1)
    assert d[0, -1, 0] == pytest.approx(1.0)  # first update, far end of the plan
    assert d[1, -1, 0] == pytest.approx(np.exp(-1 / (0.5 * 2)))
    assert d[0, 0, 0] == pytest.approx(np.exp(-3 / 4))  # the control applied next


def test_interpolation_matrices_by_hand():
    tau = knot_times(5, 3)
    np.testing.assert_array_equal(tau, [0.0, 2.0, 4.0])
    lin = interpolation_matrix(np.arange(5), tau, "linear")
    np.testing.assert_allclose(lin[1], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(lin[3], [0.0, 0.5, 0.5])
    zoh = interpolation_matrix(np.arange(5), tau, "zero")
    np.testing.assert_array_equal(zoh.argmax(axis=1), [0, 0, 1, 1, 2])
    cub = interpolation_matrix(np.arange(5), tau, "cubic")
    np.testing.assert_allclose(cub[[0, 2, 4]], np.eye(3), atol=1e-12)  # through the knots
    line = 0.3 + 0.2 * tau  # a natural cubic spline reproduces a line exactly
    np.testing.assert_allclose(cub @ line, 0.3 + 0.2 * np.arange(5), atol=1e-12)
    # natural spline through (0,0), (2,1), (4,0): second derivative -0.75 at 2, y(1) = 0.6875
    np.testing.assert_allclose(cub[1] @ np.array([0.0, 1.0, 0.0]), 0.6875, atol=1e-12)


def test_shift_matrices():
    z = np.arange(5.0)
    np.testing.assert_array_equal(shift_matrix(5, None) @ z, [1, 2, 3, 4, 4])
    s = shift_matrix(5, 3, "linear")  # knots at 0, 2, 4 evaluated at 1, 3, 5 (held)
    np.testing.assert_allclose(s @ np.array([0.0, 2.0, 4.0]), [1.0, 3.0, 4.0], atol=1e-6)


def test_spline_problem_searches_knots_and_plans():
    base = classic.pendulum()
    sp = mbd.make_problem(
        base.init_state,
        classic.pendulum_dynamics,
        classic.pendulum_reward,
        30,
        1,
        -4.0,
        4.0,
        params=base.params,
        knots=6,
        spline="cubic",
    )
    assert sp.shape == (6, 1)
    z = jnp.linspace(-1, 1, 6)[:, None]
    u = sp.controls(z)
    assert u.shape == (30, 1)
    m = control_matrix(30, 6, "cubic")
    np.testing.assert_allclose(u, 4.0 * np.clip(m @ np.asarray(z), -1, 1), atol=1e-5)
    np.testing.assert_allclose(sp.normalize(u), z, atol=1e-4)
    res = mbd.make_solver(sp, CFG).solve(jax.random.key(0))
    assert res.solution.shape == (30, 1) and res.z.shape == (6, 1)
    with pytest.raises(ValueError, match="knots must be an integer in"):
        mbd.make_problem(base.init_state, classic.pendulum_dynamics, classic.pendulum_reward,
                         30, 1, params=base.params, knots=31)  # fmt: skip


def test_mpc_with_knots_swings_up():
    sp = mbd.make_problem(
        jnp.array([np.pi, 0.0]),
        classic.pendulum_dynamics,
        classic.pendulum_reward,
        30,
        1,
        -4.0,
        4.0,
        params={"mass": jnp.float32(1.0)},
        knots=8,
        spline="linear",
    )
    ctrl = make_controller(sp, "mbd", CFG, MPC)
    res = jax.jit(lambda k: closed_loop(ctrl, k, 100))(jax.random.key(0))
    assert float(jnp.mean(res.rewards[-20:])) > 0.9


def test_bad_controller_options_fail_clearly():
    with pytest.raises(ValueError, match="unknown MPC method 'foo'"):
        make_controller(classic.pendulum(), "foo", CFG, MPC)
    with pytest.raises(mbd.ConfigError, match="iterations"):
        MPCConfig(iterations=0)
    with pytest.raises(mbd.ConfigError, match="noise_level"):
        MPCConfig(noise_level=1.5)


def test_cli_mpc_writes_its_files(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["mpc", "pendulum", "--steps", "30", "--num-samples", "32", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    for key in ("closed_loop_return", "solve_seconds_median", "solve_seconds_max",
                "control_rate_hz", "compile_seconds"):  # fmt: skip
        assert np.isfinite(s[key])
    assert s["step_compiles"] == 1
    tr = np.load(out / "trajectory.npz")
    assert tr["controls"].shape == (30, 1) and tr["states"].shape == (30, 2)
    assert s["closed_loop_return"] == pytest.approx(float(np.mean(tr["rewards"])), rel=1e-6)
    assert (out / "reward.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--steps", "0"], "--steps"),
        (["--knots", "50"], "--knots"),
        (["--noise-level", "2"], "--noise-level"),
        (["--method", "foo"], "--method"),
        (["--demo"], "--demo"),
        (["--mismatch", "-1"], "--mismatch"),
        (["--method", "cmaes", "--num-samples", "1"], "--num-samples"),
        (["--temperature", "0"], "--temperature"),
        (["--ess-target", "1.5"], "--ess-target"),
        (["--method", "cem", "--ess-target", "0.1"], "--ess-target"),
    ],
)
def test_cli_mpc_bad_values_exit_2(tmp_path, capsys, args, option):
    assert main(["mpc", "pendulum", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0]
    assert not (tmp_path / "x").exists()


def test_cli_plan_with_knots(tmp_path):
    out = tmp_path / "p"
    args = ["plan", "pendulum", "--knots", "5", "--spline", "zero", "--num-samples", "16"]
    assert main([*args, "--num-steps", "4", "--quiet", "--out", str(out)]) == 0
    tr = np.load(out / "trajectory.npz")
    assert tr["controls"].shape == (30, 1) and tr["z"].shape == (5, 1)
    # zero-order hold: the 30 controls take at most 5 distinct values
    assert len(np.unique(tr["controls"])) <= 5
    assert json.loads((out / "summary.json").read_text())["knots"] == 5


def test_a_plant_with_weakly_typed_state_does_not_recompile_the_step():
    # the second leaf comes back as a Python float: weakly typed, as simulators' often do
    def dynamics(x, u):
        return (x[0] + 0.1 * u, 1.0)

    def reward(x, u):
        return -jnp.sum((x[0] - 1.0) ** 2)

    problem = mbd.make_problem((jnp.zeros(2), jnp.float32(0.0)), dynamics, reward, 10, 2)
    ctrl = make_controller(problem, "mbd", mbd.MBDConfig(num_samples=16, num_steps=5), MPC)
    timed = run_timed(ctrl, jax.random.key(0), 20)
    assert timed.num_compiles == 1
    assert float(timed.result.states[0][-1, 0]) > 0.5  # it moves towards (1, 1)


def test_run_timed_disturb_replaces_the_plant_state_between_steps():
    ctrl = make_controller(classic.pendulum(), "mbd", mbd.MBDConfig(num_samples=16), MPC)
    key = jax.random.key(3)
    base = run_timed(ctrl, key, 4).result
    seen = []

    def nothing(t, x):
        seen.append(t)  # called after every step, on the host

    same = run_timed(ctrl, key, 4, disturb=nothing).result
    assert seen == [0, 1, 2, 3]
    np.testing.assert_array_equal(same.states, base.states)

    def kick(t, x):  # a push of +0.5 rad/s after step 1 (the state is (angle, rate))
        return np.asarray(x) + np.array([0.0, 0.5]) if t == 1 else None

    pushed = run_timed(ctrl, key, 4, disturb=kick).result
    np.testing.assert_array_equal(pushed.states[0], base.states[0])
    kicked = np.asarray(base.states[1]) + np.array([0.0, 0.5])
    np.testing.assert_allclose(pushed.states[1], kicked, atol=1e-6)
    assert pushed.states.dtype == base.states.dtype
    assert not np.allclose(pushed.states[2], base.states[2])  # the loop went on from the push
    with pytest.raises(TypeError, match="disturb returned a state of another structure at step 0"):
        run_timed(ctrl, key, 2, disturb=lambda t, x: (x, x))


def test_cli_mpc_mismatch_needs_a_mass_param(tmp_path, capsys):
    assert main(["mpc", "pointmass", "--mismatch", "0.2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mbd mpc: error: --mismatch: task 'pointmass' has no mass parameter to perturb"]
    assert not (tmp_path / "x").exists()


def test_cli_mpc_ess_target_reaches_the_planner():
    from mbd.cli.mpc import configs, parse

    _, opts = parse(["pendulum", "--num-samples", "32", "--ess-target", "0.25"])
    config, mpc = configs(opts)
    assert config.ess_target == 0.25
    ctrl = make_controller(classic.pendulum(), "mbd", config, mpc)
    key = jax.random.key(0)
    _, info = ctrl.planner.step(key, ctrl.planner.init(key))
    np.testing.assert_allclose(float(info.ess), 0.25 * 32, rtol=1e-3)  # not ~1.6 at 0.1


def test_mpc_refuses_the_adaptive_noise_size():
    problem = classic.pendulum()
    cfg = mbd.MBDConfig(num_samples=8, noise_size="adaptive")
    with pytest.raises(ValueError, match="sets the noise of every control step itself"):
        make_controller(problem, "mbd", cfg, MPCConfig())


def test_without_predict_the_step_drops_the_replay_and_keeps_the_controls():
    pytest.importorskip("mujoco")
    from mbd.sim.engines import make_mujoco_problem

    xml = """<mujoco><option timestep="0.02"/><worldbody><body name="pole" pos="0 0 1">
      <joint name="hinge" type="hinge" axis="0 1 0"/><geom type="capsule" fromto="0 0 0 0 0 -0.5"
      size="0.04" mass="1"/></body></worldbody>
      <actuator><motor joint="hinge" ctrlrange="-1 1"/></actuator></mujoco>"""
    problem = make_mujoco_problem(
        xml, lambda b, u, a: -jnp.cos(a.qpos[0]), horizon=6, n_frames=2, engine="mujoco"
    )
    key, x = jax.random.key(3), problem.init_state
    out = {}
    for predict in (True, False):
        ctrl = make_controller(
            problem, "mbd", CFG, MPCConfig(iterations=2, warmup_iterations=2, predict=predict)
        )
        cs = ctrl.init(key)
        text = jax.jit(ctrl.step).lower(key, cs, x).compile().as_text()
        # the native engine is a host callback: one in the updates' scan, one in the replay
        calls = text.count('python_cpu_callback"')
        u, _, report = jax.jit(ctrl.step)(key, cs, x)
        _, plan = jax.jit(ctrl.replan)(key, cs, x, 0)
        out[predict] = (calls, np.asarray(u), float(report.predicted_reward), plan)
    assert out[True][0] == 2 and out[False][0] == 1
    np.testing.assert_array_equal(out[True][1], out[False][1])
    assert np.isfinite(out[True][2]) and np.isnan(out[False][2])
    assert out[True][3].states is not None and out[False][3].states is None
    np.testing.assert_array_equal(out[True][3].controls, out[False][3].controls)
    with pytest.raises(mbd.ConfigError, match="predict"):
        MPCConfig(predict="no")
