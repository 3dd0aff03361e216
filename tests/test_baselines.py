"""Baselines behind MBD's solver interface: shapes, hand-computed updates, comparisons."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbd import ConfigError, MBDConfig, MBDResult, Objective
from mbd.baselines import (
    CEMConfig,
    CMAESConfig,
    MPPIConfig,
    RandomConfig,
    get_method,
    iterations_of,
    list_methods,
    make_cem,
    make_cmaes,
    make_mppi,
    make_random,
    method_config,
)
from mbd.baselines._common import rank_samples
from mbd.baselines.mppi import noise_stds
from mbd.solver import Evaluation
from mbd.tasks import get_task

TOY_TASKS = {"pointmass": 4, "twobasins": 6, "car2d": 4}  # name -> tiny horizon
METHODS = [m.name for m in list_methods()]


def _spec(name):
    spec = get_method(name)
    if not spec.available():
        pytest.skip(f"{name} needs {spec.requires}")
    return spec


def _loop(solver, key, guess=None):
    """The solve written as a Python loop over jitted steps, keys split as solve does."""
    k_init, k_steps = jax.random.split(key)
    state = solver.init(k_init, guess)
    step = jax.jit(solver.step)
    infos = []
    for k in jax.random.split(k_steps, solver.num_updates):
        state, info = step(k, state)
        infos.append(info)
    return state, infos


@pytest.mark.parametrize("task_name", list(TOY_TASKS))
@pytest.mark.parametrize("method", METHODS)
def test_every_method_every_toy_task_loop_and_scan(method, task_name):
    spec = _spec(method)
    task = get_task(task_name)
    problem = task.make(horizon=TOY_TASKS[task_name])
    cfg = method_config(method, task.config, num_samples=8, num_iterations=3)
    solver = spec.make(problem, cfg)
    T, nu = problem.shape
    assert solver.num_updates == 3 and solver.shape == (T, nu)

    key = jax.random.key(3)
    res = solver.solve(key)  # the whole solve: one jitted lax.scan
    assert isinstance(res, MBDResult)
    assert res.z.shape == (T, nu) and res.solution.shape == (T, nu)
    assert res.rewards.shape == (T,)
    assert np.all(np.abs(np.asarray(res.z)) <= 1.0)
    assert np.isfinite(float(res.reward)) and np.isfinite(float(res.violation))
    for field in res.history:
        assert np.asarray(field).shape == (3,)
    for name in ("reward_mean", "feasible_fraction", "valid_fraction", "ess", "noise_std"):
        assert np.all(np.isfinite(np.asarray(getattr(res.history, name)))), name
    np.testing.assert_allclose(
        float(res.reward), float(np.mean(np.asarray(res.rewards))), rtol=1e-5, atol=1e-6
    )

    if task_name == "car2d":
        return  # the loop is checked on the cheaper toys (car2d compiles slowly on a CPU)
    # Python loop over step: the same history as the scan.
    _, infos = _loop(solver, key)
    loop_mean = np.array([float(i.reward_mean) for i in infos])
    np.testing.assert_allclose(loop_mean, np.asarray(res.history.reward_mean), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_solve_is_bit_identical_when_repeated(method):
    spec = _spec(method)
    task = get_task("pointmass")
    problem = task.make(horizon=5)
    cfg = method_config(method, task.config, num_samples=8, num_iterations=3)
    a = spec.make(problem, cfg).solve(jax.random.key(7))
    b = spec.make(problem, cfg).solve(jax.random.key(7))  # a fresh build, same seed
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_initial_guess_is_the_starting_mean():
    problem = get_task("pointmass").make(horizon=4)
    guess = jnp.full((4, 2), 0.3)
    for make, cfg in (
        (make_cem, CEMConfig(num_samples=4, num_iterations=1)),
        (make_mppi, MPPIConfig(num_samples=4, num_iterations=1)),
    ):
        st = make(problem, cfg).init(jax.random.key(0), guess)
        np.testing.assert_array_equal(np.asarray(st.mean), np.asarray(guess))
    with pytest.raises(ValueError, match="shape"):
        make_cem(problem, CEMConfig(num_samples=4, num_iterations=1)).init(
            jax.random.key(0), jnp.zeros((3, 2))
        )


# ---------------------------------------------------------------------------------------
# Hand-computed updates (tiny batches, samples reproduced from the same key)
# ---------------------------------------------------------------------------------------


def _quadratic(center=(0.2, -0.1)):
    c = jnp.asarray(center)
    return Objective(fn=lambda y: -jnp.sum((y - c) ** 2), shape=(2,))


def test_rank_samples_hand_case():
    ev = Evaluation(
        reward=jnp.array([1.0, 3.0, 2.0, jnp.nan, 5.0]),
        violation=jnp.array([0.0, 0.5, 0.0, 0.0, 0.2]),
        demo_loglik=None,
    )
    r = rank_samples(ev)
    # feasible by reward (2 then 0), infeasible by violation (4 then 1), invalid last (3)
    assert list(np.asarray(r.order)) == [2, 0, 4, 1, 3]
    assert not bool(r.fallback)
    ev2 = Evaluation(jnp.array([1.0, 2.0]), jnp.array([0.3, 0.1]), None)
    r2 = rank_samples(ev2)
    assert bool(r2.fallback) and list(np.asarray(r2.order)) == [1, 0]


def test_cem_update_hand_computed():
    obj = _quadratic()
    cfg = CEMConfig(num_samples=4, num_iterations=1, elite_fraction=0.5, init_std=0.5)
    solver = make_cem(obj, cfg)
    st = solver.init(jax.random.key(0))
    key = jax.random.key(11)
    new, info = solver.step(key, st)
    x = 0.5 * np.asarray(jax.random.normal(key, (4, 2), jnp.float32))  # mean 0, std 0.5
    r = -np.sum((x - np.array([0.2, -0.1])) ** 2, axis=1)
    elites = x[np.argsort(-r)[:2]]
    np.testing.assert_allclose(np.asarray(new.mean), elites.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(new.std), elites.std(0), rtol=1e-5, atol=1e-6)
    assert float(info.reward_max) == pytest.approx(r.max(), rel=1e-5)
    assert float(info.reward_mean) == pytest.approx(r.mean(), rel=1e-5)
    assert float(info.ess) == 2.0
    assert np.isnan(float(info.temperature))  # CEM weighs by rank, with no lambda
    # smoothing 0.5 and a std floor
    cfg2 = dataclasses.replace(cfg, smoothing=0.5, min_std=0.3)
    new2, _ = make_cem(obj, cfg2).step(key, st)
    np.testing.assert_allclose(np.asarray(new2.mean), 0.5 * elites.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(new2.std), 0.25 + 0.5 * np.maximum(elites.std(0), 0.3), rtol=1e-5
    )


@pytest.mark.parametrize("normalize", ["zscore", "none"])
def test_mppi_update_hand_computed(normalize):
    obj = _quadratic()
    cfg = MPPIConfig(
        num_samples=5, num_iterations=1, temperature=0.5, noise_std=0.4, normalize=normalize
    )
    solver = make_mppi(obj, cfg)
    st = solver.init(jax.random.key(0), jnp.array([0.1, 0.1]))
    key = jax.random.key(5)
    new, info = solver.step(key, st)
    x = np.array([0.1, 0.1]) + 0.4 * np.asarray(jax.random.normal(key, (5, 2), jnp.float32))
    r = -np.sum((x - np.array([0.2, -0.1])) ** 2, axis=1)
    s = (r - r.mean()) / r.std() if normalize == "zscore" else r
    w = np.exp((s - s.max()) / 0.5)
    w /= w.sum()
    np.testing.assert_allclose(np.asarray(new.mean), w @ x, rtol=1e-5, atol=1e-6)
    assert float(info.ess) == pytest.approx(1.0 / np.sum(w**2), rel=1e-4)
    assert float(info.noise_std) == pytest.approx(0.4)
    assert float(info.temperature) == np.float32(0.5)  # the lambda it weighed with


def test_mppi_noise_schedules():
    lin = noise_stds(MPPIConfig(num_iterations=5, noise_std=0.5, noise_std_final=0.1,
                                noise_schedule="linear"))  # fmt: skip
    np.testing.assert_allclose(lin, [0.5, 0.4, 0.3, 0.2, 0.1], rtol=1e-6)
    exp = noise_stds(MPPIConfig(num_iterations=3, noise_std=0.4, noise_std_final=0.1,
                                noise_schedule="exponential"))  # fmt: skip
    np.testing.assert_allclose(exp, [0.4, 0.2, 0.1], rtol=1e-6)
    np.testing.assert_allclose(noise_stds(MPPIConfig(num_iterations=2, noise_std=0.3)), [0.3, 0.3])


def test_random_shooting_returns_the_best_sample():
    obj = Objective(fn=lambda y: -jnp.sum((y - 0.5) ** 2), shape=(3,), low=-1.0, high=1.0)
    solver = make_random(obj, RandomConfig(num_samples=6, num_iterations=2))
    res = solver.solve(jax.random.key(4))
    _, k_steps = jax.random.split(jax.random.key(4))
    xs = np.concatenate(
        [
            np.asarray(jax.random.uniform(k, (6, 3), jnp.float32, -1.0, 1.0))
            for k in jax.random.split(k_steps, 2)
        ]
    )
    r = -np.sum((xs - 0.5) ** 2, axis=1)
    np.testing.assert_allclose(np.asarray(res.z), xs[np.argmax(r)], rtol=1e-6)
    assert float(res.reward) == pytest.approx(r.max(), rel=1e-5)


def test_cmaes_mean_update_hand_computed():
    pytest.importorskip("evosax")
    obj = _quadratic()
    n, d = 6, 2
    for variant in ("full", "separable"):
        cfg = CMAESConfig(num_samples=n, num_iterations=1, init_std=0.3, variant=variant)
        solver = make_cmaes(obj, cfg)
        st = solver.init(jax.random.key(0))
        key = jax.random.key(9)
        new, _ = solver.step(key, st)
        k_ask, _ = jax.random.split(key)
        x = 0.3 * np.asarray(jax.random.normal(k_ask, (n, d)))  # C = I: x = m + sigma z
        r = -np.sum((x - np.array([0.2, -0.1])) ** 2, axis=1)
        # Hansen (2016) Eq. 41-42 with c_m = 1: m' = sum_{i <= mu} w_i x_{i:lambda}
        w_prime = np.log((n + 1) / 2) - np.log(np.arange(1, n + 1))
        mu = n // 2
        w = w_prime[:mu] / w_prime[:mu].sum()
        expected = w @ x[np.argsort(-r)[:mu]]
        np.testing.assert_allclose(np.asarray(new.es.mean), expected, rtol=1e-4, atol=1e-5)


def test_cmaes_variant_choice_by_memory():
    cfg = CMAESConfig(max_covariance_mb=1.0)
    assert cfg.resolved_variant(200) == "full"  # 3 * 4 * 200^2 B = 0.46 MiB
    assert cfg.resolved_variant(400) == "separable"  # 1.8 MiB
    assert CMAESConfig(variant="separable").resolved_variant(2) == "separable"


@pytest.mark.parametrize("method", ["cem", "mppi", "cmaes"])
def test_baselines_improve_on_a_quadratic(method):
    spec = _spec(method)
    obj = Objective(fn=lambda y: -jnp.sum((y - 0.4) ** 2), shape=(4,), low=-1.0, high=1.0)
    cfg = method_config(method, MBDConfig(num_samples=64, num_steps=31))
    if method == "mppi":
        cfg = dataclasses.replace(cfg, noise_schedule="exponential")
    res = spec.make(obj, cfg).solve(jax.random.key(0))
    start = -4 * 0.4**2  # the initial guess (zeros)
    bound = -1e-3
    assert float(res.reward) > bound > start


# ---------------------------------------------------------------------------------------
# Configs and the registry
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (CEMConfig, "num_samples", 0),
        (CEMConfig, "elite_fraction", 0.0),
        (CEMConfig, "elite_fraction", 1.5),
        (CEMConfig, "smoothing", 1.0),
        (CEMConfig, "min_std", -0.1),
        (MPPIConfig, "temperature", 0.0),
        (MPPIConfig, "noise_std", math.nan),
        (MPPIConfig, "noise_schedule", "cosine"),
        (MPPIConfig, "num_iterations", 0),
        (CMAESConfig, "num_samples", 1),
        (CMAESConfig, "variant", "diagonal"),
        (CMAESConfig, "init_std", -1.0),
        (RandomConfig, "distribution", "sobol"),
        (RandomConfig, "num_samples", True),
    ],
)
def test_configs_reject_bad_values(cls, field, value):
    with pytest.raises(ConfigError) as e:
        cls(**{field: value})
    assert e.value.field == field


def test_method_config_gives_every_method_the_same_budget():
    task_cfg = MBDConfig(num_samples=100, num_steps=40, temperature=0.3)
    cfgs = {m: method_config(m, task_cfg) for m in METHODS}
    assert {iterations_of(c) for c in cfgs.values()} == {39}
    assert {c.num_samples for c in cfgs.values()} == {100}
    assert cfgs["mppi"].temperature == 0.3
    over = {m: method_config(m, task_cfg, num_samples=16, num_iterations=5) for m in METHODS}
    assert {iterations_of(c) for c in over.values()} == {5}
    assert over["mbd"].num_steps == 6
    paper = method_config("mbd", dataclasses.replace(task_cfg, reading="paper"), num_iterations=5)
    assert paper.num_updates == 5
    with pytest.raises(ConfigError, match="elite_fraction"):
        method_config("cem", task_cfg, elite_fraction=2.0)
    with pytest.raises(ConfigError, match="temperature"):
        method_config("cem", task_cfg, temperature=1.0)  # not a CEM option
    with pytest.raises(KeyError, match="known methods"):
        get_method("ppo-lite")


# ---------------------------------------------------------------------------------------
# MBD against CEM and MPPI on a multimodal problem, equal budget, over seeds
# ---------------------------------------------------------------------------------------


def test_mbd_beats_cem_and_mppi_on_two_basins():
    """twobasins: a near shallow basin and a far narrow high one (``mbd.tasks.toys``).

    Same budget for all (64 samples x 49 iterations, horizon 30, zeros as the guess), 16
    seeds. A one-sided sign test on the paired seeds must reject "no better" at 1 %, and
    the median paired gain must be positive.
    """
    task = get_task("twobasins")
    problem = task.make(horizon=30)
    keys = jax.random.split(jax.random.key(1), 16)
    rewards = {}
    for m in ("mbd", "cem", "mppi"):
        cfg = method_config(m, task.config, num_samples=64, num_iterations=49)
        solve = get_method(m).make(problem, cfg).solve
        res = jax.jit(jax.vmap(solve))(keys)  # the whole solve vmaps over seeds
        assert res.z.shape == (16, 30, 1)
        rewards[m] = np.asarray(res.reward)
    for other in ("cem", "mppi"):
        gain = rewards["mbd"] - rewards[other]
        wins = int(np.sum(gain > 0))
        p_value = sum(math.comb(16, k) for k in range(wins, 17)) / 2**16
        assert p_value < 0.01, (other, wins, rewards)
        assert np.median(gain) > 0.05, (other, gain)
