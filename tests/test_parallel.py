"""Scale-out (mbd.parallel): chunks, sample sharding over devices, many hosts, memory.

Sharding needs several devices, which JAX fixes when it starts, so those checks run in
a subprocess with four virtual CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``); the two-host check starts two
processes that meet over loopback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.compile import SolveTooLarge, count_compiles
from mbd.parallel import (
    ParallelConfig,
    chunked,
    estimate_bytes,
    initialize_distributed,
    validate_parallel,
)
from mbd.problem import Objective
from mbd.solver import ConfigError
from mbd.tasks import get_task

CFG = mbd.MBDConfig(num_samples=64, num_steps=12)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["MBD_CACHE_DIR"] = "off"
    env.update(extra)
    return env


def _run_script(code: str, devices: int, timeout: int = 300) -> dict:
    """Runs ``code`` with ``devices`` virtual CPU devices; it prints one JSON line last."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# Chunks (one device, in this process)
# ---------------------------------------------------------------------------------------


def test_chunked_evaluation_is_bitwise_the_same():
    prob = get_task("pendulum").make(horizon=20, demo=False, seed=0)
    zs = jax.random.uniform(jax.random.key(3), (37, *prob.shape), minval=-1.0, maxval=1.0)
    whole = jax.jit(mbd.make_evaluator(prob).evaluate)(zs)
    for chunk in (1, 5, 36, 37, 100):  # 37 = 7 x 5 + 2: the last chunk is padded
        ev = jax.jit(mbd.make_evaluator(prob, ParallelConfig(chunk=chunk)).evaluate)(zs)
        np.testing.assert_array_equal(np.asarray(ev.reward), np.asarray(whole.reward))
        np.testing.assert_array_equal(np.asarray(ev.violation), np.asarray(whole.violation))


def test_baseline_chunks_change_nothing():
    # The baselines chunk only their rollouts: the solve is bitwise the unchunked one.
    from mbd.baselines import get_method, method_config

    prob = get_task("car2d").make(demo=False, seed=1)
    key = jax.random.key(1)
    for m in ("cem", "mppi"):
        cfg = method_config(m, CFG)
        whole = get_method(m).make(prob, cfg).solve(key)
        part = get_method(m).make(prob, cfg, parallel=ParallelConfig(chunk=10)).solve(key)
        np.testing.assert_array_equal(np.asarray(part.z), np.asarray(whole.z))


def test_mbd_streams_its_chunks():
    # A chunk at least B is no chunk: the same solve, bitwise.
    prob = get_task("car2d").make(demo=True, seed=1)
    key = jax.random.key(1)
    whole = mbd.make_solver(prob, CFG).solve(key)
    same = mbd.make_solver(prob, CFG, parallel=ParallelConfig(chunk=64)).solve(key)
    np.testing.assert_array_equal(np.asarray(same.z), np.asarray(whole.z))
    # A smaller chunk draws each chunk's noise from its own key: another draw, which
    # with the demonstration (Eq. 13) reaches the goal as the whole batch does.
    part = mbd.make_solver(prob, CFG, parallel=ParallelConfig(chunk=10)).solve(key)
    assert not np.array_equal(np.asarray(part.z), np.asarray(whole.z))
    assert np.all(np.isfinite(np.asarray(part.z)))
    # The weighted mean over the streamed chunks is the weighted mean of the samples the
    # chunks drew, computed by hand here for one step.
    solver = mbd.make_solver(prob, CFG, parallel=ParallelConfig(chunk=10))
    state = solver.init(key)
    k = jax.random.key(7)
    new, _ = solver.step(k, state)
    keys = jax.random.split(k, 7)  # ceil(64 / 10) chunks
    sch = mbd.make_schedule(CFG.schedule, CFG.num_steps, CFG.beta_start, CFG.beta_end)
    std = float(np.sqrt(1.0 - sch.alpha_bars[CFG.num_steps - 1]))  # first update: i = N - 1
    eps = np.concatenate([np.asarray(jax.random.normal(kk, (10, *prob.shape))) for kk in keys])
    samples = np.clip(np.asarray(state.mean) + std * eps, -1.0, 1.0)[:64]
    ev = mbd.make_evaluator(prob).evaluate(jnp.asarray(samples))
    w = mbd.compute_weights(ev.reward, ev.violation, CFG, ev.demo_loglik, prob.demo.reward)
    expect = np.tensordot(np.asarray(w.weights), samples, axes=1)
    np.testing.assert_allclose(np.asarray(new.mean), expect, atol=2e-6)
    # output="mode" draws the top-weight sample's chunk once more: the same search, and
    # the mode is that sample.
    cfg = dataclasses.replace(CFG, output="mode")
    solver = mbd.make_solver(prob, cfg, parallel=ParallelConfig(chunk=10))
    new_m, _ = solver.step(k, solver.init(key))
    np.testing.assert_array_equal(np.asarray(new_m.mean), np.asarray(new.mean))
    top = int(np.argmax(np.asarray(w.weights)))
    np.testing.assert_allclose(np.asarray(new_m.mode), samples[top], atol=1e-6)


def test_mbd_chunks_converge_as_the_whole_batch_does():
    # A 6-d sphere: over 5 seeds, streamed chunks get as close as the whole batch.
    obj = Objective(fn=lambda y: -jnp.sum((y - 0.3) ** 2), shape=(6,), low=-1.0, high=1.0)
    cfg = mbd.MBDConfig(num_samples=96, num_steps=40)
    errs = {}
    for chunk in (None, 16):
        solver = mbd.make_solver(obj, cfg, parallel=ParallelConfig(chunk=chunk))
        errs[chunk] = [
            float(np.max(np.abs(np.asarray(solver.solve(jax.random.key(s)).solution) - 0.3)))
            for s in range(5)
        ]
    assert max(errs[16]) < 0.05 and max(errs[None]) < 0.05, errs
    assert np.median(errs[16]) < 3 * np.median(errs[None]), errs


def test_chunked_keeps_pytree_outputs_and_none():
    def ev(zs, inst):
        return {"a": jnp.sum(zs, axis=1), "b": zs * 2.0, "none": None}

    zs = jnp.arange(22.0).reshape(11, 2)
    out = jax.jit(chunked(ev, 4))(zs, None)
    np.testing.assert_array_equal(np.asarray(out["a"]), np.arange(11) * 4.0 + 1.0)
    assert out["b"].shape == (11, 2) and out["none"] is None


def test_chunk_lowers_the_programs_memory():
    prob = get_task("car2d").make(demo=False, seed=0)
    cfg = mbd.MBDConfig(num_samples=20_000, num_steps=3)
    key = jax.random.key(0)
    whole = mbd.make_solver(prob, cfg).solve.compile(key).memory_bytes
    part = mbd.make_solver(prob, cfg, parallel=ParallelConfig(chunk=500)).solve.compile(key)
    # Measured 3,612 and 79 bytes per sample: MBD streams its chunks, so the program
    # holds less than the samples alone would (2 x B x T x nu floats = 800 B each).
    assert part.memory_bytes < 2 * 4 * 20_000 * 50 * 2 < whole


# ---------------------------------------------------------------------------------------
# Memory: the estimate made before compiling
# ---------------------------------------------------------------------------------------


def test_estimate_bytes_by_hand():
    # 2 x 1000 x (50 x 2) floats of noise and samples, + 1000 rollouts x (16 + 4 x 50).
    assert estimate_bytes(1000, (50, 2), 16, 50) == 4 * 2 * 1000 * 100 + 1000 * (16 + 200)
    # A chunk of 100: the rollouts under way are 100.
    par = ParallelConfig(chunk=100)
    assert estimate_bytes(1000, (50, 2), 16, 50, par) == 4 * 2 * 1000 * 100 + 100 * 216


def test_a_solve_that_cannot_fit_is_refused_before_compiling():
    prob = get_task("car2d").make(demo=False, seed=0)
    cfg = mbd.MBDConfig(num_samples=400_000_000, num_steps=3)
    solver = mbd.make_solver(prob, cfg)
    assert solver.solve.floor_bytes > 300e9  # 2 x 4e8 x 100 floats
    with count_compiles() as c:
        with pytest.raises(SolveTooLarge, match=r"needs at least .* GiB but .* GiB is available"):
            solver.solve.compile(jax.random.key(0))
        with pytest.raises(SolveTooLarge, match="--chunk"):
            solver.solve(jax.random.key(0))
    assert c.of("_solve") == 0


def test_cli_refuses_too_many_samples_in_one_line(capsys, tmp_path):
    from mbd.cli.main import main

    args = ["plan", "car2d", "--num-samples", "400000000", "--quiet"]
    code = main([*args, "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("mbd plan: error: --num-samples: the solve needs at least")


# ---------------------------------------------------------------------------------------
# Options and their errors
# ---------------------------------------------------------------------------------------


def test_parallel_config_is_checked():
    with pytest.raises(ConfigError, match="devices: must be an integer >= 0"):
        validate_parallel(ParallelConfig(devices=-1))
    with pytest.raises(ConfigError, match="chunk: must be None or an integer >= 1"):
        validate_parallel(ParallelConfig(chunk=0))
    n = jax.device_count()
    with pytest.raises(ConfigError, match=rf"asked for {n + 3} but {n} cpu device.*XLA_FLAGS"):
        mbd.make_solver(
            get_task("pendulum").make(horizon=5, demo=False, seed=0),
            CFG,
            parallel=ParallelConfig(devices=n + 3),
        )
    with pytest.raises(TypeError, match="parallel must be a ParallelConfig"):
        mbd.make_solver(get_task("pendulum").make(horizon=5, demo=False, seed=0), CFG, parallel=4)


def test_cli_parallel_options(capsys, tmp_path):
    from mbd.cli.main import main

    assert main(["plan", "pendulum", "--chunk", "0"]) == 2
    assert "mbd plan: error: --chunk: must be None or an integer >= 1 (got 0)" in (
        capsys.readouterr().err
    )
    assert main(["mpc", "pendulum", "--devices", "-2"]) == 2
    assert "mbd mpc: error: --devices: must be an integer >= 0 (got -2)" in capsys.readouterr().err
    assert main(["bench", "--chunk", "0", "--out", str(tmp_path / "b")]) == 2
    assert "mbd bench: error: --chunk: must be None or an integer >= 1 (got 0)" in (
        capsys.readouterr().err
    )
    assert main(["plan", "pendulum", "--noise-size", "auto"]) == 2
    assert "--noise-size: must be one of schedule, adaptive" in capsys.readouterr().err
    assert main(["plan", "car2d", "--noise-shape", "full", "--chunk", "10"]) == 2
    assert "mbd plan: error: --chunk: --noise-shape full needs the whole batch" in (
        capsys.readouterr().err
    )
    out = tmp_path / "p"
    args = ["plan", "pendulum", "--num-samples", "16", "--num-steps", "5", "--chunk", "5"]
    assert main([*args, "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chunk"] == 5 and summary["devices"] == 1 and summary["memory_bytes"] > 0


def test_initialize_distributed_reads_the_environment(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert initialize_distributed() is False  # nothing set: nothing started
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES must be an integer"):
        initialize_distributed()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "2")
    with pytest.raises(ValueError, match=r"0 <= JAX_PROCESS_ID < JAX_NUM_PROCESSES \(got 2, 2\)"):
        initialize_distributed()


# ---------------------------------------------------------------------------------------
# Sharding over four virtual CPU devices (a subprocess)
# ---------------------------------------------------------------------------------------

SHARDING_CHECKS = """
import json
import jax, jax.numpy as jnp, numpy as np
import mbd
from mbd.baselines import get_method, method_config
from mbd.mpc import MPCConfig, closed_loop, make_controller
from mbd.parallel import ParallelConfig
from mbd.tasks import get_task

assert jax.device_count() == 4
out = {}
prob = get_task("pendulum").make(horizon=20, demo=False, seed=0)
cfg = mbd.MBDConfig(num_samples=64, num_steps=12)
zs = jax.random.uniform(jax.random.key(3), (61, *prob.shape), minval=-1.0, maxval=1.0)
one = np.asarray(jax.jit(mbd.make_evaluator(prob).evaluate)(zs).reward)
out["eval_bitwise"] = [
    bool(np.array_equal(one, np.asarray(jax.jit(mbd.make_evaluator(
        prob, ParallelConfig(devices=d, chunk=c)).evaluate)(zs).reward)))
    for d, c in ((2, None), (4, None), (3, None), (4, 4))
]
key = jax.random.key(0)
base = mbd.make_solver(prob, cfg).solve(key)
def diff(par, p=prob, c=cfg, b=base):
    r = mbd.make_solver(p, c, parallel=par).solve(key)
    return float(np.max(np.abs(np.asarray(r.z) - np.asarray(b.z))))
out["solve_diff"] = {f"{d}x{c}": diff(ParallelConfig(devices=d, chunk=c))
                     for d, c in ((2, None), (4, None), (3, None), (0, None))}
# MBD's streamed chunks: 32 samples at once on one device, or 8 on each of 4.
stream = mbd.make_solver(prob, cfg, parallel=ParallelConfig(chunk=32)).solve(key)
out["solve_diff"]["stream4x8"] = diff(ParallelConfig(devices=4, chunk=8), b=stream)
mesh = jax.sharding.Mesh(np.array(jax.devices()).reshape(2, 2), ("a", "b"))
out["solve_diff"]["mesh2x2"] = diff(mesh)
car = get_task("car2d").make(demo=True, seed=2)
car_base = mbd.make_solver(car, cfg).solve(key)
out["car2d_demo_diff"] = diff(ParallelConfig(devices=4), car, cfg, car_base)
out["baselines"] = {}
# (every baseline evaluates through make_evaluator(problem, parallel, B), as these three)
for m in ("cem", "mppi", "cmaes"):
    mc = method_config(m, cfg)
    a = get_method(m).make(prob, mc).solve(key)
    b = get_method(m).make(prob, mc, parallel=ParallelConfig(devices=4)).solve(key)
    out["baselines"][m] = float(np.max(np.abs(np.asarray(a.z) - np.asarray(b.z))))
keys = jnp.stack([jax.random.key(s) for s in range(3)])
insts = [get_task("car2d").make(demo=True, seed=s).instance() for s in range(3)]
ba = mbd.make_solver(car, cfg).solve.batch(keys, insts)
bb = mbd.make_solver(car, cfg, parallel=ParallelConfig(devices=4)).solve.batch(keys, insts)
out["batch_diff"] = float(np.max(np.abs(np.asarray(ba.z) - np.asarray(bb.z))))
mpc = MPCConfig(iterations=2, warmup_iterations=6)
small = mbd.MBDConfig(num_samples=32)
loops = [jax.jit(closed_loop, static_argnums=(0, 2))(
    make_controller(prob, "mbd", small, mpc, parallel=par), key, 15)
    for par in (ParallelConfig(chunk=12), ParallelConfig(devices=4, chunk=3))]
out["mpc_diff"] = float(np.max(np.abs(np.asarray(loops[0].controls - loops[1].controls))))
# the native MuJoCo engine: a host callback per device shard, and a batch of seeds
hop = get_task("hopper").make(horizon=4, seed=0, engine="mujoco")
tiny = mbd.MBDConfig(num_samples=13, num_steps=3)
hz = jax.random.uniform(jax.random.key(4), (13, *hop.shape), minval=-1.0, maxval=1.0)
h1 = np.asarray(jax.jit(mbd.make_evaluator(hop).evaluate)(hz).reward)
h4 = np.asarray(jax.jit(mbd.make_evaluator(hop, ParallelConfig(devices=4)).evaluate)(hz).reward)
out["native_eval_bitwise"] = bool(np.array_equal(h1, h4))
out["native_solve_diff"] = diff(ParallelConfig(devices=4), hop, tiny,
                                mbd.make_solver(hop, tiny).solve(key))
hinst = [get_task("hopper").make(horizon=4, seed=s, engine="mujoco").instance() for s in range(3)]
hb = mbd.make_solver(hop, tiny).solve.batch(keys, hinst)
hs = mbd.make_solver(hop, tiny).solve(keys[2], instance=hinst[2])
out["native_batch_diff"] = float(np.max(np.abs(np.asarray(hb.z[2]) - np.asarray(hs.z))))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def sharded_results() -> dict:
    return _run_script(SHARDING_CHECKS, devices=4)


def test_every_sample_is_evaluated_bitwise_the_same_on_any_device_count(sharded_results):
    # 61 samples: 2, 4 and 3 devices pad the batch (to 62, 64, 63); 4 x chunk 4 too.
    assert sharded_results["eval_bitwise"] == [True, True, True, True]


def test_sharded_solves_agree_with_one_device(sharded_results):
    # Every device reduces the weights as one device does (only the B evaluations cross
    # devices), so the solves agree to float rounding: bitwise in most of these cases;
    # where XLA fuses a reduction differently (a padded batch, another program), the
    # last bits grow over the updates to ~1e-5, far below the sampling noise (0.1-0.6).
    d = dict(sharded_results["solve_diff"], car2d_demo=sharded_results["car2d_demo_diff"])
    for name, v in d.items():
        assert v < 1e-4, (name, d)


def test_baselines_batches_and_mpc_shard_too(sharded_results):
    for m, v in sharded_results["baselines"].items():
        assert v < 1e-4, (m, v)
    assert sharded_results["batch_diff"] < 1e-4
    assert sharded_results["mpc_diff"] < 1e-4


def test_native_engine_shards_and_batches_bitwise(sharded_results):
    # each device's shard calls MuJoCo on the host for its own samples: a sample's
    # rollout does not depend on which device or batch it is in (unlike XLA-compiled
    # physics, whose rounding follows the batch shape)
    assert sharded_results["native_eval_bitwise"]
    assert sharded_results["native_solve_diff"] == 0.0
    assert sharded_results["native_batch_diff"] == 0.0


def test_cli_devices_option_makes_virtual_cpu_devices(tmp_path):
    out = tmp_path / "plan"
    args = ["plan", "pendulum", "--num-samples", "16", "--num-steps", "5"]
    proc = subprocess.run(
        [sys.executable, "-m", "mbd.cli.main", *args, "--devices=4", "--quiet", f"--out={out}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["devices"] == 4


# ---------------------------------------------------------------------------------------
# Two hosts over loopback (two processes, one CPU device each)
# ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_agree_with_one(tmp_path: Path):
    args = ["plan", "pendulum", "--num-samples", "32", "--num-steps", "8", "--quiet"]
    port = _free_port()
    procs = []
    for pid in (0, 1):
        env = _env(
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(pid),
        )
        cmd = [sys.executable, "-m", "mbd.cli.main", *args, "--devices", "0"]
        procs.append(
            subprocess.Popen(
                [*cmd, "--out", str(tmp_path / f"two-{pid}")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert not (tmp_path / "two-1").exists()  # process 1 solves but writes nothing
    summary = json.loads((tmp_path / "two-0" / "summary.json").read_text())
    assert summary["devices"] == 2  # one CPU device per process

    single = subprocess.run(
        [sys.executable, "-m", "mbd.cli.main", *args, "--devices=2", f"--out={tmp_path}/one"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert single.returncode == 0, single.stderr[-3000:]
    two = np.load(tmp_path / "two-0" / "trajectory.npz")["z"]
    one = np.load(tmp_path / "one" / "trajectory.npz")["z"]
    np.testing.assert_array_equal(two, one)
    # stdout holds the --quiet reward alone: gloo's "[Gloo] Rank i is connected" lines,
    # which the CPU collectives print when the processes meet, are silenced
    assert outs[0][0].strip() == single.stdout.strip()
    assert outs[1][0] == ""  # process 1 says nothing
