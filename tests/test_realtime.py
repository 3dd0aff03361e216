"""The asynchronous real-time loop (mbd.mpc.realtime) and the deadline (mbd.mpc.deadline).

Everything timed runs on a FakeClock: a replan costs what the clock says, the plant ticks
that fall inside it use the plan before it, and the run is deterministic. Two tests run
on the wall clock and assert only what does not depend on the machine's speed.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.cli.main import main
from mbd.mpc import (
    CallbackPlant,
    FakeClock,
    MPCConfig,
    PlantError,
    RealtimeLoop,
    SimPlant,
    fit_to_rate,
    make_controller,
)
from mbd.mpc.deadline import Trial
from mbd.mpc.realtime import Plan
from mbd.tasks import classic

CFG = mbd.MBDConfig(num_samples=64, num_steps=50, temperature=0.1)
MPC = MPCConfig(iterations=2, warmup_iterations=20)


@pytest.fixture(scope="module")
def pendulum():
    problem = classic.pendulum(horizon=20)
    return problem, make_controller(problem, "mbd", CFG, MPC)


def test_the_plan_is_read_at_the_time_now_with_a_zero_order_hold():
    plan = Plan(t0=0.1, controls=np.array([[1.0], [2.0], [3.0]], np.float32), report=None)
    dt = 0.05
    assert plan.at(0.1, dt) == (1.0, True)
    assert plan.at(0.149, dt) == (1.0, True)  # row 0 holds for [t0, t0 + dt)
    assert plan.at(0.15, dt) == (2.0, True)
    assert plan.at(0.2, dt) == (3.0, True)
    assert plan.at(0.25, dt) == (3.0, False)  # past its end: the last row, held
    # before its state (a plant's clock ahead of the planner's): the first row, not past
    # the end
    assert plan.at(0.05, dt) == (1.0, True)


def test_replan_shifts_the_last_plan_by_the_steps_that_passed(pendulum):
    problem, ctrl = pendulum
    key = jax.random.key(3)
    cs = jax.jit(ctrl.init)(key)
    x = problem.init_state
    # elapsed 1 is the synchronous step: same solve, same first control, same next plan
    u, cs_step, _ = jax.jit(ctrl.step)(key, cs, x)
    cs1, rep = jax.jit(ctrl.replan)(key, cs, x, jnp.int32(0))
    np.testing.assert_array_equal(rep.controls[0], u)
    from mbd.splines import shift_matrix

    shift = jnp.asarray(shift_matrix(problem.horizon, None))
    np.testing.assert_array_equal(shift @ cs1.plan, cs_step.plan)
    assert rep.controls.shape == (20, 1) and rep.states.shape == (20, 2)
    # elapsed k: the warm start is the plan moved k rows earlier, the last row repeated;
    # a planner with no update budget left would return it, so compare the warm starts
    plan = jnp.arange(20.0).reshape(20, 1) / 20
    k = 3
    expected = jnp.concatenate([plan[k:], jnp.repeat(plan[-1:], k, axis=0)])
    shifted = jnp.linalg.matrix_power(shift, k) @ plan
    np.testing.assert_allclose(shifted, expected, atol=1e-7)
    cs2, _ = jax.jit(ctrl.replan)(key, cs1, x, jnp.int32(k))
    assert int(cs2.t) == int(cs1.t) + k


def run_fake(ctrl, problem, cost, duration=6.0, **kwargs):
    loop = RealtimeLoop(ctrl, SimPlant(problem), clock=FakeClock(cost), **kwargs)
    return loop.run(jax.random.key(0), duration)


def test_fake_clock_loop_is_deterministic_and_swings_the_pendulum_up(pendulum):
    problem, ctrl = pendulum
    a = run_fake(ctrl, problem, 0.03)
    b = run_fake(ctrl, problem, 0.03)
    np.testing.assert_array_equal(a.controls, b.controls)
    np.testing.assert_array_equal(a.states, b.states)
    s = a.summary()
    assert s["ticks"] == 120 and s["sim_seconds"] == pytest.approx(6.0)
    assert s["realtime_factor"] == pytest.approx(1.0)
    # back to back, 0.03 s each, until the replan during which the last tick (5.95 s) ran
    assert s["replans"] == math.floor(5.95 / 0.03) + 1
    assert s["latency_ms"]["median"] == pytest.approx(30.0)
    assert s["missed_deadlines"] == 0 and s["starved_ticks"] == 0
    # it swings up and holds: upright for the last two seconds
    assert np.all(np.cos(a.states[-40:, 0]) > 0.95)


def test_a_slow_planner_is_worse_control_never_a_paused_world(pendulum):
    problem, ctrl = pendulum
    res_plans = []
    res = run_fake(ctrl, problem, 0.12, on_replan=lambda r, plan: res_plans.append(plan))
    # each replan takes 2.4 control periods
    s = res.summary()
    assert s["ticks"] == 120  # the plant ran its 6 s all the same
    assert s["missed_deadlines"] == s["replans"]  # every replan past the 50 ms deadline
    assert s["replans"] == math.floor(5.95 / 0.12) + 1
    # each replan shifted the last plan by the control steps that passed: 2 or 3
    steps = [r.elapsed_steps for r in res.replans[1:]]
    assert set(steps) <= {2, 3}
    assert sum(r.elapsed_steps for r in res.replans) * 0.05 == pytest.approx(
        res.replans[-1].state_time
    )
    assert all(r.ready - r.read == pytest.approx(0.12) for r in res.replans)
    # every tick applied the newest plan installed before it, read at the tick's time
    for t, u in zip(res.times, res.controls, strict=True):
        done = [r for r in res.replans if r.ready <= t + 1e-9]
        if done:
            plan = res_plans[len(done) - 1]
            np.testing.assert_array_equal(u, plan.at(t, 0.05)[0])
    # and, slow as it is, it still swings the pendulum up (near upright)
    assert np.max(np.cos(res.states[:, 0])) > 0.95


def test_lookahead_plans_from_where_the_plant_will_be_when_the_plan_is_ready(pendulum):
    problem, ctrl = pendulum
    dt, plans, seen = 0.05, [], []
    loop = RealtimeLoop(
        ctrl, SimPlant(problem), clock=FakeClock(0.12), lookahead=True,
        on_replan=lambda r, plan: plans.append(plan),
    )  # fmt: skip
    predict = loop._predict

    def spy(x, held, params):
        out = predict(x, held, params)
        seen.append((np.asarray(x), np.asarray(held), np.asarray(out)))
        return out

    loop._predict = spy
    res = loop.run(jax.random.key(0), 3.0)
    seen = seen[1:]  # the first call compiled it, before the plant started
    # the first replan has no latency measured yet: it plans from the state read
    assert len(seen) == len(res.replans) - 1
    for i, (x, held, out) in enumerate(seen, start=1):
        r, plan, prev = res.replans[i], plans[i], plans[i - 1]
        # a replan of 0.12 s read up to one tick after the state's time: 3 or 4 ticks
        k = len(held)
        assert k in (3, 4)
        # the controls the plant applies meanwhile are the last plan's, and the new
        # plan keeps them for those ticks
        expected = [prev.at(r.state_time + j * dt, dt)[0] for j in range(k)]
        np.testing.assert_array_equal(held, expected)
        np.testing.assert_array_equal(plan.controls[:k], held)
        assert plan.t0 == r.state_time and len(plan.controls) == k + problem.horizon
        # the state planned from: the model stepped through them, by hand
        xk = jnp.asarray(x)
        for u in held:
            xk, _ = problem.call_step(xk, jnp.asarray(u))
        np.testing.assert_allclose(out, xk, rtol=1e-6, atol=1e-6)
    # each warm start moves on to the time of the state planned from: read + held ticks
    held = [[], *(s[1] for s in seen)]
    t_s = [r.state_time + dt * len(h) for r, h in zip(res.replans, held, strict=True)]
    steps = [r.elapsed_steps for r in res.replans[1:]]
    assert steps == [round((b - a) / dt) for a, b in itertools.pairwise(t_s)]
    assert res.summary()["ticks"] == 60


def test_the_deadline_chooser_takes_the_largest_budget_that_fits():
    made = []

    def make(n, k):
        made.append((n, k))
        return (n, k)

    def cost(c):  # 0.1 ms per sample and update, plus 2 ms
        n, k = c
        return 2e-3 + 1e-4 * n * k

    # 50 Hz, margin 0.7: 14 ms -> n k <= 120: 32 samples x 2 updates (64 x 2 = 128 misses)
    fit = fit_to_rate(make, 50.0, iterations=2, seconds=cost)
    assert fit.fits and fit.chosen == (32, 2)
    assert fit.ladder == [(8, 2), (16, 2), (32, 2)]
    assert fit.trials[-1] == Trial(64, 2, pytest.approx(2e-3 + 1e-4 * 128))
    # 200 Hz, margin 0.8 (4 ms): 8 x 2 (3.6 ms) fits, 16 x 2 (5.2 ms) does not
    assert fit_to_rate(make, 200.0, iterations=2, margin=0.8, seconds=cost).chosen == (8, 2)
    # 250 Hz (3.2 ms): 8 x 2 misses, so one update per replan: 8 x 1 (2.8 ms)
    fit = fit_to_rate(make, 250.0, iterations=2, margin=0.8, seconds=cost)
    assert fit.fits and fit.chosen == (8, 1)
    assert [t[:2] for t in fit.trials] == [(8, 2), (8, 1), (16, 1)]
    # none fits: the smallest tried, flagged
    fit = fit_to_rate(make, 1000.0, iterations=2, seconds=cost)
    assert not fit.fits and fit.chosen == (8, 1)
    with pytest.raises(ValueError, match="rate must be finite and > 0"):
        fit_to_rate(make, 0.0, seconds=cost)
    with pytest.raises(ValueError, match="margin must be in"):
        fit_to_rate(make, 10.0, margin=1.5, seconds=cost)


def test_the_loop_steps_down_when_replans_miss_and_records_it(pendulum):
    problem, _ = pendulum
    small = make_controller(problem, "mbd", mbd.MBDConfig(num_samples=16, temperature=0.1), MPC)
    big = make_controller(problem, "mbd", mbd.MBDConfig(num_samples=64, temperature=0.1), MPC)
    clock = FakeClock(lambda n, k: 0.08 if n == 64 else 0.02)  # 64 misses the 50 ms rate

    loop = RealtimeLoop([small, big], SimPlant(problem), rate=20.0, clock=clock, recheck=4)
    res = loop.run(jax.random.key(0), 3.0)
    sizes = [r.num_samples for r in res.replans]
    assert sizes[:4] == [64] * 4 and sizes[4] == 16  # one window of misses, then down
    assert res.budgets[0][1:] == (64, 2, "start")
    assert res.budgets[1][1] == 16 and "p90 latency 80.0 ms" in res.budgets[1][3]
    # with a rate, replans start on its period: 20 per second
    assert res.summary()["replan_hz"] == pytest.approx(20.0)


def test_bad_loop_arguments_fail_in_one_line(pendulum):
    problem, ctrl = pendulum
    with pytest.raises(TypeError, match="lookahead must be True or False \\(got 'yes'\\)"):
        RealtimeLoop(ctrl, SimPlant(problem), lookahead="yes")
    with pytest.raises(ValueError, match="rate must be finite and > 0 Hz"):
        RealtimeLoop(ctrl, SimPlant(problem), rate=0.0)
    with pytest.raises(TypeError, match="give a Controller"):
        RealtimeLoop([], SimPlant(problem))


def test_rare_misses_over_one_percent_step_down_for_the_rest_of_the_run(pendulum):
    problem, _ = pendulum
    small = make_controller(problem, "mbd", mbd.MBDConfig(num_samples=16, temperature=0.1), MPC)
    big = make_controller(problem, "mbd", mbd.MBDConfig(num_samples=64, temperature=0.1), MPC)
    calls = {"big": 0}

    def cost(n, k):  # 64 samples: 20 ms, but every 15th replan 80 ms (past the 50 ms rate)
        if n == 16:
            return 0.01
        calls["big"] += 1
        return 0.08 if calls["big"] % 15 == 0 else 0.02

    loop = RealtimeLoop([small, big], SimPlant(problem), rate=20.0, clock=FakeClock(cost))
    res = loop.run(jax.random.key(0), 4.0)
    sizes = [r.num_samples for r in res.replans]
    lat = [r.ready - r.read for r in res.replans]
    # no window of 10 has its 90th percentile past the deadline; the second miss (2 of
    # 30, over 1 %) steps down, and 16 samples' 10 ms never earns the step back up
    first_small = sizes.index(16)
    assert sizes[:first_small] == [64] * first_small
    assert sum(x > 0.05 for x in lat[:first_small]) == 2 and lat[first_small - 1] > 0.05
    assert set(sizes[first_small:]) == {16} and len(sizes) - first_small > 20
    assert [b[1] for b in res.budgets] == [64, 16]
    assert res.budgets[1][3] == "2 of its last replans missed"


def test_a_plant_that_raises_stops_the_loop_with_one_line(pendulum):
    problem, ctrl = pendulum

    class Broken(SimPlant):
        def tick(self, t, u):
            if t >= 0.2:
                raise ValueError("motor\nfault")
            return super().tick(t, u)

    loop = RealtimeLoop(ctrl, Broken(problem), clock=FakeClock(0.01))
    with pytest.raises(PlantError) as e:
        loop.run(jax.random.key(0), 2.0)
    assert str(e.value) == "the plant's step raised at t = 0.200 s: ValueError: motor fault"


def test_a_callback_robot_is_read_and_commanded_and_its_errors_are_named(pendulum):
    problem, ctrl = pendulum
    clock = FakeClock(0.02)
    robot = {"x": problem.init_state, "sent": []}

    def send(u):
        robot["sent"].append(float(u[0]))
        robot["x"], _ = problem.call_step(robot["x"], jnp.asarray(u))

    plant = CallbackPlant(lambda: robot["x"], send, dt=0.05, clock=clock)
    res = RealtimeLoop(ctrl, plant, clock=clock).run(jax.random.key(0), 2.0)
    assert len(robot["sent"]) == 40 == len(res.times)
    np.testing.assert_allclose(res.controls[:, 0], robot["sent"])
    assert res.states is None and np.all(np.isnan(res.rewards))

    def bad_send(u):
        raise ConnectionError("robot unreachable")

    plant = CallbackPlant(lambda: robot["x"], bad_send, dt=0.05, clock=clock)
    with pytest.raises(PlantError, match=r"^the plant's send_command raised at t = 0\.000 s: Co"):
        RealtimeLoop(ctrl, plant, clock=clock).run(jax.random.key(0), 1.0)

    def bad_read():
        raise OSError("no state")

    plant = CallbackPlant(bad_read, send, dt=0.05, clock=clock)
    with pytest.raises(PlantError, match=r"^the plant's read_state raised: OSError: no state$"):
        RealtimeLoop(ctrl, plant, clock=clock).run(jax.random.key(0), 1.0)


def test_ctrl_c_stops_planner_and_plant_and_keeps_what_ran(pendulum):
    problem, ctrl = pendulum
    seen = []

    def on_replan(r, plan):
        seen.append(r)
        if len(seen) == 5:
            raise KeyboardInterrupt

    loop = RealtimeLoop(ctrl, SimPlant(problem), on_replan=on_replan)  # the wall clock
    res = loop.run(jax.random.key(0), 30.0)
    assert res.interrupted and len(res.replans) == 5
    assert len(res.times) == len(res.controls) == len(res.rewards) == len(res.states)
    assert res.sim_seconds < 30.0
    assert all(t.name != "mbd-plant" for t in __import__("threading").enumerate())


def test_wall_clock_loop_runs_the_plant_in_its_own_thread(pendulum):
    problem, ctrl = pendulum
    res = RealtimeLoop(ctrl, SimPlant(problem)).run(jax.random.key(0), 0.5)
    s = res.summary()
    assert s["ticks"] == 10 and len(res.replans) >= 1
    assert s["wall_seconds"] >= 0.5 - 1e-3  # the plant kept its pace, never ahead of it


def test_native_mujoco_plant_runs_under_the_loop():
    from mbd.sim.engines import make_mujoco_problem

    xml = """
    <mujoco><option timestep="0.02"/><worldbody><body name="pole" pos="0 0 1">
      <joint name="hinge" type="hinge" axis="0 1 0" damping="0.05"/>
      <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.04" mass="1"/></body></worldbody>
      <actuator><motor joint="hinge" ctrllimited="true" ctrlrange="-3 3"/></actuator>
    </mujoco>"""
    problem = make_mujoco_problem(
        xml, lambda b, u, a: -jnp.cos(a.qpos[0]), horizon=15, n_frames=2, engine="mujoco"
    )
    assert problem.dt == pytest.approx(0.04)
    ctrl = make_controller(problem, "mbd", mbd.MBDConfig(num_samples=16), MPC)
    res = RealtimeLoop(ctrl, SimPlant(problem), clock=FakeClock(0.05)).run(jax.random.key(0), 1.0)
    assert len(res.times) == 25 and res.states.hi.shape == (25, problem.init_state.hi.shape[0])
    assert np.all(np.isfinite(res.rewards))


def test_mbd_mpc_realtime_writes_the_loop_figures(tmp_path, capsys):
    out = tmp_path / "rt"
    code = main(
        ["mpc", "pendulum", "--realtime", "--duration", "1", "--rate", "20", "--horizon", "15",
         "--num-samples", "32", "--warmup-iterations", "5", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["realtime"] and s["ticks"] == 20 and s["dt"] == 0.05
    for key in ("realtime_factor", "replan_hz", "latency_ms", "missed_deadlines"):
        assert key in s
    assert set(s["latency_ms"]) >= {"median", "p95"}
    fit = s["deadline_fit"]
    assert fit["rate_hz"] == 20.0 and fit["num_samples"] <= 32 and fit["trials"]
    assert (out / "trajectory.npz").exists() and (out / "reward.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "10"], "mbd mpc: error: --rate: applies to --realtime runs only"),
        (["--duration", "3"], "mbd mpc: error: --duration: applies to --realtime runs only"),
        (["--lookahead"], "mbd mpc: error: --lookahead: applies to --realtime runs only"),
        (["--realtime", "--duration", "0"], "mbd mpc: error: --duration: must be a number"),
        (["--realtime", "--rate", "-1"], "mbd mpc: error: --rate: must be a number"),
    ],
)
def test_realtime_options_are_checked_in_one_line(args, message, capsys):
    assert main(["mpc", "pendulum", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)


def test_hopper_hop_plans_from_the_predicted_state_by_default(tmp_path):
    from mbd.cli.common import CLIError
    from mbd.cli.mpc import parse

    # the task's default, which a run without --realtime does not trip over
    _, opts = parse(["hopper-hop", "--out", str(tmp_path / "a")])
    assert opts.lookahead and not opts.realtime
    _, opts = parse(["hopper-hop", "--realtime", "--no-lookahead", "--out", str(tmp_path / "b")])
    assert not opts.lookahead
    _, opts = parse(["pendulum", "--realtime", "--out", str(tmp_path / "c")])
    assert not opts.lookahead
    with pytest.raises(CLIError, match=r"^--no-lookahead: applies to --realtime runs only"):
        parse(["hopper-hop", "--no-lookahead", "--out", str(tmp_path / "d")])


@pytest.mark.slow
def test_ctrl_c_on_the_command_stops_it_in_one_line_with_nothing_half_written(tmp_path):
    out = tmp_path / "rt"
    env = {**os.environ, "MBD_CACHE_DIR": "off"}
    cmd = [sys.executable, "-m", "mbd.cli.main", "mpc", "pendulum", "--realtime",
           "--duration", "60", "--num-samples", "16", "--warmup-iterations", "2",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    time.sleep(15)  # imports and compiles take a few seconds; the plant runs for 60
    proc.send_signal(signal.SIGINT)
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [ln for ln in (stdout + err).strip().splitlines() if ln.strip()]
    # in the loop: it stops, writes what ran and says so (the result line, on stdout);
    # before it (a slow machine still compiling): the command's usual one line on stderr,
    # and nothing written
    assert len(lines) == 1, err
    if out.exists():
        assert lines[0].startswith("interrupted after") and stdout.strip() == lines[0], err
        assert {p.name for p in out.iterdir()} >= {"summary.json", "trajectory.npz"}
        assert json.loads((out / "summary.json").read_text())["interrupted"]
    else:
        assert lines[0] == "mbd mpc: interrupted", err


def test_a_replan_that_costs_no_time_lets_the_plant_tick_once(pendulum):
    problem, ctrl = pendulum
    res = run_fake(ctrl, problem, 0.0, duration=1.0)
    assert len(res.times) == 20 and len(res.replans) == 20


def test_dm_control_tasks_plan_on_euler_and_the_plant_is_dm_controls_rk4():
    from mbd.tasks import dmc, get_task

    mujoco = pytest.importorskip("mujoco")
    task = get_task("dmc-cartpole")
    planner, plant = task.make(horizon=5, seed=1), task.plant(horizon=5, seed=1)
    assert planner.step.mj_model.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert plant.step.mj_model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
    assert planner.dt == plant.dt == pytest.approx(0.05)
    q = np.asarray(plant.step.physics.view(plant.init_state).qpos)
    assert q[0] == 0.0 and abs(q[1] - np.pi) <= 0.05  # hanging, perturbed by the seed
    # the reward by hand on one step
    u = jnp.array([0.3])
    x1, r = plant.call_step(plant.init_state, u)
    v = plant.step.physics.view(x1)
    expected = (
        np.cos(v.qpos[1]) - 0.1 * v.qpos[0] ** 2 - 0.05 * v.qvel[0] ** 2
        - 0.01 * v.qvel[1] ** 2 - 0.001 * 0.09
    )  # fmt: skip
    assert float(r) == pytest.approx(float(expected), abs=1e-6)
    # metrics by hand: upright (within 0.3 rad) for the last 3 s of 4 s, from t = 1 s
    t = np.arange(80) * 0.05
    qpos = np.stack([np.zeros(80), np.where(t < 0.95, 2.0, 0.1)], axis=1)
    m = dmc.loop_metrics("dmc-cartpole", qpos, 0.05)
    assert m == {"upright_last_3s": 1.0, "swung_up": True, "time_to_upright": 1.0}
    qpos[-1, 1] = 0.5  # tipped over at the very end
    m = dmc.loop_metrics("dmc-cartpole", qpos, 0.05)
    assert m["upright_last_3s"] == pytest.approx(59 / 60) and not m["swung_up"]
    assert m["time_to_upright"] is None
    # acrobot: every link within 0.3 rad of upright
    up = dmc.upright("dmc-acrobot", np.array([[0.1, 0.1], [0.1, 0.25], [0.35, -0.3]]))
    assert up.tolist() == [True, False, False]


def test_hopper_hop_pays_no_alive_or_speed_term_after_a_fall_and_metrics_see_it():
    from mbd.tasks import get_task, mujoco_tasks

    problem = get_task("hopper-hop").make(horizon=3, seed=0, engine="mujoco")
    x0 = problem.init_state
    view = problem.step.physics.view
    x1, r = problem.call_step(x0, jnp.zeros(3))
    z, pitch = float(view(x1).body_pos[0, 2]), float(view(x1).qpos[2])
    rate = float(view(x1).qvel[2])
    assert z > 0.8 and abs(pitch) < 0.2
    vx = (float(view(x1).body_pos[0, 0]) - float(view(x0).body_pos[0, 0])) / 0.04
    # alive 2 - |vx - 0.5|, less pitch^2, 0.05 pitch rate^2 and 10 (z - 1.25)^2
    posture = pitch**2 + 0.05 * rate**2
    want = 2.0 - abs(vx - 0.5) - posture - 10.0 * (z - 1.25) ** 2
    assert float(r) == pytest.approx(want, abs=1e-5)
    # a fallen torso (lowered through the floor, as this model lets it) earns no alive
    # or speed term and pays for its height error: 10 (0.5 - 1.25)^2
    fallen = x1._replace(body_pos=x1.body_pos.at[0, 2].set(0.5))
    r_fall = problem.step.reward(view(x0), jnp.zeros(3), view(fallen))
    assert float(r_fall) == pytest.approx(-posture - 10.0 * 0.75**2, abs=1e-5)
    # the loop metrics read height, fall and progress from the states
    states = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), x1, fallen)
    m = mujoco_tasks.loop_metrics("hopper-hop", problem, states)
    assert m["fell"] and m["torso_height_min"] == pytest.approx(0.5)
    assert m["torso_height_end"] == pytest.approx(0.5)
    assert m["forward_progress"] == pytest.approx(vx * 0.04, abs=1e-5)


def test_hopper_foot_clearance_and_gait_by_hand():
    from mbd.sim import engines
    from mbd.tasks import mujoco_tasks

    m = engines.compile_model(mujoco_tasks.TASKS["hopper-hop"].xml())
    # hopper.xml at qpos 0: the foot capsule (radius 0.06) lies level at z 0.1, so its
    # lowest point is 0.04 m up; it spans 0.13 m behind and 0.26 m ahead of the ankle
    # (at the capsule's height), so turning the ankle by -0.3 or 0.3 rad lowers its
    # lowest point by 0.26 sin 0.3 (toe) or 0.13 sin 0.3 (heel)
    q = np.zeros((3, 6))
    q[1, 5], q[2, 5] = -0.3, 0.3
    want = [0.04, 0.04 - 0.26 * np.sin(0.3), 0.04 - 0.13 * np.sin(0.3)]
    np.testing.assert_allclose(mujoco_tasks.foot_clearance(m, q), want, atol=1e-9)
    # floor (rootz -0.05: 1 cm into it), flight (rootz 0.3), flight, floor, flight
    z = np.array([-0.05, 0.3, 0.3, -0.05, 0.3])
    q = np.zeros((5, 6))
    q[:, 1] = z
    g = mujoco_tasks.hop_gait(m, q)
    assert g == {"airborne_fraction": 0.6, "takeoffs": 2, "foot_clearance_max": pytest.approx(0.34)}


def test_run_realtime_and_a_problem_without_dt(pendulum):
    from mbd.mpc import run_realtime

    _, ctrl = pendulum
    res = run_realtime(ctrl, 1.0, jax.random.key(0), clock=FakeClock(0.02))
    assert len(res.times) == 20 and res.summary()["realtime_factor"] == pytest.approx(1.0)
    no_dt = mbd.make_problem(jnp.zeros(1), lambda x, u: x + u, lambda x, u: -jnp.sum(x**2), 5, 1)
    assert no_dt.dt is None
    with pytest.raises(ValueError, match=r"has no dt \(seconds per control step\)"):
        SimPlant(no_dt)
    for bad in (-1.0, 0.0, float("inf"), "0.1", True):
        with pytest.raises(ValueError, match="dt must be"):
            mbd.make_problem(
                jnp.zeros(1), lambda x, u: x + u, lambda x, u: -jnp.sum(x**2), 5, 1, dt=bad
            )


def test_ctrl_c_during_the_warm_up_stops_the_run_before_the_plant_starts(pendulum):
    problem, ctrl = pendulum
    holder = {}

    class Plant(SimPlant):
        def warm_up(self):
            super().warm_up()
            holder["loop"].interrupt()  # as the CLI's Ctrl-C handler does, mid warm-up

    loop = RealtimeLoop(ctrl, Plant(problem))
    holder["loop"] = loop
    t0 = time.perf_counter()
    res = loop.run(jax.random.key(0), 60.0)
    assert res.interrupted and len(res.times) == 0 and not res.replans
    assert time.perf_counter() - t0 < 30  # not the 60 s of the run
    s = res.summary()
    assert s["realtime_factor"] is None and s["replan_hz"] is None
    # the loop can run again afterwards, not interrupted
    res = RealtimeLoop(ctrl, SimPlant(problem), clock=FakeClock(0.05)).run(jax.random.key(0), 0.2)
    assert not res.interrupted and len(res.times) == 4


def test_a_push_reaches_the_state_the_next_tick_starts_from(pendulum):
    problem, _ = pendulum
    plant = SimPlant(problem)
    plant.tick(0.0, np.zeros(1))
    pending = np.asarray(plant.last)
    plant.perturb(lambda x: x.at[1].add(5.0))  # an impulse: +5 rad/s
    plant.tick(0.05, np.zeros(1))
    x, t = plant.state()
    assert t == 0.05
    np.testing.assert_allclose(np.asarray(x), pending + np.array([0.0, 5.0]), rtol=1e-6)


def test_a_realtime_run_too_short_to_measure_says_n_a(tmp_path, capsys):
    out = tmp_path / "rt"
    code = main(
        ["mpc", "pendulum", "--realtime", "--duration", "0.05", "--num-samples", "8",
         "--warmup-iterations", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["ticks"] == 1
    err = capsys.readouterr().err
    if s["replan_hz"] is None:
        assert "n/a replans/s" in err


def _benchmark(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("bench_realtime", ["--rate", "0"], "--rate must be a number of replans per second > 0"),
        ("bench_realtime", ["--budget", "0", "2"], "--budget N K: both must be >= 1"),
        ("bench_realtime", ["--fake-latency", "-1"], "--fake-latency must be a number of seconds"),
        ("bench_realtime", ["--duration", "0"], "--duration must be > 0 seconds"),
        ("bench_acrobot_balance", ["--mpc", "0", "2"], "--mpc N K and --horizon must be >= 1"),
        ("bench_acrobot_balance", ["--noise-level", "2"], "--noise-level must be in (0, 1]"),
        ("bench_acrobot_balance", ["--seeds", "0"], "--seeds and --periods must be >= 1"),
    ],
)
def test_realtime_benchmarks_refuse_bad_values_in_one_line(name, args, message, capsys):
    with pytest.raises(SystemExit) as e:
        _benchmark(name).main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
