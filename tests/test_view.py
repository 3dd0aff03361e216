"""The live view (issue 24): what it draws, how it steers the loop, and the page itself in
headless Chromium (skipped, in one line, where Chromium or Playwright is absent)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbd.mpc import MPCConfig, RealtimeLoop, SimPlant, make_controller
from mbd.mpc.loops import _jitted
from mbd.mpc.realtime import FakeClock
from mbd.solver import MBDConfig
from mbd.tasks import classic, get_task

mujoco = pytest.importorskip("mujoco")
from mbd.view.scene import scene_for  # noqa: E402 (needs mujoco)

TINY = MBDConfig(num_samples=8, num_steps=50)


def _cartpole_loop(clock=None, samples=8):
    task = get_task("cartpole")
    problem = task.make(horizon=10)
    ctrl = make_controller(
        problem, "mbd", MBDConfig(num_samples=samples, num_steps=50),
        MPCConfig(iterations=1, warmup_iterations=2),
    )  # fmt: skip
    return task, problem, ctrl, RealtimeLoop(ctrl, SimPlant(problem), clock=clock)


# --- the scene ------------------------------------------------------------------------


def test_cartpole_drawing_poses_by_hand():
    problem = classic.cartpole(horizon=4)
    scene = scene_for(problem, classic.drawing("cartpole"))
    pos, _ = scene.poses(jnp.array([0.5, 0.0, 0.0, 0.0]))  # cart at 0.5 m, pole up
    # bodies: cart (0.5, 0, 0.25), pole (pivot 0.08 above), tip 1 m above the pivot
    np.testing.assert_allclose(pos, [[0.5, 0, 0.25], [0.5, 0, 0.33], [0.5, 0, 1.33]], atol=1e-9)
    pos, _ = scene.poses(jnp.array([0.0, np.pi / 2, 0.0, 0.0]))  # pole lying along +x
    np.testing.assert_allclose(pos[2], [1.0, 0, 0.33], atol=1e-6)
    paths = scene.paths(jnp.array([[0.0, 0.0, 0, 0], [0.2, 0.0, 0, 0]]))  # (K=1, T=2, 3)
    np.testing.assert_allclose(paths, [[[0.0, 0, 1.33], [0.2, 0, 1.33]]], atol=1e-9)
    assert scene.floor and scene.num_bodies == 3
    assert sorted(g.body for g in scene.geoms) == [-1, 0, 1, 2]  # the rail does not move


def test_vector_push_adds_to_the_velocities():
    scene = scene_for(classic.pendulum(horizon=4), classic.drawing("pendulum"))
    x = scene.push(jnp.array([np.pi, 0.25], jnp.float32), np.array([0.5, 0.0, 0.0]))
    np.testing.assert_allclose(np.asarray(x), [np.pi, 0.75], rtol=1e-6)
    assert np.asarray(x).dtype == np.float32


def test_a_drawing_names_bodies_that_exist():
    bad = classic.drawing("cartpole")
    bad = type(bad)(bad.mjcf, bad.qpos, track="nose")
    with pytest.raises(ValueError, match="no body named 'nose'"):
        scene_for(classic.cartpole(horizon=4), bad)


def test_point_scene_draws_the_first_three_numbers():
    from mbd.problem import make_problem

    p = make_problem(jnp.zeros(5), lambda x, u: x + u[0], lambda x, u: -jnp.sum(x**2), 3, 1)
    scene = scene_for(p)
    assert scene.geoms == [] and not scene.can_push  # 5 numbers: no velocity half
    paths = scene.paths(jnp.arange(10.0).reshape(2, 5))
    np.testing.assert_array_equal(paths, [[[0, 1, 2], [5, 6, 7]]])


FREE_BOX = """
<mujoco><option timestep="0.01" gravity="0 0 0"/>
  <worldbody><body name="box" pos="0 0 1"><freejoint/><site name="s"/>
    <geom type="box" size="0.1 0.2 0.3" mass="2"/></body></worldbody>
  <actuator><motor site="s" gear="1 0 0 0 0 0"/></actuator>
</mujoco>
"""


def test_mujoco_push_changes_the_body_velocity_by_what_was_asked():
    from mbd.sim.engines import make_mujoco_problem

    p = make_mujoco_problem(
        FREE_BOX, horizon=2, reward=lambda b, u, a: 0.0 * u[0], bodies=("box",), engine="mujoco"
    )
    scene = scene_for(p)
    assert scene.can_push and len(scene.geoms) == 1
    x = scene.push(p.init_state, np.array([0.0, 0.5, 0.0]))
    view = p.step.physics.view(x)
    # a free body: its centre of mass takes the velocity change whole (qvel[:3] linear)
    np.testing.assert_allclose(np.asarray(view.qvel)[:3], [0.0, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(view.qvel)[3:], 0.0, atol=1e-6)
    x1, _ = p.step(x, jnp.zeros(1))  # and it moves that way
    assert float(p.step.physics.view(x1).body_pos[0, 1]) == pytest.approx(0.5 * 0.01, rel=1e-3)


# --- the loop's steering hooks -----------------------------------------------------------


def test_a_new_param_reaches_planner_and_plant_without_compiling():
    _, problem, ctrl, loop = _cartpole_loop(clock=FakeClock(0.01))
    seen = []

    def on_replan(r, plan):
        if len(seen) == 3:
            loop.set_params({**problem.params, "target": jnp.float32(1.0)}, plant=True)
        seen.append(float(loop.params["target"]))

    loop.on_replan = on_replan
    loop.run(jax.random.key(0), 1.0)
    assert seen[:4] == [0.0, 0.0, 0.0, 1.0] and seen[-1] == 1.0
    assert float(loop.plant.params["target"]) == 1.0
    assert _jitted(ctrl.replan)._cache_size() == 1  # one program for every target


def test_pause_freezes_the_world_and_the_clock():
    *_, loop = _cartpole_loop()
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", loop.run(jax.random.key(0), 3.0)))
    thread.start()
    while loop.stats()["sim_seconds"] < 0.3:
        time.sleep(0.01)
    loop.pause()
    time.sleep(0.1)  # a tick under way ends
    frozen = loop.stats()["sim_seconds"]
    time.sleep(1.0)
    assert loop.paused and loop.stats()["sim_seconds"] == frozen
    loop.resume()
    thread.join(timeout=60)
    res = out["r"]
    assert res.sim_seconds == pytest.approx(3.0)
    assert loop.paused_seconds() >= 1.0
    # the pause is not wall time of the plant: still real time
    assert res.summary()["realtime_factor"] == pytest.approx(1.0, abs=0.1)


def test_reset_puts_the_plant_back_at_its_start():
    _, problem, _, loop = _cartpole_loop(clock=FakeClock(0.01))
    after = []

    def on_replan(r, plan):
        if r.state_time > 0.5 and not after:
            moved = np.asarray(loop.plant.last)
            loop.reset()
            after.append((moved, np.asarray(loop.plant.last)))

    loop.on_replan = on_replan
    loop.run(jax.random.key(0), 1.0)
    moved, reset = after[0]
    assert not np.array_equal(moved, problem.init_state)
    np.testing.assert_array_equal(reset, problem.init_state)  # the next tick starts there
    with pytest.raises(TypeError, match="SimPlant"):
        RealtimeLoop(loop.budgets, _callback_plant()).reset()


def _callback_plant():
    from mbd.mpc import CallbackPlant

    return CallbackPlant(lambda: jnp.zeros(4), lambda u: None, dt=0.05)


def test_a_push_during_a_tick_is_not_lost():
    problem = classic.pendulum(horizon=4)
    entered, release = threading.Event(), threading.Event()
    step = jax.jit(lambda x, u: problem.call_step(x, u))

    def slow(x, u):  # the tick is still computing when the push comes
        entered.set()
        release.wait(5)
        return step(x, u)

    plant = SimPlant(problem)
    plant._step = lambda x, u, p: slow(x, u)  # unjitted: it runs at every tick
    thread = threading.Thread(target=lambda: plant.tick(0.0, np.zeros(1)))
    thread.start()
    assert entered.wait(5)
    plant.perturb(lambda x: x.at[1].add(5.0))
    release.set()
    thread.join(5)
    expected, _ = step(problem.init_state, jnp.zeros(1))
    np.testing.assert_allclose(np.asarray(plant.last), np.asarray(expected) + np.array([0, 5.0]))
    x, _ = plant.state()  # the published state never saw it
    np.testing.assert_array_equal(np.asarray(x), np.asarray(problem.init_state))


def test_pause_needs_a_simulation_on_a_wall_clock():
    _, _, ctrl, fake = _cartpole_loop(clock=FakeClock(0.0))
    with pytest.raises(TypeError, match="pause needs a SimPlant"):
        fake.pause()
    with pytest.raises(TypeError, match="pause needs a SimPlant"):
        RealtimeLoop(ctrl, _callback_plant()).pause()


def test_simplant_with_a_step_of_its_own_takes_no_params():
    problem = classic.pendulum(horizon=4)
    with pytest.raises(ValueError, match="not both"):
        SimPlant(problem, params=problem.params, step=lambda x, u: problem.call_step(x, u))
    plant = SimPlant(problem, step=lambda x, u: problem.call_step(x, u))
    with pytest.raises(ValueError, match="a step of its own"):
        plant.set_params(problem.params)


# --- the view, without a browser --------------------------------------------------------


def test_slider_values_keep_their_kind():
    from mbd.view.live import _like

    assert _like(2, 1.0) == 2.0 and isinstance(_like(2, 1.0), float)
    assert _like(0.5, np.float32(1)).dtype == np.float32
    weak = _like(2.0, jnp.asarray(1.0))
    assert weak.weak_type and float(weak) == 2.0
    strong = _like(2.0, jnp.float32(1.0))
    assert not strong.weak_type and strong.dtype == jnp.float32
    with pytest.raises(TypeError, match="steers a number"):
        _like(1.0, "fast")


def test_a_taken_port_is_refused():
    pytest.importorskip("viser")
    import socket

    from mbd.view import LiveView

    _, _, _, loop = _cartpole_loop(clock=FakeClock(0.0))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with pytest.raises(OSError, match=f"port {taken} is in use"):
            LiveView(loop, port=taken)
    with pytest.raises(ValueError, match=r"\[1, 65535\]"):
        LiveView(loop, port=70000)


def test_a_mismatched_plant_keeps_its_mass_when_the_target_moves():
    pytest.importorskip("viser")
    from mbd.view import LiveView

    _, problem, ctrl, _ = _cartpole_loop(clock=FakeClock(0.0))
    heavy = {**problem.params, "mass": problem.params["mass"] * 1.3}
    loop = RealtimeLoop(ctrl, SimPlant(problem, params=heavy), clock=FakeClock(0.0))
    plant = lambda p: {**p, "mass": p["mass"] * 1.3}  # noqa: E731
    view = LiveView(loop, params={"target": (-1.5, 1.5)}, plant_params=plant)
    try:
        view._set_param("target", 1.0)
        assert float(loop.params["target"]) == 1.0 and float(loop.plant.params["target"]) == 1.0
        assert float(loop.plant.params["mass"]) == pytest.approx(1.3 * float(loop.params["mass"]))
    finally:
        view.close()


# --- the view, without a browser (continued) ----------------------------------------------


def test_view_refuses_params_it_cannot_steer():
    pytest.importorskip("viser")
    from mbd.view import LiveView

    _, _, _, loop = _cartpole_loop(clock=FakeClock(0.0))
    with pytest.raises(ValueError, match=r"'speed'.*mass, target"):
        LiveView(loop, params={"speed": (0.0, 1.0)})
    with pytest.raises(ValueError, match="low < high"):
        LiveView(loop, params={"target": (1.0, -1.0)})


def test_view_sets_params_with_their_dtype_and_pushes_the_plant():
    pytest.importorskip("viser")
    from mbd.view import LiveView

    task, problem, _, loop = _cartpole_loop(clock=FakeClock(0.0))
    view = LiveView(loop, scene_for(problem, task.drawing()), params={"target": (-1.5, 1.5)})
    try:
        view._set_param("target", 0.7)
        assert loop.params["target"].dtype == jnp.float32
        assert float(loop.params["target"]) == pytest.approx(0.7)
        assert float(loop.plant.params["target"]) == pytest.approx(0.7)
        view.push()
        x, _ = loop.plant.state()
        assert float(np.asarray(x)[2]) == pytest.approx(0.5)  # the cart's velocity
    finally:
        view.close()


# --- in a real browser ---------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _browser_or_skip():
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("viser", reason="viser is not installed (pip install 'mbd[view]')")
    pytest.importorskip("playwright", reason="playwright is not installed (pip install playwright)")
    return browser


@pytest.mark.slow
def test_the_page_shows_and_steers_a_running_cartpole():
    browser = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    from mbd.view import LiveView

    task, problem, ctrl, loop = _cartpole_loop(samples=16)
    view = LiveView(loop, scene_for(problem, task.drawing()), params=task.param_ranges[:1])
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", loop.run(jax.random.key(0), 60.0)))
    with view:
        thread.start()
        try:
            with sync_playwright() as pw:
                chrome = pw.chromium.launch(
                    executable_path=browser,
                    args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
                )
                page = chrome.new_page(viewport={"width": 900, "height": 600})
                page.goto(view.url)
                page.get_by_role("button", name="Push").wait_for(timeout=60_000)
                while loop.stats()["sim_seconds"] < 0.5:  # the warm-up is done: it moves
                    time.sleep(0.05)
                page.wait_for_timeout(1000)
                first = page.screenshot()
                page.wait_for_timeout(1000)
                assert page.screenshot() != first  # the cart-pole moved
                # the target slider's number field: type a new command
                field = page.locator("input[inputmode=decimal]").first
                field.fill("1.2")
                field.press("Enter")
                deadline = time.time() + 10
                while float(loop.params["target"]) != pytest.approx(1.2) and time.time() < deadline:
                    time.sleep(0.05)
                assert float(loop.params["target"]) == pytest.approx(1.2)  # the planner's
                page.get_by_role("button", name="Push").click()
                deadline = time.time() + 10
                while view.pushes < 1 and time.time() < deadline:
                    time.sleep(0.05)
                assert view.pushes == 1
                page.get_by_role("button", name="Pause").click()
                deadline = time.time() + 10
                while not loop.paused and time.time() < deadline:
                    time.sleep(0.05)
                assert loop.paused
                chrome.close()
        finally:
            loop.resume()
            loop.stop()
            thread.join(timeout=60)
    assert _jitted(ctrl.replan)._cache_size() == 1  # the new target compiled nothing


@pytest.mark.slow
def test_ctrl_c_stops_the_command_and_closes_its_server(tmp_path):
    pytest.importorskip("viser", reason="viser is not installed (pip install 'mbd[view]')")
    env = {**os.environ, "MBD_CACHE_DIR": "off"}
    cmd = [sys.executable, "-m", "mbd.cli.main", "mpc", "cartpole", "--realtime", "--view",
           "--num-samples", "16", "--warmup-iterations", "2", "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stderr.readline()
    m = re.fullmatch(r"view: (http://127\.0\.0\.1:\d+/)\n", line)
    assert m, line
    url = m.group(1)
    deadline = time.time() + 60
    while True:
        try:
            assert urllib.request.urlopen(url, timeout=5).status == 200
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.time() < deadline
            time.sleep(0.2)
    time.sleep(3.0)  # into the loop
    proc.send_signal(signal.SIGINT)
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # a --view run of no set length ends by Ctrl-C
    assert stdout.startswith("stopped after"), stdout
    assert (tmp_path / "summary.json").exists()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, timeout=5)


def test_view_options_need_realtime(capsys):
    from mbd.cli.main import main

    assert main(["mpc", "cartpole", "--view"]) == 2
    assert "--view: applies to --realtime runs only" in capsys.readouterr().err
    assert main(["mpc", "cartpole", "--realtime", "--port", "8080"]) == 2
    assert "--port: is the --view page's port" in capsys.readouterr().err
    assert main(["mpc", "cartpole", "--realtime", "--view", "--port", "70000"]) == 2
    assert "[1, 65535]" in capsys.readouterr().err


def test_view_and_loop_settings_are_checked():
    pytest.importorskip("viser")
    from mbd.view import LiveView

    _, _, _, loop = _cartpole_loop(clock=FakeClock(0.0))
    for kw, what in (
        ({"fps": 0}, "fps must be a finite number > 0"),
        ({"samples": -1}, "samples must be an integer >= 0"),
        ({"samples": 2.5}, "samples must be an integer"),
        ({"push_speed": float("nan")}, "push_speed must be a finite number >= 0"),
    ):
        with pytest.raises(ValueError, match=what):
            LiveView(loop, **kw)
    for keep in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="keep must be None or an integer >= 1"):
            loop.run(jax.random.key(0), 0.1, keep=keep)
