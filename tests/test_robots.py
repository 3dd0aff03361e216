"""Robot tasks on Brax (the paper's definitions) and the MJX adapter, renders, CLI errors.

Needs the ``brax`` extra (skipped without it). Every task is built on its paper pipeline
(positional; push-T generalized), push-T on the mjx pipeline too. A rollout's per-step
rewards are checked against the task's formula recomputed from the states: by default
for hopper (the replay of a solve on Brax, end to end), humanoidjog and push-T; with
``MBD_BRAX_ALL=1`` for walker2d, humanoidrun, humanoidstandup and push-T on mjx too
(halfcheetah and ant keep Brax's own reward). Every task's reward is also checked by
hand on the native engine, in ``test_engines.py``. The sizes are tiny (horizon 3; 4
samples and one diffusion update for the solve). Compiling a Brax physics step is what
costs here (about 4 s of CPU for a reset, 11 s for a rollout and 29 s for a solve, with
XLA's optimizations off as in the whole suite; see ``conftest.py``), so each is compiled
once per process.
"""

from __future__ import annotations

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


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    # MuJoCo writes its warnings (e.g. Brax's ant.xml uses a deprecated attribute) to
    # MUJOCO_LOG.TXT in the working directory: keep that out of the repository.
    monkeypatch.chdir(tmp_path)


@functools.cache
def built(name: str, backend: str):
    """A task's problem on a Brax backend, with its demonstration (cached per process)."""
    task = get_task(name)
    return task.make(horizon=H, demo=task.has_demo, seed=1, engine="brax", backend=backend)


def random_rollout(problem) -> mbd.Rollout:
    """The problem's rollout of fixed random controls (key 0), as numpy arrays."""
    z = jax.random.uniform(jax.random.key(0), problem.shape, minval=-1.0, maxval=1.0)
    ro = jax.jit(lambda z: mbd.rollout(problem, problem.controls(z)))(z)
    return jax.tree_util.tree_map(np.asarray, ro)


@functools.cache
def rolled(name: str, backend: str):
    """(problem, rollout) of fixed random controls on a task (cached per process)."""
    problem = built(name, backend)
    return problem, random_rollout(problem)


@functools.cache
def solved(name: str, backend: str):
    """(problem, result) of a two-step solve of a task on a backend (cached per process)."""
    problem = built(name, backend)
    result = mbd.make_solver(problem, TINY).solve(jax.random.key(0))
    return problem, jax.tree_util.tree_map(np.asarray, result)


BRAX_ALL = os.environ.get("MBD_BRAX_ALL") == "1"
"""Roll out every task on Brax (``MBD_BRAX_ALL=1``); by default only ``ROLLED``."""
ROLLED = {("hopper", "positional"), ("humanoidjog", "positional"), ("pusht", "generalized")}
"""The default's rollouts: a hopper solve, the humanoid with its demonstration, and the
generalized pipeline."""
SOLVED = ("hopper", "positional")
"""The task solved on Brax end to end; its replay stands in for the plain rollout."""
STOCK = ("halfcheetah", "ant")
"""Brax's own envs and rewards: built and checked, not rolled out (hopper checks the
wrapper's step)."""


def torso(problem, states, name="torso"):
    sys_ = problem.step.env.unwrapped.sys
    i = int(brax_adapter.link_index(sys_, [name])[0])
    return np.asarray(states.pipeline_state.x.pos)[:, i], i


def expected_rewards(name, problem, result) -> np.ndarray:
    """The task's per-step reward recomputed by hand from the rollout states."""
    st = result.states
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
    # the paper's pipeline for every task (pusht: generalized), and mjx once
    pairs = [(t.name, t.backends[0]) for t in robots.TASKS] + [("pusht", "mjx")]
    return [pytest.param(n, b, id=f"{n}-{b}") for n, b in pairs]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "backend"), _cases())
def test_task_builds_and_steps_with_the_reward_by_hand(name, backend):
    task = get_task(name)
    problem = built(name, backend)
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
    if name in STOCK:
        return
    if (name, backend) not in ROLLED and not BRAX_ALL:
        pytest.skip("built; its Brax rollout runs with MBD_BRAX_ALL=1 (about 25 s of CPU)")
    # A rollout (hopper: the replay of a two-step solve's plan): finite states, and the
    # task's reward recomputed by hand from them.
    problem, ro = solved(name, backend) if (name, backend) == SOLVED else rolled(name, backend)
    for leaf in jax.tree_util.tree_leaves(ro.states.pipeline_state):
        if np.issubdtype(np.asarray(leaf).dtype, np.floating):
            assert np.all(np.isfinite(leaf)), f"{name}/{backend}: NaN in the rollout"
    assert ro.rewards.shape == (H,) and np.all(np.isfinite(ro.rewards))
    np.testing.assert_allclose(ro.rewards, expected_rewards(name, problem, ro), atol=2e-4)
    # the states moved: the controls act
    q0 = np.asarray(problem.init_state.pipeline_state.q)
    assert not np.allclose(np.asarray(ro.states.pipeline_state.q)[-1], q0)
    if (name, backend) == SOLVED:  # the solve's own fields, and a render of its states
        assert ro.solution.shape == (H, nu)
        assert ro.history.reward_mean.shape == (TINY.num_updates,)
        assert np.all(ro.solution >= problem.action_low - 1e-6)
        assert np.all(ro.solution <= problem.action_high + 1e-6)
        np.testing.assert_allclose(ro.reward, np.mean(ro.rewards), rtol=1e-5, atol=1e-6)
        scene = render.problem_scene(problem, ro)
        assert scene["num_frames"] == H + 1 and scene["floor"]
        np.testing.assert_allclose(
            np.asarray(scene["pos"]).reshape(H + 1, -1, 3)[1:],
            np.round(ro.states.pipeline_state.x.pos, 4),
            atol=1e-4,
        )


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
def pendulum_problem():
    return mjx_adapter.make_mjx_problem(PENDULUM, swing_up, horizon=25, n_frames=2)


@functools.cache
def pendulum():
    problem = pendulum_problem()
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
    problem = pendulum_problem()
    ro = jax.jit(lambda u: mbd.rollout(problem, u))(jnp.full((25, 1), 3.0))
    path = tmp_path / "render.html"
    render.save_html(problem, ro, path, title="pendulum")
    text = path.read_text()
    assert not re.search(r"(src|href)=\"https?:", text) and "import " not in text
    data = render.problem_scene(problem, ro)
    assert data["num_frames"] == 26 and data["num_bodies"] == 1
    assert len(data["pos"]) == 26 * 3 and len(data["geoms"]) == 1


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
    # hopper on the native engine: a floor and a robot, and no physics to compile
    hop = get_task("hopper").make(horizon=H, seed=0, engine="mujoco")
    res = random_rollout(hop)
    page = tmp_path / "render.html"
    render.save_html(hop, res, page, title="hopper")
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
