"""MuJoCo engines (mbd.sim.engines): native MuJoCo, MJX, MuJoCo Warp; the paper's tasks
defined once on MuJoCo models; dm_control's models.

The native engine compiles no physics (a host callback steps MuJoCo in C), so these tests
solve real tasks in seconds. MJX is compiled once, on a one-joint pendulum. MuJoCo Warp
runs on the CPU here only to check the adapter's shapes and one step (it is made for a GPU).
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.sim import MissingExtraError, engines, render
from mbd.tasks import get_task, mujoco_tasks, robots

mujoco = pytest.importorskip("mujoco")

PENDULUM = """
<mujoco model="pendulum">
  <option timestep="0.02"/>
  <worldbody>
    <body name="pole" pos="0 0 1">
      <joint name="hinge" type="hinge" axis="0 1 0" damping="0.05"/>
      <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.04" mass="1"/>
      <body name="tip" pos="0 0 -0.5"/>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" ctrllimited="true" ctrlrange="-3 3"/></actuator>
  <sensor><jointpos joint="hinge"/></sensor>
</mujoco>
"""


def upright(before, u, after):
    return -jnp.cos(after.qpos[0])  # hanging: -1, upright: +1


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo may write MUJOCO_LOG.TXT here


def dm_control_model(name: str) -> Path:
    """A dm_control suite model file (the package is not imported: it starts GLFW)."""
    import importlib.util

    spec = importlib.util.find_spec("dm_control")
    if spec is None:
        pytest.skip("dm-control is not installed (the test extra has it)")
    return Path(spec.submodule_search_locations[0]) / "suite" / name


def host_rollout(m, qpos, qvel, controls, n_frames):
    """Reference: plain mj_step on the host, float64 all the way."""
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = qpos, qvel
    mujoco.mj_forward(m, d)
    out = []
    for u in controls:
        d.ctrl[:] = u
        for _ in range(n_frames):
            mujoco.mj_step(m, d)
        out.append((d.qpos.copy(), d.qvel.copy(), d.time))
    return out


def test_split64_round_trips_float64():
    x = np.random.default_rng(0).normal(size=1000) * 10.0 ** np.arange(-5, 5).repeat(100)
    hi, lo = engines.split64(x)
    assert hi.dtype == lo.dtype == np.float32
    np.testing.assert_allclose(engines.join64(hi, lo), x, rtol=1e-14, atol=0)


def test_native_step_is_mujoco_step():
    problem = engines.make_mujoco_problem(
        PENDULUM, upright, horizon=6, engine="mujoco", n_frames=3, bodies=("tip",),
        init_qpos=[0.3], init_qvel=[-0.2],
    )  # fmt: skip
    assert problem.step.engine == "mujoco" and problem.step.dt == pytest.approx(0.06)
    u = np.linspace(-3, 3, 6, dtype=np.float32)[:, None]
    ro = jax.jit(lambda u: mbd.rollout(problem, u))(jnp.asarray(u))
    ref = host_rollout(problem.step.mj_model, [0.3], [-0.2], u, 3)
    x = engines.join64(ro.states.hi, ro.states.lo)  # the exact float64 states
    view = problem.step.physics.view(ro.states)
    for t, (q, v, time) in enumerate(ref):
        assert x[t, 0] == pytest.approx(time, abs=1e-12)
        np.testing.assert_allclose(x[t, 1:2], q, rtol=0, atol=1e-12)
        np.testing.assert_allclose(x[t, 2:3], v, rtol=0, atol=1e-12)
        # the tip hangs 0.5 below the hinge at (0, 0, 1), rotated by the angle about y
        tip = [-0.5 * np.sin(q[0]), 0.0, 1.0 - 0.5 * np.cos(q[0])]
        np.testing.assert_allclose(view.body_pos[t, 0], tip, atol=1e-6)
    np.testing.assert_allclose(ro.rewards, [-np.cos(q[0]) for q, _, _ in ref], atol=1e-6)
    assert view.sensordata.shape == (6, 1)  # the model's jointpos sensor


def test_native_batches_agree_with_single_rollouts():
    problem = engines.make_mujoco_problem(PENDULUM, upright, horizon=5, n_frames=2)
    z = jax.random.uniform(jax.random.key(0), (7, 5, 1), minval=-1, maxval=1)
    u = problem.controls(z)
    batched = jax.jit(jax.vmap(lambda u: mbd.rollout(problem, u).rewards))(u)
    for i in range(7):
        one = mbd.rollout(problem, u[i]).rewards
        np.testing.assert_array_equal(batched[i], one)


def per_step_rollout(problem, controls):
    """Reference: the problem's one-control-step host call, scanned over time (the path a
    plant takes), with the constraint-free rollout's fields."""

    def body(x, u):
        x_next, r = problem.call_step(x, u)
        return x_next, (x_next, r)

    _, (states, rewards) = jax.lax.scan(body, problem.init_state, controls)
    return states, rewards


def kinematics_positions(problem, states, bodies):
    """Reference: mj_kinematics at each float64 state, the tracked bodies' xpos."""
    m = problem.step.mj_model
    d = mujoco.MjData(m)
    x = engines.join64(np.asarray(states.hi), np.asarray(states.lo))
    out = []
    for row in x.reshape(-1, x.shape[-1]):
        mujoco.mj_setState(m, d, row, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_kinematics(m, d)
        out.append(d.xpos[bodies].copy())
    return np.stack(out).reshape(*x.shape[:-1], len(bodies), 3).astype(np.float32)


@pytest.mark.parametrize("model", ["hopper", "acrobot"])
def test_whole_horizon_rollout_equals_the_per_step_one_bitwise(model):
    # hopper: contacts, Euler, 20 physics steps a control step; dm_control's acrobot: RK4
    if model == "hopper":
        problem = mujoco_tasks.make("hopper", 8, seed=1, engine="mujoco")
        bodies = problem.step.physics.bodies
    else:

        def reward(before, u, after):  # reads every field of the view
            return (
                jnp.cos(after.qpos[0]) + after.body_pos[1, 2] - 0.1 * after.qvel[1] ** 2
                + 0.01 * jnp.sum(after.sensordata) - 0.01 * u[0] ** 2
            )  # fmt: skip

        problem = engines.make_mujoco_problem(
            dm_control_model("acrobot.xml"), reward, horizon=8, n_frames=4,
            bodies=("upper_arm", "lower_arm"), init_qpos=[2.5, -0.5],
        )  # fmt: skip
        bodies = problem.step.physics.bodies
    assert callable(problem.step.rollout)  # the native engine rolls out whole horizons
    z = jax.random.uniform(jax.random.key(3), (5, 8, problem.action_dim), minval=-1, maxval=1)
    u = jax.vmap(problem.controls)(z)
    whole = jax.jit(jax.vmap(lambda u: mbd.rollout(problem, u)))(u)
    steps, rewards = jax.jit(jax.vmap(lambda u: per_step_rollout(problem, u)))(u)
    for name in ("hi", "lo", "sensordata", "body_pos"):
        np.testing.assert_array_equal(getattr(whole.states, name), getattr(steps, name))
    np.testing.assert_array_equal(whole.rewards, rewards)
    # the positions are MuJoCo's forward kinematics of the states reached
    np.testing.assert_array_equal(
        whole.states.body_pos, kinematics_positions(problem, whole.states, bodies)
    )
    # a replay (one sample, unbatched) equals the batch's row
    one = jax.jit(lambda u: mbd.rollout(problem, u))(u[2])
    np.testing.assert_array_equal(one.states.hi, whole.states.hi[2])
    np.testing.assert_array_equal(one.rewards, whole.rewards[2])


def test_native_rollout_makes_one_host_call_per_batch(monkeypatch):
    problem = engines.make_mujoco_problem(PENDULUM, upright, horizon=6, n_frames=2)
    physics = problem.step.physics
    calls = []
    real = physics.run
    monkeypatch.setattr(physics, "run", lambda x0, u: calls.append(u.shape) or real(x0, u))
    z = jnp.zeros((7, 6, 1))
    jax.jit(jax.vmap(lambda z: mbd.rollout(problem, problem.controls(z)).rewards))(z)
    assert calls == [(7, 6, 1)]  # every sample's whole horizon at once


@pytest.mark.slow
def test_mjx_and_native_engines_agree_and_the_native_one_swings_up():
    # (the MJX adapter's own swing-up is in test_robots.py)
    problem = functools.partial(
        engines.make_mujoco_problem, PENDULUM, upright, horizon=25, n_frames=2
    )
    p_nat, p_mjx = problem(engine="mujoco"), problem(engine="mjx")
    cfg = mbd.MBDConfig(num_samples=64, num_steps=40)
    r_nat = mbd.make_solver(p_nat, cfg).solve(jax.random.key(0))
    r_nat = jax.tree_util.tree_map(np.asarray, r_nat)
    # the same controls give the same rewards on both engines (float32 MJX vs float64 C)
    z = jax.random.uniform(jax.random.key(1), (4, 25, 1), minval=-1, maxval=1)
    rew = [
        jax.vmap(lambda z, p=p: mbd.rollout(p, p.controls(z)).rewards)(z) for p in (p_nat, p_mjx)
    ]
    np.testing.assert_allclose(rew[0], rew[1], atol=2e-3)
    idle = float(jnp.mean(mbd.rollout(p_nat, jnp.zeros((25, 1))).rewards))
    assert idle == pytest.approx(-1.0, abs=1e-4)
    assert r_nat.reward > idle + 0.4
    # the solver's reported rewards are those of a replay of its plan (same engine)
    replay = mbd.rollout(p_nat, jnp.asarray(r_nat.solution)).rewards
    np.testing.assert_array_equal(replay, r_nat.rewards)


def test_dm_control_cartpole_swings_up_on_the_native_engine():
    path = dm_control_model("cartpole.xml")

    def reward(before, u, after):  # pole angle qpos[1] = 0 upright; centred cart
        return jnp.cos(after.qpos[1]) - 0.1 * after.qpos[0] ** 2 - 0.01 * after.qvel[1] ** 2

    m = mujoco.MjModel.from_xml_path(str(path))
    problem = engines.make_mujoco_problem(
        path, reward, horizon=40, engine="mujoco", n_frames=5, init_qpos=[0.0, np.pi]
    )  # hanging down; control period 0.05 s
    assert problem.action_dim == m.nu == 1
    # 64 samples x 60 steps: seeds 0-4 end 0.03-0.10 rad from upright (256 x 60: 0.01-0.12)
    cfg = mbd.MBDConfig(num_samples=64, num_steps=60, temperature=0.1)
    res = mbd.make_solver(problem, cfg).solve(jax.random.key(0))
    angle = np.asarray(problem.step.physics.view(res.states).qpos)[:, 1]
    # swung up: the pole ends within 0.35 rad of upright
    assert np.cos(angle[-1]) > np.cos(0.35), angle[-5:]


def test_dm_control_models_load_and_mjx_switches_energy_off_with_a_warning():
    for name in ("cartpole.xml", "acrobot.xml"):
        problem = engines.make_mujoco_problem(
            dm_control_model(name), upright, horizon=3, engine="mujoco"
        )
        ro = mbd.rollout(problem, jnp.ones((3, problem.action_dim)))
        assert np.all(np.isfinite(ro.rewards))
    pytest.importorskip("mujoco.mjx")
    from mbd.sim import mjx_adapter

    m = mujoco.MjModel.from_xml_path(str(dm_control_model("cartpole.xml")))
    assert m.opt.enableflags & int(mujoco.mjtEnableBit.mjENBL_ENERGY)
    with pytest.warns(UserWarning, match=r"^mjx does not support the model option mjENBL_ENERGY"):
        physics = mjx_adapter.MJXPhysics(m, np.zeros(0, np.int32), 1)
    assert not physics.model.opt.enableflags & int(mujoco.mjtEnableBit.mjENBL_ENERGY)
    assert m.opt.enableflags & int(mujoco.mjtEnableBit.mjENBL_ENERGY)  # the user's: untouched


def test_gymnasium_models_load_and_step_on_the_native_engine():
    import importlib.util

    spec = importlib.util.find_spec("gymnasium")
    if spec is None:
        pytest.skip("gymnasium is not installed (the test extra has it)")
    assets = Path(spec.submodule_search_locations[0]) / "envs" / "mujoco" / "assets"
    files = sorted(assets.glob("*.xml"))
    assert {"ant.xml", "hopper.xml", "humanoid.xml", "reacher.xml"} <= {f.name for f in files}
    for f in files:
        problem = engines.make_mujoco_problem(f, lambda b, u, a: a.qpos[0], horizon=3)
        ro = mbd.rollout(problem, jnp.zeros((3, problem.action_dim)))
        assert np.all(np.isfinite(ro.rewards)), f.name


def test_unsupported_option_is_refused_in_one_line():
    m = engines.compile_model(PENDULUM)

    def put(model):
        raise NotImplementedError("mjtIntegrator.mjINT_IMPLICIT")

    with pytest.raises(ValueError, match=r"^the x engine cannot simulate this model: mjtInt"):
        engines.adapt_model(m, "x", put)
    m.opt.enableflags |= int(mujoco.mjtEnableBit.mjENBL_FWDINV)
    calls = []

    def put_fwdinv(model):
        calls.append(model.opt.enableflags)
        if model.opt.enableflags & int(mujoco.mjtEnableBit.mjENBL_FWDINV):
            raise NotImplementedError("mjtEnableBit.mjENBL_FWDINV")
        return "converted"

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _, out = engines.adapt_model(m, "x", put_fwdinv)
    assert out == "converted" and len(calls) == 2 and len(w) == 1
    assert "mjENBL_FWDINV; switched off" in str(w[0].message)


def test_bad_input_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        engines.make_mujoco_problem(tmp_path / "none.xml", upright, horizon=3)
    with pytest.raises(ValueError, match="cannot load the MJCF model"):
        engines.make_mujoco_problem("<mujoco><worldbody><geom type='x'/>", upright, 3)
    with pytest.raises(ValueError, match=r"unknown bodies \['nope'\]; the model has \['pole'"):
        engines.make_mujoco_problem(PENDULUM, upright, 3, bodies=("nope",))
    with pytest.raises(ValueError, match="unknown engine 'bullet'; choose one of auto, mujoco"):
        engines.make_mujoco_problem(PENDULUM, upright, 3, engine="bullet")
    with pytest.raises(ValueError, match=r"init_qpos must have shape \(1,\)"):
        engines.make_mujoco_problem(PENDULUM, upright, 3, init_qpos=[0.0, 1.0])
    with pytest.raises(ValueError, match="n_frames must be an integer >= 1"):
        engines.make_mujoco_problem(PENDULUM, upright, 3, n_frames=0)
    with pytest.raises(ValueError, match=r"threads must be an integer >= 1 \(got 0\)"):
        engines.make_mujoco_problem(PENDULUM, upright, 3, threads=0)
    with pytest.raises(ValueError, match="timestep must be finite and > 0"):
        engines.make_mujoco_problem(PENDULUM, upright, 3, timestep=-0.01)
    with pytest.raises(ValueError, match="no actuator"):
        engines.make_mujoco_problem("<mujoco><worldbody/></mujoco>", upright, 3)
    with pytest.raises(ValueError, match=r"must return a scalar, got shape \(2,\)"):
        engines.make_mujoco_problem(PENDULUM, lambda b, u, a: jnp.stack([a.time, a.time]), 3)


def test_missing_mujoco_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco.batch", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'mbd\[brax\]'"):
        engines.make_mujoco_problem(PENDULUM, upright, 3, engine="mujoco")


def test_default_engine_is_native_on_a_cpu():
    assert jax.default_backend() == "cpu"
    assert engines.default_engine() == "mujoco"
    assert engines.check_engine("auto") == engines.check_engine(None) == "mujoco"
    assert robots.resolve_engine(None, None) == "mujoco"
    assert robots.resolve_engine(None, "positional") == "brax"
    with pytest.raises(ValueError, match="needs engine 'brax'"):
        robots.resolve_engine("mjx", "positional")


# --------------------------------------------------------------------------------------
# The paper's tasks on the native engine
# --------------------------------------------------------------------------------------

TINY = mbd.MBDConfig(num_samples=4, num_steps=2, temperature=0.1)
H = 3


@functools.cache
def solved(name: str):
    task = get_task(name)
    problem = task.make(horizon=H, demo=task.has_demo, seed=1, engine="mujoco")
    result = mbd.make_solver(problem, TINY).solve(jax.random.key(0))
    return problem, jax.tree_util.tree_map(np.asarray, result)


def expected_rewards(name, problem, result) -> np.ndarray:
    """The task's reward recomputed from exact host kinematics of the replayed states."""
    physics = problem.step.physics
    pos, _ = engines.frames(problem, result.states)  # (H+1, nbody-1, 3), host mj_kinematics
    torso = pos[:, 0]  # body 1 is the torso in every model here
    x, y, z = torso[1:, 0], torso[1:, 1], torso[1:, 2]
    u = np.asarray(result.solution)
    if name in ("halfcheetah", "ant"):
        vx = np.diff(torso[:, 0]) / problem.step.dt
        cost = 0.1 if name == "halfcheetah" else 0.5
        return vx - cost * np.sum(u**2, axis=1) + (1.0 if name == "ant" else 0.0)
    if name == "pusht":
        q = np.asarray(physics.view(result.states).qpos)
        g = robots.pusht_goal(1)
        tee = q[:, 2:4]
        return 1.0 - (
            np.linalg.norm(g[:2] - tee, axis=1)
            + np.abs(g[2] - q[:, 4]) / np.pi
            + np.maximum(np.linalg.norm(q[:, :2] - tee, axis=1) - 0.2, 0.0)
        )
    if name in ("hopper", "walker2d"):
        target = 1.0 if name == "hopper" else 1.1
        return x - 0.5 * np.clip(np.abs(z - target), -1, 1)
    if name == "humanoidrun":
        return x - np.clip(np.abs(z - 1.3), -1, 1) - 0.1 * np.abs(y)
    if name == "humanoidstandup":
        return 1.5 - np.clip(np.abs(z - 1.3), -2, 1) - 0.1 * np.abs(x) - 0.1 * np.abs(y)
    if name == "humanoidjog":
        vx = np.asarray(physics.view(result.states).qvel)[:, 0]
        return 1.0 - np.abs(vx - 1.6) - np.abs(z - 1.3) - 0.1 * np.abs(y)
    raise AssertionError(name)


@pytest.mark.parametrize("name", [t.name for t in robots.TASKS])
def test_paper_task_on_the_native_engine(name):
    problem, result = solved(name)
    assert problem.name == name and problem.step.engine == "mujoco"
    brax_like = {"hopper": 3, "walker2d": 6, "halfcheetah": 6, "ant": 8, "pusht": 2}
    assert problem.action_dim == brax_like.get(name, 17)
    assert result.solution.shape == (H, problem.action_dim)
    assert np.all(np.isfinite(result.rewards))
    np.testing.assert_allclose(result.rewards, expected_rewards(name, problem, result), atol=1e-4)
    n_frames = mujoco_tasks.TASKS[name].n_frames
    # the control period is the paper's (Brax positional's env dt)
    paper_dt = {"hopper": 0.04, "walker2d": 0.04, "halfcheetah": 0.05, "ant": 0.05,
                "humanoidrun": 0.042, "humanoidstandup": 0.042, "humanoidjog": 0.03,
                "pusht": 0.05}  # fmt: skip
    dt = float(problem.step.mj_model.opt.timestep) * n_frames
    assert dt == pytest.approx(paper_dt[name], rel=1e-6) == problem.step.dt
    view = problem.step.physics.view(problem.init_state)
    z0 = float(view.body_pos[0, 2])
    if name == "humanoidstandup":
        assert z0 == pytest.approx(0.15, abs=0.01)  # lying down
    elif name.startswith("humanoid"):
        assert z0 == pytest.approx(1.4, abs=0.01)


def test_seeds_change_the_start_and_the_goal():
    a = get_task("hopper").make(horizon=H, seed=0, engine="mujoco")
    b = get_task("hopper").make(horizon=H, seed=1, engine="mujoco")
    qa = np.asarray(a.step.physics.view(a.init_state).qpos)
    qb = np.asarray(b.step.physics.view(b.init_state).qpos)
    assert 0 < np.max(np.abs(qa - qb)) <= 0.01  # +-0.005 reset noise, as Brax's hopper
    p0 = get_task("pusht").make(horizon=H, seed=0, engine="mujoco")
    np.testing.assert_array_equal(p0.params, robots.pusht_goal(0))


def test_jog_demo_observes_the_tracked_bodies_and_reports_metrics():
    problem, result = solved("humanoidjog")
    obs = np.asarray(problem.demo.observe(result.states, None))
    pos, _ = engines.frames(problem, result.states)
    ids = engines.body_ids(problem.step.mj_model, robots.JOG_BODIES)
    np.testing.assert_allclose(obs, pos[1:, ids - 1], atol=1e-5)
    metrics = robots.jog_metrics(problem, result)
    assert set(metrics) == {"mocap_distance", "mocap_distance_final", "demo_loglik", "mean_speed"}
    assert -1.0 <= metrics["demo_loglik"] <= 0.0


def test_render_of_a_native_plan(tmp_path):
    problem, result = solved("hopper")
    scene = render.problem_scene(problem, result)
    assert scene["num_frames"] == H + 1 and scene["num_bodies"] == 4
    pos, _ = engines.frames(problem, result.states)
    np.testing.assert_allclose(np.asarray(scene["pos"]).reshape(H + 1, -1, 3), pos, atol=1e-4)


def test_cli_plans_on_the_native_engine(tmp_path, capsys):
    import json

    from mbd.cli.main import main

    out = tmp_path / "o"
    args = ["plan", "hopper", "--num-samples", "8", "--num-steps", "3", "--horizon", "5"]
    assert main([*args, "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "mujoco" and (out / "render.html").is_file()
    assert float(capsys.readouterr().out) == pytest.approx(summary["final_reward"], abs=1e-5)
    assert main(["plan", "hopper", "--engine", "mjx", "--backend", "positional"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "mbd plan: error: --backend: selects a Brax pipeline, which runs on --engine brax "
        "(got --engine mjx)"
    )
    assert main(["plan", "hopper", "--engine", "bullet"]) == 2
    assert "--engine: task 'hopper' supports auto, mujoco, mjx, warp, brax" in (
        capsys.readouterr().err
    )


# --------------------------------------------------------------------------------------
# MuJoCo Warp (a GPU engine; its CPU backend checks the adapter here)
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_warp_adapter_shapes_and_one_step_agree_with_native():
    pytest.importorskip("mujoco_warp")
    nat = engines.make_mujoco_problem(PENDULUM, upright, 4, engine="mujoco", bodies=("tip",))
    wrp = engines.make_mujoco_problem(PENDULUM, upright, 4, engine="warp", bodies=("tip",))
    assert wrp.step.engine == "warp"
    shapes = jax.eval_shape(lambda x: wrp.step(x, jnp.zeros(1)), wrp.init_state)
    like = jax.tree_util.tree_map(lambda a: a.shape, nat.init_state)
    assert jax.tree_util.tree_map(lambda a: a.shape, shapes[0]) == like
    u = jnp.asarray([[1.0], [-2.0], [3.0], [0.5]])
    a, b = (jax.jit(lambda u, p=p: mbd.rollout(p, u))(u) for p in (nat, wrp))
    va, vb = nat.step.physics.view(a.states), wrp.step.physics.view(b.states)
    np.testing.assert_allclose(vb.qpos, va.qpos, atol=1e-4)  # Warp computes in float32
    np.testing.assert_allclose(vb.body_pos, va.body_pos, atol=1e-4)
    np.testing.assert_allclose(b.rewards, a.rewards, atol=1e-4)


@pytest.mark.slow
def test_warp_whole_horizon_rollout_equals_the_per_step_one_bitwise(monkeypatch):
    pytest.importorskip("mujoco_warp")
    problem = engines.make_mujoco_problem(PENDULUM, upright, 5, engine="warp", bodies=("tip",))
    physics = problem.step.physics
    assert callable(problem.step.rollout)  # Warp rolls out whole horizons too
    calls = []
    real = physics.run
    monkeypatch.setattr(physics, "run", lambda x0, u: calls.append(u.shape) or real(x0, u))
    u = jax.random.uniform(jax.random.key(4), (3, 5, 1), minval=-2, maxval=2)
    whole = jax.jit(jax.vmap(lambda u: mbd.rollout(problem, u)))(u)
    assert calls == [(3, 5, 1)]  # every sample's whole horizon in one host call
    steps, rewards = jax.jit(jax.vmap(lambda u: per_step_rollout(problem, u)))(u)
    for name in ("hi", "lo", "sensordata", "body_pos"):
        np.testing.assert_array_equal(getattr(whole.states, name), getattr(steps, name))
    np.testing.assert_array_equal(whole.rewards, rewards)
    assert not np.any(np.asarray(whole.states.lo))  # Warp's float32: nothing below hi
