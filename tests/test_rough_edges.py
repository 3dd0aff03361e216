"""What a new user hit (issue 25): each test here fails without its fix.

Silent wrong answers (plant params a MuJoCo model ignores, a fall scored as progress),
wrong bench times, runs that replaced each other, crashes and unclear errors, and the
output convention (the result on stdout, progress and notes on stderr, never wrapped).
"""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from mbd.cli.common import atomic_out_dir, fresh_out_dir
from mbd.cli.main import main
from mbd.solver import ConfigError, MBDConfig


def _err_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


# --- A: plant params a model ignores are refused; run_timed takes plant= --------------


@pytest.fixture(scope="module")
def hopper_controller():
    pytest.importorskip("mujoco")
    from mbd.mpc import MPCConfig, make_controller
    from mbd.tasks import get_task

    problem = get_task("hopper").make(horizon=3)
    config = MBDConfig(num_samples=4, num_steps=3)
    return make_controller(problem, "mbd", config, MPCConfig(iterations=1, warmup_iterations=1))


def test_plant_params_on_a_model_without_params_are_refused(hopper_controller):
    from mbd.mpc import SimPlant, closed_loop, run_timed

    key = jax.random.key(0)
    for call in (
        lambda: run_timed(hopper_controller, key, 2, plant_params={"mass": 1.3}),
        lambda: closed_loop(hopper_controller, key, 2, plant_params=123.0),
        lambda: SimPlant(hopper_controller.problem, params={"mass": 1.3}),
    ):
        with pytest.raises(ValueError, match=r"plant_params would be ignored.*plant="):
            call()


def test_run_timed_takes_a_plant_of_its_own(hopper_controller):
    from mbd.mpc import run_timed

    key = jax.random.key(0)
    base = run_timed(hopper_controller, key, 3).result
    same = run_timed(hopper_controller, key, 3, plant=hopper_controller.problem.step).result
    np.testing.assert_array_equal(np.asarray(same.rewards), np.asarray(base.rewards))

    def pushed(x, u):  # another plant: the same model, its controls doubled
        return hopper_controller.problem.step(x, 2.0 * u)

    other = run_timed(hopper_controller, key, 3, plant=pushed).result
    assert not np.array_equal(np.asarray(other.rewards), np.asarray(base.rewards))
    with pytest.raises(ValueError, match="not both"):
        run_timed(hopper_controller, key, 2, plant=pushed, plant_params=1.0)


# --- B: a closed loop reports what the robot did, and its engine ------------------------


def test_loop_metrics_of_brax_states_by_hand():
    from mbd.tasks.mujoco_tasks import loop_metrics

    Pos = namedtuple("Pos", "pos")
    Pipe = namedtuple("Pipe", "x")
    State = namedtuple("State", "pipeline_state")
    torso = np.array([[0.5, 0, 1.2], [0.9, 0, 0.6], [1.3, 0, 0.3]])  # (T, 3)
    pos = np.zeros((3, 4, 3))
    pos[:, 0] = torso
    states = State(Pipe(Pos(pos)))
    init = State(Pipe(Pos(np.array([[0.1, 0, 1.25], [0, 0, 0], [0, 0, 0], [0, 0, 0]]))))
    problem = SimpleNamespace(step=object(), init_state=init, dt=0.04)
    m = loop_metrics("hopper", problem, states)
    assert m["torso_height_min"] == pytest.approx(0.3)
    assert m["torso_height_end"] == pytest.approx(0.3)
    assert m["forward_progress"] == pytest.approx(1.2)
    assert m["mean_forward_velocity"] == pytest.approx(1.2 / (3 * 0.04))
    assert m["fell"] is True  # 0.3 m < hopper's 0.7 m


def test_mpc_summary_has_engine_and_fall_metrics(tmp_path, capsys):
    pytest.importorskip("mujoco")
    out = tmp_path / "h"
    args = ["mpc", "hopper", "--num-samples", "4", "--horizon", "3", "--steps", "4",
            "--warmup-iterations", "1", "--iterations", "1", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["engine"] == "mujoco"  # as `mbd plan hopper` on a CPU
    assert {"torso_height_min", "torso_height_end", "forward_progress", "fell"} <= set(s["metrics"])
    text = capsys.readouterr().out
    assert "forward_progress" in text and "torso_height_end" in text


# --- C-E are the black-box tests (tests/test_bbo.py) -----------------------------------
# --- 1: bench solve times without the compile ------------------------------------------


def test_bench_first_seed_solve_time_leaves_the_compile_out():
    from mbd.bench import Budget, CompiledRun, run_planner

    compiled = CompiledRun("pointmass", "mbd", Budget(8, 2, 4))
    rec = run_planner(compiled, "pointmass", "mbd", 0)
    assert compiled.compile_seconds is not None
    # the solve of 8 samples x 2 updates x 4 steps takes about a millisecond
    assert rec["solve_seconds"] < 0.5 * rec["compile_seconds"]


# --- 2: one folder, one run; default folders tell runs apart ---------------------------


def test_default_folders_tell_runs_apart():
    from mbd.cli import mpc, plan

    _, a = plan.parse(["hopper"])
    _, b = plan.parse(["hopper", "--engine", "brax"])
    _, c = plan.parse(["car2d", "--demo", "--seed", "2"])
    assert len({a.out, b.out}) == 2 and "brax" in b.out.name
    assert c.out.name.startswith("car2d-demo") and "s2" in c.out.name
    _, m0 = mpc.parse(["cartpole"])
    _, m1 = mpc.parse(["cartpole", "--mismatch", "0.3"])
    _, m2 = mpc.parse(["car2d", "--demo"])
    assert m0.out != m1.out and "mismatch0.3" in m1.out.name
    assert "demo" in m2.out.name


def test_fresh_out_dir_keeps_earlier_runs(tmp_path):
    base = tmp_path / "runs" / "pendulum-s0"
    assert fresh_out_dir(base) == base
    base.mkdir(parents=True)
    assert fresh_out_dir(base).name == "pendulum-s0-2"
    (tmp_path / "runs" / "pendulum-s0-2").mkdir()
    assert fresh_out_dir(base).name == "pendulum-s0-3"


def test_a_reused_folder_holds_only_the_new_run(tmp_path, capsys):
    out = tmp_path / "run"
    with atomic_out_dir(out) as tmp:
        for name in ("summary.json", "plan.png"):
            (tmp / name).write_text("car2d")
    (out / "mine.txt").write_text("the user's")  # not a run's file: left alone
    capsys.readouterr()
    with atomic_out_dir(out) as tmp:
        (tmp / "summary.json").write_text("pendulum")
    assert sorted(p.name for p in out.iterdir()) == [".mbd-run", "mine.txt", "summary.json"]
    assert (out / "summary.json").read_text() == "pendulum"
    assert "held an earlier run" in capsys.readouterr().err


def test_a_folder_without_a_manifest_loses_nothing(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "plan.png").write_text("the user's own figure")
    (out / "summary.json").write_text("the user's own notes")
    with atomic_out_dir(out) as tmp:
        (tmp / "summary.json").write_text("the run's")
    assert (out / "plan.png").read_text() == "the user's own figure"  # not the run's: kept
    assert (out / "summary.json").read_text() == "the run's"


# --- 4-7, 13: one line and exit 2 -------------------------------------------------------


@pytest.mark.parametrize(
    "args, option",
    [
        (["plan", "pendulum", "--devices", "1000"], "--devices"),
        (["plan", "pendulum", "--seed", str(2**63)], "--seed"),
        (["mpc", "pendulum", "--seed", str(2**64)], "--seed"),
        (["plan", "pendulum", "--temperature", "1e308"], "--temperature"),
        (["plan", "pendulum", "--temperature", "1e-45"], "--temperature"),
        (["mpc", "pendulum", "--temperature", "1e-45"], "--temperature"),
        (["plan", "pendulum", "--beta-start", "0.01", "--beta-end", "0.0001"], "--beta-start"),
        (["plan", "pendulum", "--horizon", "1000000000"], "--horizon"),
    ],
)
def test_bad_values_fail_in_one_line(args, option, capsys):
    assert main(args) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1, lines  # no stale progress line before it
    assert lines[0].startswith(f"mbd {args[0]}: error: {option}:"), lines[0]


def test_largest_seed_runs(tmp_path, capsys):
    args = ["plan", "pendulum", "--seed", str(2**63 - 1), "--num-samples", "4",
            "--num-steps", "2", "--quiet", "--out", str(tmp_path / "s")]  # fmt: skip
    assert main(args) == 0


def test_config_extremes_are_refused():
    for kw in ({"temperature": 1e-45}, {"temperature": 1e308}, {"temperature": True}):
        with pytest.raises(ConfigError, match="temperature"):
            MBDConfig(**kw)
    with pytest.raises(ConfigError, match=r"beta_start.*swap"):
        MBDConfig(beta_start=0.01, beta_end=1e-4)
    MBDConfig(temperature=1e-30)
    MBDConfig(temperature=1e30)
    from mbd.baselines.mppi import MPPIConfig

    with pytest.raises(ConfigError, match="temperature"):
        MPPIConfig(temperature=1e-45)


# --- 10, 11: the result on stdout, unwrapped; --quiet the figure alone -----------------


def test_results_on_stdout_unwrapped(tmp_path, capsys):
    args = ["plan", "car2d", "--num-samples", "8", "--num-steps", "2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and len(out[0]) > 80  # one line, however long
    assert "final reward" in out[0] and "(the plan replayed)" in out[0]
    assert main([*args, "--quiet", "--out", str(tmp_path / "b")]) == 0
    float(capsys.readouterr().out.strip())
    mpc = ["mpc", "pendulum", "--num-samples", "4", "--steps", "3", "--warmup-iterations", "1"]
    assert main([*mpc, "--quiet", "--out", str(tmp_path / "c")]) == 0
    quiet = capsys.readouterr()
    value = float(quiet.out.strip())
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert value == pytest.approx(s["closed_loop_return"], rel=1e-5)
    assert quiet.err == ""


# --- 12: no library chatter on stdout; no "Brax" for what runs on MuJoCo ---------------


def test_warp_is_told_to_be_quiet():
    from mbd.sim.warp_engine import quiet_warp

    wp = SimpleNamespace(LOG_WARNING=30, config=SimpleNamespace(quiet=False, log_level=20))
    quiet_warp(wp)
    assert wp.config.quiet is True and wp.config.log_level == 30


def test_robot_task_summaries_do_not_call_them_brax(capsys):
    assert main(["tasks"]) == 0
    for line in capsys.readouterr().out.splitlines():
        _, _, summary = line.split(maxsplit=2)
        assert not summary.startswith("Brax"), line


def test_readme_paths_exist():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "bitwise the plan of one process with `--devices 2`" in readme
