"""Robot tasks on Brax (the paper's definitions) and the MJX adapter, renders, CLI errors.

Needs the ``brax`` extra (skipped without it). Every task is built, stepped and solved
on Brax positional, the paper's pipeline, and the generalized and mjx pipelines once
each (on hopper and pusht), with tiny sizes (4 samples, horizon 3, one diffusion update)
shared by the checks. Compiling a solve over a Brax physics step is what costs here
(20-75 s of CPU per pair with XLA's optimizations, about half without), so the solves are
compiled with ``jax_disable_most_optimizations``. The same tasks on the MuJoCo engines,
which compile no physics, are tested in ``test_engines.py``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("brax")
pytest.importorskip("mujoco.mjx")

import jax
import jax.numpy as jnp

import mbd
from mbd.sim import MissingExtraError, brax_adapter, mjx_adapter, render
from mbd.tasks import get_task, robots

TINY = mbd.MBDConfig(num_samples=4, num_steps=2, temperature=0.1)
H = 3
ROBOTS = [t.name for t in robots.TASKS]


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    # MuJoCo writes its warnings (e.g. Brax's ant.xml uses a deprecated attribute) to
    # MUJOCO_LOG.TXT in the working directory: keep that out of the repository.
    monkeypatch.chdir(tmp_path)


@functools.cache
def built(name: str, backend: str):
    """A task's problem on a Brax backend, with its demonstration (cached per process)."""
    task = get_task(name)
    with _fast_compile():
        return task.make(horizon=H, demo=task.has_demo, seed=1, engine="brax", backend=backend)


@functools.cache
def solved(name: str, backend: str):
    """(problem, result) of a two-step solve of a task on a backend (cached per process)."""
    problem = built(name, backend)
    with _fast_compile():
        result = mbd.make_solver(problem, TINY).solve(jax.random.key(0))
    return problem, jax.tree_util.tree_map(np.asarray, result)


@contextlib.contextmanager
def _fast_compile():
    """XLA with most optimizations off: compiles about twice as fast; the runs are tiny."""
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", before)


def torso(problem, states, name="torso"):
    sys_ = problem.step.env.unwrapped.sys
    i = int(brax_adapter.link_index(sys_, [name])[0])
    return np.asarray(states.pipeline_state.x.pos)[:, i], i


def expected_rewards(name, problem, result) -> np.ndarray:
    """The task's per-step reward recomputed by hand from the rollout states."""
    st = result.states
    if name in ("halfcheetah", "ant"):
        return np.asarray(st.reward)
    if name == "pusht":
        q = np.asarray(st.pipeline_state.q)
        g = robots.pusht_goal(1)
        tee = q[:, 2:4]
        return 1.0 - (
            np.linalg.norm(g[:2] - tee, axis=1)
            + np.abs(g[2] - q[:, 4]) / np.pi
            + np.maximum(np.linalg.norm(q[:, :2] - tee, axis=1) - 0.2, 0.0)
        )
    p, i = torso(problem, st)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    if name in ("hopper", "walker2d"):
        target = 1.0 if name == "hopper" else 1.1
        return x - 0.5 * np.clip(np.abs(z - target), -1, 1)
    if name == "humanoidrun":
        return x - np.clip(np.abs(z - 1.3), -1, 1) - 0.1 * np.abs(y)
    if name == "humanoidstandup":
        return 1.5 - np.clip(np.abs(z - 1.3), -2, 1) - 0.1 * np.abs(x) - 0.1 * np.abs(y)
    if name == "humanoidjog":
        vx = np.asarray(st.pipeline_state.xd.vel)[:, i, 0]
        return 1.0 - np.abs(vx - 1.6) - np.abs(z - 1.3) - 0.1 * np.abs(y)
    raise AssertionError(name)


def _cases():
    # the paper's pipeline for every task; the two others once each (the adapter is one)
    other = [("hopper", "generalized"), ("pusht", "mjx")]
    pairs = [(t.name, t.backends[0]) for t in robots.TASKS] + other
    return [pytest.param(n, b, id=f"{n}-{b}") for n, b in pairs]


@pytest.mark.parametrize("name", ROBOTS)
def test_every_task_builds(name):
    task = get_task(name)
    with _fast_compile():
        problem = task.make(horizon=H, seed=0, engine="brax")
    assert problem.name == name and problem.horizon == H
    assert task.backends and task.render is not None
    assert task.config == robots.AUTHORS[name] and task.horizon == robots.HORIZONS[name]
    nu = {"hopper": 3, "walker2d": 6, "halfcheetah": 6, "ant": 8, "pusht": 2}.get(name, 17)
    assert problem.action_dim == nu
    box = 0.4 if name.startswith("humanoid") else 1.0
    np.testing.assert_allclose(problem.action_low, -box)
    np.testing.assert_allclose(problem.action_high, box)
    for leaf in jax.tree_util.tree_leaves(problem.init_state):
        assert np.all(np.isfinite(np.asarray(leaf, dtype=np.float64)))
    z0 = np.asarray(problem.init_state.pipeline_state.x.pos)[0, 2]
    if name == "humanoidstandup":
        assert z0 == pytest.approx(0.15, abs=0.01)  # lying down
    elif name.startswith("humanoid"):
        assert z0 == pytest.approx(1.4, abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "backend"), _cases())
def test_task_builds_steps_and_solves(name, backend):
    problem, result = solved(name, backend)
    nu = problem.action_dim
    assert problem.horizon == H
    assert result.solution.shape == (H, nu)
    assert result.history.reward_mean.shape == (TINY.num_updates,)
    assert np.all(result.solution >= problem.action_low - 1e-6)
    assert np.all(result.solution <= problem.action_high + 1e-6)
    for leaf in jax.tree_util.tree_leaves(result.states.pipeline_state):
        if np.issubdtype(np.asarray(leaf).dtype, np.floating):
            assert np.all(np.isfinite(leaf)), f"{name}/{backend}: NaN in the rollout"
    assert np.all(np.isfinite(result.rewards)) and np.isfinite(result.reward)
    np.testing.assert_allclose(result.rewards, expected_rewards(name, problem, result), atol=2e-4)
    np.testing.assert_allclose(result.reward, np.mean(result.rewards), rtol=1e-5, atol=1e-6)


def test_humanoid_model_changes():
    mujoco = pytest.importorskip("mujoco")
    m = mujoco.MjModel.from_xml_string(robots.humanoid_xml())
    assert m.opt.timestep == pytest.approx(0.006)
    for a in range(m.nu):
        joint = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, m.actuator_trnid[a, 0])
        want = 350.0 if ("hip" in joint or "knee" in joint) else 100.0
        assert m.actuator_gear[a, 0] == want, joint
    np.testing.assert_allclose(m.actuator_ctrlrange, np.tile([-0.4, 0.4], (m.nu, 1)))
    s = mujoco.MjModel.from_xml_string(robots.humanoid_xml(standup=True))
    assert s.qpos0[2] == pytest.approx(0.15)
    # lying on the back: the head (body frame +z) points along -x in the world
    w, x, y, z = s.qpos0[3:7]
    up_x = 2 * (x * z + w * y)
    assert up_x == pytest.approx(-1.0, abs=1e-6)


def test_pusht_goal_is_random_per_seed_and_far():
    goals = np.stack([robots.pusht_goal(s) for s in range(20)])
    assert len({tuple(np.round(g, 5)) for g in goals}) == 20
    assert np.all(np.abs(goals[:, 0] + 0.4) <= 0.2 + 1e-6)
    assert np.all(np.abs(goals[:, 1] - 0.4) <= 0.2 + 1e-6)
    assert np.all(np.linalg.norm(goals[:, :2], axis=1) >= 0.2)  # paper: >= 20 cm away
    assert np.all(goals[:, 2] >= np.deg2rad(135) - 1e-6)  # and >= 135 degrees turned


def test_mocap_reference_is_padded_with_the_last_frame():
    mocap = robots.load_mocap()
    ref = robots.mocap_reference(50)
    assert ref.shape == (50, 5, 3)
    np.testing.assert_array_equal(ref[0, 0], mocap["torso"][0])
    np.testing.assert_array_equal(ref[10, 4], mocap["right_shin"][10])
    for t in range(46, 50):
        np.testing.assert_array_equal(ref[t], ref[45])
    assert robots.mocap_reference(20).shape == (20, 5, 3)


def test_partial_state_demo_observes_the_named_bodies():
    problem = built("humanoidjog", "positional")
    demo = problem.demo
    assert demo is not None and np.asarray(demo.reference).shape == (H, 5, 3)
    sys_ = problem.step.env.unwrapped.sys
    names = list(sys_.link_names)
    x0 = problem.init_state
    states = jax.tree_util.tree_map(lambda a: jnp.stack([a] * H), x0)
    pos = np.asarray(states.pipeline_state.x.pos)
    obs = np.asarray(demo.observe(states, None))
    for k, body in enumerate(robots.JOG_BODIES):
        np.testing.assert_array_equal(obs[:, k], pos[:, names.index(body)])
    # moving an untracked body (the head side: right_upper_arm) leaves the likelihood alone;
    # moving a tracked one (left_shin) lowers it
    base = float(demo.log_likelihood(jnp.asarray(obs)))

    def moved(body):
        p = pos.copy()
        p[:, names.index(body)] += 0.3
        s2 = states.replace(
            pipeline_state=states.pipeline_state.replace(
                x=states.pipeline_state.x.replace(pos=jnp.asarray(p))
            )
        )
        return float(demo.log_likelihood(demo.observe(s2, None)))

    assert moved("right_upper_arm") == pytest.approx(base)
    assert moved("left_shin") < base - 1e-3


def test_wrong_length_demo_is_rejected():
    problem = built("humanoidjog", "positional")
    short = mbd.Demo(reference=robots.mocap_reference(H + 2), scale=0.5, reward=0.0)
    with pytest.raises(ValueError, match=r"demo reference has 5 time steps.*horizon is 3"):
        brax_adapter.make_brax_problem(
            problem.step.env, H, init_state=problem.init_state, demo=short
        )


def test_unknown_backend_errors():
    with pytest.raises(ValueError, match=r"supports backends generalized, mjx \(got 'positional'"):
        get_task("pusht").make(horizon=H, backend="positional")
    with pytest.raises(ValueError, match="unknown backend 'bullet'"):
        brax_adapter.check_backend("bullet")


def test_malformed_model_file(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><body><geom type='sphere'/></body></worldbody>")
    with pytest.raises(ValueError, match="cannot load the MJCF model"):
        mjx_adapter.load_model(bad)
    with pytest.raises(ValueError, match="cannot load the MJCF model"):
        brax_adapter.load_system(bad)
    with pytest.raises(ValueError, match="does not exist"):
        mjx_adapter.load_model(tmp_path / "missing.xml")
    with pytest.raises(ValueError, match="cannot load the MJCF model"):
        mjx_adapter.load_model("<mujoco><worldbody><geom type='nope'/></worldbody></mujoco>")


def test_missing_extra_names_the_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "brax.envs", None)  # import brax.envs now fails
    with pytest.raises(MissingExtraError, match=r"pip install 'mbd\[brax\]'"):
        get_task("hopper").make(horizon=H, engine="brax")
    from mbd.cli.main import main

    args = ["plan", "hopper", "--quiet", "--out", str(tmp_path / "o"), "--num-steps", "2"]
    rc = main([*args, "--engine", "brax"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("mbd plan: error: TASK: hopper:") and "mbd[brax]" in err[0]


def test_registering_does_not_import_brax():
    code = "import sys, mbd.tasks; print('brax' in sys.modules, 'mujoco' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(Path(mbd.__file__).parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_cli_backend_errors(capsys):
    from mbd.cli.main import main

    assert main(["plan", "hopper", "--backend", "bullet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "mbd plan: error: --backend: task 'hopper' supports positional, generalized, mjx "
        "(got 'bullet')"
    )
    assert main(["plan", "car2d", "--backend", "mjx"]) == 2
    assert "single built-in simulator" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# MJX adapter: a user's own MJCF
# --------------------------------------------------------------------------------------

PENDULUM = """
<mujoco model="pendulum">
  <option timestep="0.02"/>
  <worldbody>
    <body name="pole" pos="0 0 1">
      <joint name="hinge" type="hinge" axis="0 1 0" damping="0.05"/>
      <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.04" mass="1"/>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" ctrllimited="true" ctrlrange="-3 3"/></actuator>
</mujoco>
"""


def swing_up(d, u):
    return -jnp.cos(d.qpos[0])  # pole hanging down: -1; upright: +1


@functools.cache
def pendulum():
    problem = mjx_adapter.make_mjx_problem(PENDULUM, swing_up, horizon=25, n_frames=2)
    solver = mbd.make_solver(problem, mbd.MBDConfig(num_samples=64, num_steps=40))
    results = [jax.tree_util.tree_map(np.asarray, solver.solve(jax.random.key(s))) for s in (0, 1)]
    return problem, results


@pytest.mark.slow
def test_mjx_adapter_plans_a_user_pendulum():
    problem, results = pendulum()
    assert problem.name == "pendulum"
    np.testing.assert_array_equal(problem.action_low, [-3.0])
    np.testing.assert_array_equal(problem.action_high, [3.0])
    idle = float(jnp.mean(mbd.rollout(problem, jnp.zeros((25, 1))).rewards))
    assert idle == pytest.approx(-1.0, abs=1e-4)  # no torque: it hangs still
    for res in results:
        assert res.solution.shape == (25, 1)
        # the reward really is -cos(angle) of the replayed states
        np.testing.assert_allclose(res.rewards, -np.cos(res.states.qpos[:, 0]), atol=1e-5)
        print("pendulum reward", float(res.reward))
        assert res.reward > idle + 0.4  # swings well away from hanging
        assert res.history.reward_mean[-1] > res.history.reward_mean[0]


@pytest.mark.slow
def test_render_html_is_self_contained(tmp_path):
    problem, results = pendulum()
    path = tmp_path / "render.html"
    render.save_html(problem, results[0], path)
    text = path.read_text()
    assert not re.search(r"(src|href)=\"https?:", text) and "import " not in text
    data = render.problem_scene(problem, results[0])
    assert data["num_frames"] == 26 and data["num_bodies"] == 1
    assert len(data["pos"]) == 26 * 3 and len(data["geoms"]) == 1
    hop, res = solved("hopper", "positional")
    scene = render.problem_scene(hop, res)
    assert scene["num_frames"] == H + 1 and scene["floor"]
    np.testing.assert_allclose(
        np.asarray(scene["pos"]).reshape(H + 1, -1, 3)[1:],
        np.round(res.states.pipeline_state.x.pos, 4),
        atol=1e-4,
    )


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.mark.slow
def test_render_html_draws_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    hop, res = solved("hopper", "positional")
    page = tmp_path / "render.html"
    render.save_html(hop, res, page)
    profile = tmp_path / "profile"
    profile.mkdir()
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=3000", "--window-size=800,600", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    console = [ln for ln in out.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, "\n".join(console)
    m = re.search(r'data-painted="(\d+)"', out.stdout)
    assert m, out.stdout[-2000:] + out.stderr[-2000:]
    assert int(m.group(1)) >= 3  # background, floor tiles and the robot's colours
