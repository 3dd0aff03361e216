"""The command line: `mbd tasks`, `mbd plan`, and every bad-input path."""

from __future__ import annotations

import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.cli.main import main
from mbd.tasks import car2d

SMALL = ["--num-samples", "64", "--num-steps", "6", "--quiet"]


def test_tasks_lists_car2d(capsys):
    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == [t.name for t in mbd.tasks.list_tasks()]
    assert any(ln.startswith("car2d ") and "[--demo]" in ln for ln in lines)


def test_plan_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["plan", "car2d", "--demo", "--seed", "3", *SMALL, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".mbd-run", "plan.png", "reward.png", "summary.json", "trajectory.npz"
    ]  # fmt: skip
    s = json.loads((out / "summary.json").read_text())
    for key in ("task", "method", "seed", "config", "final_reward", "reward_history",
                "compile_seconds", "solve_seconds", "env_steps", "versions"):  # fmt: skip
        assert key in s, key
    assert (s["task"], s["method"], s["seed"], s["demo"]) == ("car2d", "mbd+demo", 3, True)
    assert s["config"]["num_samples"] == 64 and s["config"]["num_steps"] == 6
    assert len(s["reward_history"]) == 5  # reference reading: N - 1 updates
    assert s["temperature_history"] == [pytest.approx(s["config"]["temperature"])] * 5
    assert s["env_steps"] == 5 * 64 * 50 + 50
    assert s["versions"]["jax"]
    tr = np.load(out / "trajectory.npz")
    assert tr["controls"].shape == (50, 2) and tr["states"].shape == (50, 3)
    # final_reward is the mean per-step reward of the controls replayed open loop.
    ro = mbd.rollout(car2d.make(), jnp.asarray(tr["controls"]))
    assert s["final_reward"] == pytest.approx(float(np.mean(ro.rewards)), abs=1e-6)
    np.testing.assert_allclose(ro.states, tr["states"], atol=1e-5)
    for png in ("plan.png", "reward.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".run.partial-*"))
    printed = capsys.readouterr().out.strip()
    assert float(printed) == pytest.approx(s["final_reward"], abs=5e-7)
    assert not printed.startswith("-0.000000")  # a reward that rounds to 0 prints as 0


@pytest.mark.parametrize(
    "args, option",
    [(["plan", "nosuchtask"], "TASK"), (["plan"], "TASK"),
     (["plan", "car2d", "--temperature", "-1"], "--temperature"),
     (["plan", "car2d", "--num-samples", "0"], "--num-samples"),
     (["plan", "car2d", "--beta-end", "nan"], "--beta-end"),
     (["plan", "car2d", "--beta-start", "inf"], "--beta-start"),
     (["plan", "car2d", "--num-steps", "1"], "--num-steps"),
     (["plan", "car2d", "--horizon", "0"], "--horizon"),
     (["plan", "car2d", "--seed", "-1"], "--seed"),
     (["plan", "car2d", "--reading", "bogus"], "--reading"),
     (["plan", "car2d", "--schedule", "bogus"], "--schedule"),
     (["plan", "car2d", "--seed", "abc"], "--seed"),
     (["plan", "car2d", "--bogus-option", "1"], "--bogus-option"),
     (["nosuchcommand"], "COMMAND"), (["tasks", "extra"], "extra")],
)  # fmt: skip
def test_bad_input_one_line_exit_2(args, option, capsys, tmp_path):
    out = tmp_path / "never"
    argv = [*args, "--out", str(out)] if args[:1] == ["plan"] and len(args) > 1 else args
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mbd")
    assert option in err
    assert not out.exists()


def test_unwritable_out_dir(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["plan", "car2d", *SMALL, "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err
    assert main(["plan", "car2d", *SMALL, "--out", str(blocker)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert blocker.read_text() == "x"


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "plan" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["plan", "car2d", "--help"])
    assert e.value.code == 0
    assert "--num-samples" in capsys.readouterr().out


def test_console_entry_point_runs():
    # python -m mbd: the README's form where pip's scripts folder is not on PATH
    r = subprocess.run([sys.executable, "-m", "mbd", "plan", "car2d", "--temperature",
                        "0"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().startswith("mbd plan: error: --temperature: must be in [1e-30, 1e+30]")


def test_import_mbd_and_the_cli_load_no_jax_until_a_name_is_used():
    script = (
        "import sys, mbd, mbd.cli.main\n"
        "assert 'jax' not in sys.modules, 'jax imported'\n"
        "from mbd import MBDConfig\n"
        "assert 'jax' in sys.modules and MBDConfig is mbd.solver.MBDConfig\n"
        "assert {'MBDConfig', 'solve', 'bbo'} <= set(dir(mbd))\n"
        "print(mbd.__version__)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0.1.0"


def test_ctrl_c_prints_one_line_exits_130_and_leaves_nothing(tmp_path):
    import signal
    import subprocess
    import sys
    import textwrap

    out = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from mbd.cli.common import atomic_out_dir, install_interrupt_handler
        install_interrupt_handler("mbd plan")
        with atomic_out_dir(Path({str(out)!r})) as tmp:
            (tmp / "summary.json").write_text("{{}}")
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["mbd plan: interrupted"]
    assert not any(tmp_path.glob(".run.partial-*"))  # the half-written folder is gone
    assert not (out / "summary.json").exists()


def test_cache_dir_option(tmp_path, capsys):
    from mbd.compile import resolve_cache_dir

    assert main(["plan", "pointmass", "--cache-dir"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mbd: error: --cache-dir: needs a folder (or 'off')"]
    assert resolve_cache_dir("off") is None and resolve_cache_dir("") is None
    assert resolve_cache_dir(str(tmp_path)) == tmp_path
    # a folder that cannot be made: one warning, and the plan runs without a cache
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = ["--cache-dir", str(blocker / "sub"), "plan", "pointmass", "--num-samples", "4"]
    assert main([*args, "--num-steps", "3", "--quiet", "--out", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "cannot create the compilation cache folder" in err
    assert (tmp_path / "p" / "summary.json").exists()
