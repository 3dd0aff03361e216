"""mbd bench / mbd report: resumable sweeps, hand-checked tables, reproducible runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mbd.bench import (
    Budget,
    CompiledRun,
    append_run,
    load_runs,
    run_planner,
    summarize,
)
from mbd.cli.main import main

SRC = str(Path(__file__).resolve().parents[1] / "src")
TINY = ["--tasks", "pointmass", "--num-samples", "8", "--iterations", "2", "--horizon", "4"]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_resume_after_a_killed_sweep(tmp_path):
    out = tmp_path / "sweep"
    args = [*TINY, "--methods", "cem", "random", "--seeds", "0", "1", "2", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mbd.cli.main", "bench", *args, "--quiet", "--no-report"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs = out / "runs.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if runs.exists() and runs.read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _lines(runs)
    assert 1 <= len(before) < 6, "the sweep should have been killed midway"

    assert main(["bench", *args, "--quiet"]) == 0
    after = _lines(runs)
    assert after[: len(before)] == before  # finished runs kept as they were, not rerun
    keys = [json.loads(x)["key"] for x in after]
    assert len(keys) == 6 and len(set(keys)) == 6
    assert {k.rsplit("/", 1)[0] for k in keys} == {"pointmass/cem", "pointmass/random"}
    table = (out / "table.md").read_text()
    assert "pointmass" in table and table.count("(3)") == 2  # cem and random, 3 seeds
    assert (out / "curves.png").stat().st_size > 1000

    # A third run has nothing to do, and a new budget in the same folder is refused.
    assert main(["bench", *args, "--quiet", "--no-report"]) == 0
    assert _lines(runs) == after
    assert main(["bench", *args[:-2], "--out", str(out), "--num-samples", "16"]) == 2


def test_torn_last_line_is_dropped_and_the_run_redone(tmp_path):
    out = tmp_path / "s"
    args = [*TINY, "--methods", "mbd", "--seeds", "0", "1", "--out", str(out), "--quiet"]
    assert main(["bench", *args, "--no-report"]) == 0
    runs = out / "runs.jsonl"
    first, second = _lines(runs)
    runs.write_text(first + "\n" + second[: len(second) // 2])  # killed mid-write
    assert [r["key"] for r in load_runs(runs)] == ["pointmass/mbd/0"]
    assert main(["bench", *args]) == 0
    lines = _lines(runs)
    assert lines[0] == first and len(lines) == 2
    redone = json.loads(lines[1])
    assert redone["key"] == "pointmass/mbd/1"
    # Same seed, same config: the redone run is bit-identical to the lost one.
    lost = json.loads(second)
    for field in ("final_reward", "reward_history", "best_reward_history", "config"):
        assert redone[field] == lost[field]
    assert "| pointmass | " in (out / "table.md").read_text()
    assert "(2)" in (out / "table.md").read_text()


def test_runs_are_bit_identical_when_repeated():
    budget = Budget(num_samples=8, iterations=3, horizon=5)
    for method in ("mbd", "cmaes"):
        a = run_planner(CompiledRun("twobasins", method, budget, seed=2), "twobasins", method, 2)
        b = run_planner(CompiledRun("twobasins", method, budget, seed=2), "twobasins", method, 2)
        for rec in (a, b):
            rec.pop("solve_seconds")
            rec.pop("compile_seconds")
        assert a == b
        assert a["iterations"] == 3 and len(a["reward_history"]) == 3


def test_mbd_options_reach_the_mbd_runs_and_the_budget(tmp_path):
    out = tmp_path / "sweep"
    args = [*TINY, "--methods", "mbd", "cem", "--seeds", "0", "--out", str(out), "--quiet"]
    assert main(["bench", *args, "--noise-size", "adaptive", "--no-report"]) == 0
    runs = {r["method"]: r for r in map(json.loads, _lines(out / "runs.jsonl"))}
    assert runs["mbd"]["config"]["noise_size"] == "adaptive"
    assert runs["mbd"]["config"]["noise_shape"] == "isotropic"
    assert runs["mbd"]["config"]["ess_target"] is None
    assert "noise_size" not in runs["cem"]["config"]  # the baselines have no such option
    budget = json.loads((out / "sweep.json").read_text())["budget"]
    assert budget["noise_size"] == "adaptive" and "noise_shape" not in budget
    assert "ess_target" not in budget
    assert main(["bench", *args]) == 2  # the paper's MBD in the same folder: another budget
    ess = tmp_path / "ess"
    args[args.index(str(out))] = str(ess)
    assert main(["bench", *args, "--ess-target", "0.25", "--no-report"]) == 0
    runs = {r["method"]: r for r in map(json.loads, _lines(ess / "runs.jsonl"))}
    assert runs["mbd"]["config"]["ess_target"] == 0.25
    assert json.loads((ess / "sweep.json").read_text())["budget"]["ess_target"] == 0.25
    assert main(["bench", *args, "--ess-target", "0"]) == 2  # out of (0, 1]
    mode = tmp_path / "mode"
    args[args.index(str(ess))] = str(mode)
    assert main(["bench", *args, "--output", "mode", "--no-report"]) == 0
    runs = {r["method"]: r for r in map(json.loads, _lines(mode / "runs.jsonl"))}
    assert runs["mbd"]["config"]["output"] == "mode"
    # the plan returned is the last update's best sample: its replay scores as it did
    assert runs["mbd"]["final_reward"] == pytest.approx(runs["mbd"]["best_reward_history"][-1])
    assert json.loads((mode / "sweep.json").read_text())["budget"]["output"] == "mode"
    assert main(["bench", *args, "--output", "median"]) == 2


def _record(task, method, seed, reward, solve, compile_s, hist):
    return {
        "key": f"{task}/{method}/{seed}",
        "task": task,
        "method": method,
        "seed": seed,
        "horizon": 10,
        "num_samples": 4,
        "iterations": 2,
        "final_reward": reward,
        "reward_history": hist,
        "best_reward_history": hist,
        "solve_seconds": solve,
        "compile_seconds": compile_s,
        "env_steps": 90,
    }


def test_report_on_a_hand_made_runs_file(tmp_path, capsys):
    d = tmp_path / "hand"
    d.mkdir()
    runs = d / "runs.jsonl"
    for rec in (
        _record("car2d", "mbd", 0, 1.0, 2.0, 10.0, [0.1, 0.5]),
        _record("car2d", "mbd", 1, 2.0, 4.0, 12.0, [0.3, 0.7]),
        _record("car2d", "cem", 0, 0.5, 1.0, 8.0, [0.2, 0.2]),
        _record("car2d", "cem", 1, 0.5, 3.0, 8.0, [0.2, 0.4]),
        _record("car2d", "cem", 2, 0.8, 2.0, 8.0, [0.2, 0.6]),
        _record("ant", "mbd", 0, -1.25, 90.0, 30.0, [0.0, 1.0]),
    ):
        append_run(runs, rec)
    append_run(runs, _record("car2d", "mbd", 0, 99.0, 1.0, 1.0, [0.0, 0.0]))  # duplicate key
    assert main(["report", str(d)]) == 0
    md = (d / "table.md").read_text()
    assert md == capsys.readouterr().out
    # mbd on car2d: rewards 1, 2 -> 1.500 ± 0.707 (sample std); cem: 0.5, 0.5, 0.8 -> 0.600 ± 0.173
    assert "| car2d | 0.600 ± 0.173 (3) | 1.500 ± 0.707 (2) |" in md
    assert "| ant | - | -1.250 ± 0.000 (1) |" in md
    assert "| car2d | 2.00 s (+ 8.00 s compile) | 3.00 s (+ 11.00 s compile) |" in md
    assert "| ant | - | 1 m 30.0 s (+ 30.00 s compile) |" in md
    # the paper's Table 2 beside, for its tasks only (ant: CEM 0.85, MBD 3.80, 16.2 s);
    # measured / paper = -1.25 / 3.80 = -0.33
    paper = md[md.index("## The paper's numbers") :]
    assert "| task | cem | mbd | MBD measured / paper | paper MBD time |" in paper
    assert "| ant | 0.850 | 3.800 | -0.33 | 16.20 s |" in paper
    assert "car2d" not in paper
    rows = list(csv.DictReader((d / "table.csv").open()))
    got = {(r["task"], r["method"]): r for r in rows}
    assert [(r["task"], r["method"]) for r in rows] == [
        ("car2d", "cem"),
        ("car2d", "mbd"),
        ("ant", "mbd"),
    ]
    assert float(got[("car2d", "mbd")]["reward_mean"]) == pytest.approx(1.5)
    assert float(got[("car2d", "mbd")]["reward_std"]) == pytest.approx(2**0.5 / 2)
    assert float(got[("car2d", "cem")]["reward_std"]) == pytest.approx(0.17320508)
    assert float(got[("car2d", "mbd")]["solve_seconds"]) == pytest.approx(3.0)
    assert float(got[("car2d", "mbd")]["compile_seconds"]) == pytest.approx(11.0)
    assert int(got[("ant", "mbd")]["seeds"]) == 1
    assert (d / "curves.png").stat().st_size > 1000


def test_summarize_rl_rows_have_no_compile_time():
    rec = _record("hopper", "rl", 0, 0.4, 60.0, None, [0.4])
    (row,) = summarize([rec])
    assert row["compile_seconds"] is None and row["reward_mean"] == 0.4


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bench", "--methods", "nope"], "--methods: unknown method 'nope'"),
        (["bench", "--tasks", "nope"], "--tasks: unknown task 'nope'"),
        (["bench", "--seeds", "-1"], "--seeds"),
        (["bench", "--iterations", "0"], "--iterations: must be an integer >= 1"),
        (["bench", "--tasks", "pointmass", "--methods", "mbd+demo"], "--methods: mbd+demo"),
        (
            ["bench", "--tasks", "pointmass", "--noise-shape", "full", "--chunk", "4"],
            "--chunk: mbd on pointmass: --noise-shape full needs the whole batch",
        ),
        (["report"], "DIR"),
        (["report", "/nonexistent/dir"], "has no runs.jsonl"),
    ],
)
def test_cli_errors_are_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
