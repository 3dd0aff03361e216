"""The car U-maze task: dynamics and reward by hand, the RRT demo, and MBD on it."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbd
from mbd.tasks import car2d, get_task, rrt


def test_straight_drive_matches_hand_computation():
    # Heading 3 pi / 2: x' = 3 u1 sin(theta) = -3 u1, y' = 3 u1 cos(theta) = 0.
    x1, r = car2d.step(jnp.asarray(car2d.START), jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(x1, [-0.8, 0.0, 1.5 * math.pi], atol=1e-5)
    assert float(r) == 0.0


def test_turning_matches_rk4_of_a_circle():
    # Constant steer and speed: a circle of radius v / omega; RK4 is accurate to 1e-6.
    x = jnp.array([0.0, -1.5, 0.0])
    u = jnp.array([1.0, 0.5])
    v, w = 1.5, 2 * math.pi / 3
    x1 = car2d.rk4(x, u)
    th = w * car2d.DT
    np.testing.assert_allclose(x1[2], th, rtol=1e-6)
    np.testing.assert_allclose(x1[0], v / w * (1 - math.cos(th)), atol=1e-6)
    np.testing.assert_allclose(x1[1], -1.5 + v / w * math.sin(th), atol=1e-6)


def test_collision_freezes_the_car():
    # From (0.5, 0) heading -x at full speed the car would end at (0.2, 0), inside the
    # disc at the origin (radius 0.3): the state must not move.
    x = jnp.array([0.5, 0.0, 1.5 * math.pi])
    x1, r = car2d.step(x, jnp.array([0.0, 1.0]))
    np.testing.assert_array_equal(x1, x)
    assert float(r) == 1.0
    g = car2d.collision_constraint(x, jnp.array([0.0, 1.0]))
    assert float(g[0]) == pytest.approx(0.1, abs=1e-5)


def test_reward_hand_values():
    offsets = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.2], [1.0, 1.0]])
    r = car2d.position_reward(jnp.asarray(car2d.GOAL + offsets))
    np.testing.assert_allclose(r, [1.0, 0.75, 0.0, 0.0], atol=1e-6)


def test_rrt_path_is_collision_free_and_connects():
    path = rrt.rrt(car2d.START[:2], car2d.GOAL, car2d.CENTERS, car2d.RADIUS, seed=0)
    assert path is not None
    np.testing.assert_allclose(path[0], car2d.START[:2])
    np.testing.assert_allclose(path[-1], car2d.GOAL)
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert np.all(seg <= 0.2 + 1e-9)
    for a, b in itertools.pairwise(path):
        assert rrt.segment_clear(a, b, car2d.CENTERS, car2d.RADIUS)


def test_segment_check_hand_cases():
    c = np.array([[0.0, 0.0]])
    assert not rrt.segment_clear(np.array([-1.0, 0.1]), np.array([1.0, 0.1]), c, 0.3)
    assert rrt.segment_clear(np.array([-1.0, 0.5]), np.array([1.0, 0.5]), c, 0.3)
    assert rrt.segment_clear(np.array([0.5, 0.0]), np.array([1.0, 0.0]), c, 0.3)


def test_demo_reference_shape_and_pace():
    ref = car2d.rrt_demo(50, seed=0)
    assert ref.shape == (50, 2)
    steps = np.linalg.norm(np.diff(np.concatenate([car2d.START[None, :2], ref]), axis=0), axis=1)
    assert np.all(steps <= car2d.DEMO_STEP + 1e-5)
    np.testing.assert_allclose(ref[-1], car2d.GOAL, atol=1e-6)
    assert np.all(np.asarray(car2d.clearance(jnp.asarray(ref))) > 0)


@pytest.fixture(scope="module")
def car_runs():
    """MBD with and without the demo on three fixed seeds (task's own config).

    These solves run long enough (2,048 samples x 100 steps) that XLA's optimizations,
    off in the rest of the suite (``conftest.py``), pay for their compile: on here.
    """
    cfg = get_task("car2d").config
    out = {}
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        for demo in (True, False):
            problem = car2d.make(demo=demo)
            solver = mbd.make_solver(problem, cfg)
            runs = [solver.solve(jax.random.key(s)) for s in range(3)]
            out[demo] = [(problem, jax.tree_util.tree_map(np.asarray, r)) for r in runs]
    finally:
        jax.config.update("jax_disable_most_optimizations", before)
    return out


def test_demo_reaches_goal_without_collision(car_runs):
    for problem, result in car_runs[True]:
        m = car2d.metrics(problem, result)
        assert m["reached_goal"], m
        assert m["collision_free"], m
        assert float(result.violation) == 0.0
        assert float(result.reward) > 0.15


def test_demo_beats_no_demo(car_runs):
    with_demo = [float(r.reward) for _, r in car_runs[True]]
    without = [float(r.reward) for _, r in car_runs[False]]
    for a, b in zip(with_demo, without, strict=True):
        assert a > b + 0.1, (with_demo, without)
