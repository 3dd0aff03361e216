"""The quadruped (issue 23): its shipped model, its reward by hand, a command that
compiles nothing, MJX against the native engine, and a short closed loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.tasks import legged

mujoco = pytest.importorskip("mujoco")


def _model():
    return mujoco.MjModel.from_xml_string(legged.quadruped_xml())


def test_the_model_has_the_published_figures():
    m = _model()
    # trunk 6.921 kg + 4 legs x (hip 0.678 + thigh 1.152 + calf 0.154 + foot 0.04)
    assert m.body_subtreemass[1] == pytest.approx(6.921 + 4 * 2.024, abs=1e-9)
    assert m.nu == 12 and m.nq == 19
    name = lambda i: mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, i)  # noqa: E731
    ranges = {name(i): tuple(m.jnt_range[i]) for i in range(1, m.njnt)}
    assert ranges["FL_hip"] == pytest.approx((-1.0472, 1.0472))
    assert ranges["FR_thigh"] == pytest.approx((-1.5708, 3.4907))
    assert ranges["RL_thigh"] == pytest.approx((-0.5236, 4.5379))
    assert ranges["RR_calf"] == pytest.approx((-2.7227, -0.83776))
    np.testing.assert_allclose(m.actuator_forcerange[:, 1], legged.TORQUE_LIMIT)


def test_it_stands_on_its_servos():
    m = _model()
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, 0)
    for _ in range(400):  # 2 s holding the standing pose
        mujoco.mj_step(m, d)
    assert 0.24 < d.qpos[2] < 0.28 and d.sensordata[8] > 0.99
    assert abs(d.qpos[0]) < 0.05  # it stays where it is


def _reward_by_hand(m, d, u, cmd):
    """The module doc's reward from MuJoCo's own data after a step (float64)."""
    rot = d.xmat[1].reshape(3, 3)  # the trunk's orientation
    v = rot.T @ d.qvel[:3]  # a free joint's qvel[:3] is world-frame linear velocity
    w = d.qvel[3:6]  # ... and qvel[3:6] the angular velocity in the body's frame
    up = rot[:, 2]
    z = d.xpos[1, 2]
    feet = [
        mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f + "_foot") for f in "FL FR RL RR".split()
    ]
    feet_z = d.site_xpos[feet, 2] - legged.FOOT_RADIUS
    phase = 2 * np.pi * d.time / legged.TROT_PERIOD + np.array([0, np.pi, np.pi, 0])
    lift = legged.STEP_HEIGHT * np.maximum(0.0, np.sin(phase))
    q, qd = d.qpos[7:], d.qvel[6:]
    tau = np.clip(legged.KP * (u - q) - legged.KV * qd, -legged.TORQUE_LIMIT, legged.TORQUE_LIMIT)
    fallen = z < legged.FALL_HEIGHT or up[2] < 0.5
    return (
        (-1.0 if fallen else 1.0)
        - 10 * ((v[0] - cmd["vx"]) ** 2 + (v[1] - cmd["vy"]) ** 2)
        - 0.5 * (w[2] - cmd["yaw_rate"]) ** 2
        - 0.5 * (1 - up[2])
        - 20 * (z - legged.STAND_HEIGHT) ** 2
        - 2 * np.sum((feet_z - lift) ** 2)
        - 1e-3 * np.sum(np.abs(tau * qd))
    )


def test_the_reward_by_hand_on_a_few_states():
    cmd = {"vx": 0.3, "vy": -0.1, "yaw_rate": 0.2}
    p = legged.make_quadruped(horizon=4, engine="mujoco", command=cmd, seed=3)
    m = _model()
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    x = p.init_state
    d.qpos[:] = np.asarray(p.step.physics.view(x).qpos, np.float64)
    for _ in range(3):
        u = legged.HOME + rng.uniform(-0.3, 0.3, 12)
        u = np.clip(u, p.action_low, p.action_high)
        x, r = p.call_step(x, jnp.asarray(u, jnp.float32))
        # the same step on the host, from the same float64 state
        d.qpos[:] = np.asarray(p.step.physics.view(x).qpos, np.float64)
        d.qvel[:] = np.asarray(p.step.physics.view(x).qvel, np.float64)
        d.time = float(p.step.physics.view(x).time)
        mujoco.mj_forward(m, d)
        assert float(r) == pytest.approx(_reward_by_hand(m, d, u, cmd), abs=1e-4)


def test_a_new_command_compiles_nothing():
    p = legged.make_quadruped(horizon=3, engine="mujoco")
    solver = mbd.make_solver(p, mbd.MBDConfig(num_samples=4, num_steps=2))
    key = jax.random.key(0)
    a = solver.solve(key)
    turn = {**p.params, "yaw_rate": jnp.float32(0.8)}
    b = solver.solve(key, params=turn)
    assert solver.solve.num_compiles == 1
    assert float(a.reward) != float(b.reward)  # the command reached the reward


@pytest.mark.slow
def test_mjx_steps_as_the_native_engine():
    p = legged.make_quadruped(horizon=3, engine="mjx")
    q = legged.make_quadruped(horizon=3, engine="mujoco")
    u = jnp.asarray(legged.HOME, jnp.float32)
    x, r = jax.jit(p.call_step)(p.init_state, u)
    y, s = q.call_step(q.init_state, u)
    qx = np.asarray(p.step.physics.view(x).qpos)
    qy = np.asarray(q.step.physics.view(y).qpos)
    np.testing.assert_allclose(qx, qy, atol=1e-4)
    assert float(r) == pytest.approx(float(s), abs=1e-4)


def test_a_short_closed_loop_reports_what_the_robot_did():
    from mbd.mpc import MPCConfig, make_controller, run_timed

    p = legged.make_quadruped(horizon=5, engine="mujoco")
    ctrl = make_controller(
        p, "mbd", mbd.MBDConfig(num_samples=8, num_steps=50),
        MPCConfig(iterations=1, warmup_iterations=2),
    )  # fmt: skip
    res = run_timed(ctrl, jax.random.key(0), 5).result
    m = legged.quadruped_metrics(p, res.states)
    assert set(m) == {
        "mean_forward_velocity", "velocity_error", "mean_yaw_rate", "yaw_rate_error", "fell",
        "torso_height_min",
    }  # fmt: skip
    assert m["fell"] is False and 0.2 < m["torso_height_min"] < 0.3
    # by hand: the trunk's x over 5 steps of 0.02 s
    x = np.asarray(p.step.physics.view(res.states).body_pos)[:, 0, 0]
    x0 = float(np.asarray(p.step.physics.view(p.init_state).body_pos)[0, 0])
    assert m["mean_forward_velocity"] == pytest.approx((x[-1] - x0) / 0.1, rel=1e-6)
    # the yaw rate: the free joint's angular velocity (the trunk's frame) about z; command 0
    wz = np.asarray(p.step.physics.view(res.states).qvel)[:, 5]
    assert m["yaw_rate_error"] == pytest.approx(np.mean(np.abs(wz)), rel=1e-5)


def test_bad_commands_are_refused():
    with pytest.raises(ValueError, match="vx, vy, yaw_rate"):
        legged.make_quadruped(horizon=3, engine="mujoco", command={"speed": 1.0})
    with pytest.raises(ValueError, match=r"n_frames must be an integer in \[1, 20\] \(got 0\)"):
        legged.make_quadruped(horizon=3, engine="mujoco", n_frames=0)


def test_a_coarser_planning_model_keeps_the_control_period():
    coarse = legged.make_quadruped(horizon=3, engine="mujoco", n_frames=2)
    fine = legged.make_quadruped(horizon=3, engine="mujoco")
    assert coarse.step.mj_model.opt.timestep == 0.01
    assert fine.step.mj_model.opt.timestep == 0.005  # the model's own
    assert coarse.dt == pytest.approx(0.02) and fine.dt == pytest.approx(0.02)
    # one control step of the same servo targets: the same motion to a few mm
    u = jnp.asarray(legged.HOME, jnp.float32)
    xc, _ = coarse.call_step(coarse.init_state, u)
    xf, _ = fine.call_step(fine.init_state, u)
    np.testing.assert_allclose(xc.body_pos, xf.body_pos, atol=5e-3)


@pytest.mark.parametrize("command", ["plan", "mpc"])
def test_the_cli_plans_and_closes_the_loop_with_a_replay(tmp_path, command):
    import json

    from mbd.cli.main import main

    out = tmp_path / command
    extra = ["--num-steps", "2"]
    if command == "mpc":
        extra = ["--steps", "3", "--warmup-iterations", "2"]
    argv = [command, "quadruped", "--num-samples", "8", "--horizon", "4", "--out", str(out)]
    assert main([*argv, *extra, "--quiet"]) == 0
    assert (out / "render.html").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    if command == "mpc":
        assert summary["knots"] == 4  # the task's 6 knots, on a horizon of 4 steps: 4
        m = summary["metrics"]
        assert {"mean_forward_velocity", "velocity_error", "fell"} <= set(m)
        assert m["fell"] is False


# --- planning over randomized models --------------------------------------------------------


def test_risk_measures_on_a_hand_made_batch():
    from mbd.risk import risk_measure, risk_weights

    r = jnp.array([3.0, 1.0, 2.0, 4.0])
    assert float(risk_measure(r, "mean")) == pytest.approx(2.5)
    assert float(risk_measure(r, "worst")) == pytest.approx(1.0)
    assert float(risk_measure(r, "cvar", alpha=0.5)) == pytest.approx(1.5)  # mean of 1, 2
    assert float(risk_measure(r, "cvar", alpha=0.3)) == pytest.approx(1.5)  # ceil(1.2) = 2
    assert float(risk_measure(r, "cvar", alpha=1.0)) == pytest.approx(2.5)
    np.testing.assert_allclose(risk_weights(r, "worst"), [0, 1, 0, 0])
    with pytest.raises(ValueError, match="mean, worst, cvar"):
        risk_weights(r, "median")


def test_randomized_models_keep_the_nominal_first():
    from mbd.risk import Randomization, randomize_models

    m = _model()
    models = randomize_models(m, 3, seed=1, spread=Randomization(friction=(0.5, 0.5)))
    np.testing.assert_array_equal(models[0].geom_friction, m.geom_friction)
    np.testing.assert_allclose(models[1].geom_friction[:, 0], 0.5 * m.geom_friction[:, 0])
    assert models[2].body_mass[1] != m.body_mass[1]
    assert m.geom_friction[0, 0] == pytest.approx(0.8)  # the original is untouched


def test_a_randomized_rollout_is_the_risk_weighted_sum_of_the_models_rollouts():
    from mbd.problem import rollout
    from mbd.risk import Randomization, randomize_models, randomized_problem

    models = randomize_models(_model(), 3, seed=0, spread=Randomization(mass=(0.6, 1.4)))

    def make(m):
        return legged.make_quadruped(horizon=4, engine="mujoco", model=m)

    u = jnp.asarray(np.tile(legged.HOME + 0.2, (4, 1)), jnp.float32)
    each = [rollout(make(m), u) for m in models]
    totals = np.array([float(jnp.mean(r.rewards)) for r in each])
    for risk, pick in (("mean", np.full(3, 1 / 3)), ("worst", np.eye(3)[np.argmin(totals)])):
        p = randomized_problem(make, models, risk=risk)
        got = rollout(p, u)
        want = sum(w * np.asarray(r.rewards) for w, r in zip(pick, each, strict=True))
        np.testing.assert_allclose(np.asarray(got.rewards), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(  # the nominal model's states
            np.asarray(got.states.hi), np.asarray(each[0].states.hi)
        )


def test_time_to_stand_by_hand():
    from collections import namedtuple
    from types import SimpleNamespace

    from mbd.tasks.mujoco_tasks import loop_metrics

    Pos, Pipe, State = (
        namedtuple("Pos", "pos"),
        namedtuple("Pipe", "x"),
        namedtuple("S", "pipeline_state"),
    )
    z = np.array([0.2, 0.6, 1.05, 1.12, 1.25, 1.3])  # the torso's height per control step
    pos = np.zeros((6, 2, 3))
    pos[:, 0, 2] = z
    init = State(Pipe(Pos(np.zeros((2, 3)))))
    problem = SimpleNamespace(step=object(), init_state=init, dt=0.042)
    m = loop_metrics("humanoidstand", problem, State(Pipe(Pos(pos))))
    assert m["time_to_stand"] == pytest.approx(4 * 0.042)  # the 4th step first reaches 1.1 m
    assert m["standing_at_end"] is True
    pos[:, 0, 2] = 0.3
    m = loop_metrics("humanoidstand", problem, State(Pipe(Pos(pos))))
    assert m["time_to_stand"] is None and m["standing_at_end"] is False


def _menagerie_go2():
    """A Menagerie Go2 the user already has: ``MBD_GO2_XML`` (a path), or the
    ``mujoco-menagerie`` package's cache (never a download); None where neither is."""
    import os

    if path := os.environ.get("MBD_GO2_XML"):
        return path
    try:
        import mujoco_menagerie as menagerie

        robot = menagerie.get("unitree_go2")
        if not menagerie.Cache().is_cached(robot):
            return None
        return menagerie.load("unitree_go2")
    except Exception:  # not installed, or another version's API
        return None


def test_a_menagerie_go2_goes_through_make_mujoco_problem():
    from mbd.sim.engines import make_mujoco_problem

    model = _menagerie_go2()
    if model is None:
        pytest.skip("no Menagerie Go2 here (set MBD_GO2_XML, or cache mujoco-menagerie's)")
    p = make_mujoco_problem(
        model, lambda before, u, after: after.qpos[2], horizon=2, engine="mujoco"
    )
    x, r = p.call_step(p.init_state, jnp.zeros(p.action_dim))
    assert np.isfinite(float(r)) and p.action_dim == 12
    q0, q1 = (np.asarray(p.step.physics.view(s).qpos) for s in (p.init_state, x))
    assert q1.shape == (19,) and not np.array_equal(q0, q1)  # it stepped


def test_randomized_planning_arguments_are_checked():
    from mbd.risk import RandomizedStep, randomize_models

    for num in (0, 1.5, True):
        with pytest.raises(ValueError, match="num must be an integer >= 1"):
            randomize_models(_model(), num)
    p = legged.make_quadruped(horizon=2, engine="mujoco")
    with pytest.raises(ValueError, match="risk must be one of mean, worst, cvar"):
        RandomizedStep([p], risk="median")
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\]"):
        RandomizedStep([p], risk="cvar", alpha=0.0)
    with pytest.raises(ValueError, match="at least one problem"):
        RandomizedStep([])
