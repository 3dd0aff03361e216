"""What a user sees: legends beside the data (never over it), labelled car2d axes, the
replay's caption for its orange markers, and a replay camera that frames the whole robot."""

from __future__ import annotations

import math
from importlib import resources
from types import SimpleNamespace

import jax
import numpy as np
import pytest

import mbd
from mbd import plotting
from mbd.bench import plot_curves
from mbd.sim import render


def _legends(fig) -> list:
    """The legends of the figure, of its subfigures and of its axes."""
    figs, out = [fig], []
    while figs:
        f = figs.pop()
        out += list(f.legends)
        figs += list(f.subfigs)
    return out + [ax.get_legend() for ax in fig.axes if ax.get_legend()]


def _assert_legends_clear_of_data(fig) -> None:
    """Every legend lies inside the figure and outside every axes, and covers no point of
    any plotted line (all in display coordinates, after the layout has run)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the figure is closed in pyplot; draw it again here
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = _legends(fig)
    assert legends, "the figure has no legend"
    for leg in legends:
        box = leg.get_window_extent(renderer)
        assert box.x0 >= fig.bbox.x0 - 1 and box.x1 <= fig.bbox.x1 + 1, "legend cut off"
        assert box.y0 >= fig.bbox.y0 - 1 and box.y1 <= fig.bbox.y1 + 1, "legend cut off"
        for ax in fig.axes:
            if not ax.get_visible() or not ax.axison:
                continue
            inter = box.intersection(box, ax.bbox)
            assert inter is None or inter.width * inter.height < 1.0, (
                f"legend {[t.get_text() for t in leg.get_texts()]} overlaps the axes "
                f"{ax.get_title()!r}: {box} vs {ax.bbox}"
            )
            for line in ax.get_lines():
                xy = ax.transData.transform(np.asarray(line.get_xydata(), float))
                xy = xy[np.all(np.isfinite(xy), axis=1)]
                inside = (
                    (xy[:, 0] > box.x0)
                    & (xy[:, 0] < box.x1)
                    & (xy[:, 1] > box.y0)
                    & (xy[:, 1] < box.y1)
                )
                assert not inside.any(), f"legend hides points of {line.get_label()!r}"


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for leg in _legends(fig) for t in leg.get_texts()]


def test_closed_loop_legend_does_not_hide_the_curves(tmp_path):
    # the shape of `mbd mpc pendulum`: the plant's reward swings through the whole
    # range while the prediction rises to the top right
    t = np.arange(60)
    rewards = -np.cos(0.2 * t) * np.linspace(1.0, 1.3, 60)
    predicted = np.linspace(-0.9, 0.9, 60)
    path = tmp_path / "reward.png"
    fig = plotting.plot_closed_loop(rewards, predicted, path, title="pendulum: closed loop")
    assert path.stat().st_size > 10_000
    _assert_legends_clear_of_data(fig)
    assert set(_legend_texts(fig)) == {
        "plant reward at step t",
        "planned mean reward over the horizon",
    }


def test_reward_and_realtime_legends_do_not_hide_the_curves(tmp_path):
    k = 30
    history = SimpleNamespace(
        reward_mean=np.linspace(-1, 1, k), reward_max=np.linspace(-0.5, 1.2, k)
    )
    fig = plotting.plot_reward(history, tmp_path / "reward.png", title="t")
    _assert_legends_clear_of_data(fig)
    times = np.linspace(0, 3, 90)
    result = SimpleNamespace(
        times=times,
        rewards=np.sin(3 * times),
        replans=[SimpleNamespace(read=s, ready=s + 0.02 + 0.01 * math.sin(s)) for s in times],
        deadline=0.025,
    )
    fig = plotting.plot_realtime(result, tmp_path / "realtime.png", title="t")
    _assert_legends_clear_of_data(fig)


def test_bench_curves_legend_does_not_hide_the_curves(tmp_path):
    runs = []
    for task in ("pendulum", "cartpole"):
        for j, method in enumerate(("mbd", "cem", "random")):
            for seed in range(2):
                h = np.linspace(-1.0, 1.0, 20) * (1 - 0.2 * j) + 0.05 * seed
                runs.append(
                    {"task": task, "method": method, "reward_history": h.tolist(), "seed": seed}
                )
    path = tmp_path / "curves.png"
    fig = plot_curves(runs, path)
    assert path.stat().st_size > 10_000
    _assert_legends_clear_of_data(fig)
    assert len(_legends(fig)) == 1  # one legend for every panel: a method's colour is fixed
    assert sorted(_legend_texts(fig)) == ["cem", "mbd", "random"]


def test_car2d_plan_has_axis_units_and_a_legend_for_everything(tmp_path):
    from mbd.tasks import car2d

    problem = car2d.make(horizon=10, demo=True)
    xy = np.stack([np.linspace(-0.5, 0.5, 10), np.linspace(0.0, 0.9, 10)], axis=1)
    result = SimpleNamespace(
        states=np.concatenate([xy, np.zeros((10, 1))], axis=1),
        reward=0.25,
        history=SimpleNamespace(reward_mean=np.linspace(0, 0.5, 8), reward_max=np.ones(8)),
    )
    path = tmp_path / "plan.png"
    fig = plotting.plot_car2d(problem, result, path)
    assert path.stat().st_size > 10_000
    ax = fig.axes[0]
    assert ax.get_xlabel() == "x (m)" and ax.get_ylabel() == "y (m)"
    texts = _legend_texts(fig)
    for entry in ("planned path", "obstacle", "start", "goal", "RRT demonstration"):
        assert any(entry in t for t in texts), (entry, texts)
    assert any("r = 0.3 m" in t for t in texts)
    assert "time (s)" in [a.get_ylabel() for a in fig.axes]  # the colour bar
    for a in fig.axes:
        if a.get_lines():  # every data panel has labelled axes
            assert a.get_xlabel() and a.get_ylabel()
    _assert_legends_clear_of_data(fig)
    # without a demonstration there is no demonstration entry
    plain = car2d.make(horizon=10)
    fig = plotting.plot_car2d(plain, result, tmp_path / "plain.png")
    assert not any("RRT" in t for t in _legend_texts(fig))


# --------------------------------------------------------------------------- the replay


def _one_ball_model():
    mujoco = pytest.importorskip("mujoco")
    return mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><body name="ball"><freejoint/>'
        '<geom type="sphere" size="0.1"/></body></worldbody></mujoco>'
    )


def test_replay_captions_its_orange_markers_only_when_there_are_markers():
    m = _one_ball_model()
    frames = 3
    pos = np.full((frames, 1, 3), [0.0, 0.0, 0.5])
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (frames, 1, 1))
    markers = np.full((frames, 2, 3), [0.2, 0.0, 0.5])
    label = "mocap <reference> of the torso"
    page = render.html(render.scene_data(m, pos, quat, 0.1, markers=markers, marker_label=label))
    assert 'id="marker-legend"' in page
    assert "orange diamonds: mocap &lt;reference&gt; of the torso" in page  # escaped
    page = render.html(render.scene_data(m, pos, quat, 0.1, markers=markers))
    assert f"orange diamonds: {render.MARKER_LABEL}".replace("'", "&#x27;") in page
    page = render.html(render.scene_data(m, pos, quat, 0.1))
    assert 'id="marker-legend"' not in page and "orange diamonds" not in page
    # the swatch is the colour the viewer paints the diamonds in
    viewer = resources.files("mbd.sim").joinpath("viewer.html").read_text()
    assert "const r = 0.05, c = [1.0, 0.55, 0.1, 1];" in viewer
    assert render.MARKER_COLOR == f"#ff{round(0.55 * 255):02x}{round(0.1 * 255):02x}"


def test_humanoidjog_replay_names_its_markers_the_mocap_reference(monkeypatch, tmp_path):
    from mbd.tasks import robots

    seen = {}
    monkeypatch.setattr(render, "save_html", lambda *a, **kw: seen.update(kw))
    robots.render(SimpleNamespace(name="humanoidjog"), None, tmp_path / "render.html")
    assert "mocap reference" in seen["marker_label"]
    assert all(b in seen["marker_label"] for b in ("torso", "thighs", "shins"))
    robots.render(SimpleNamespace(name="ant"), None, tmp_path / "render.html")
    assert seen["marker_label"] == render.MARKER_LABEL


def test_camera_constants_match_the_viewer():
    viewer = resources.files("mbd.sim").joinpath("viewer.html").read_text()
    assert f"Math.tan(0.5 * {render.VIEWER_FOV})" in viewer
    assert f"az: {render.VIEWER_AZIMUTH}, el: {render.VIEWER_ELEVATION}," in viewer
    assert "dist: D.camera_distance" in viewer and "D.track_height" in viewer


def test_camera_distance_by_hand():
    # one point 1 m above the target, no radius: d = 1 / sin(0.4) = 2.5679
    d = render.camera_distance(
        np.array([[[0.0, 0.0, 1.0]]]), np.zeros(1), np.zeros((1, 3)), 0.8, 1.0
    )
    assert d == pytest.approx(1.0 / math.sin(0.4)) and d == pytest.approx(2.5679, abs=1e-4)
    # a ball of radius 0.5 whose centre is 0.5 m away (in the second frame) reaches as far
    pts = np.array([[[0.0, 0.0, 0.0]], [[0.5, 0.0, 0.0]]])
    d2 = render.camera_distance(pts, np.array([0.5]), np.zeros((2, 3)), 0.8, 1.0)
    assert d2 == pytest.approx(d)
    # the margin scales it; the minimum bounds it below
    assert render.camera_distance(pts, np.array([0.5]), np.zeros((2, 3))) == pytest.approx(1.15 * d)
    assert render.camera_distance(pts * 0, np.zeros(1), np.zeros((2, 3))) == 0.5
    # the projection: the target lands in the centre of an 800 x 600 canvas, and a point
    # d tan(0.4) above it (at the target's depth) on the top edge
    up = np.cross([-math.sin(-0.6), math.cos(-0.6), 0.0], -np.array(
        [math.cos(0.35) * math.cos(-0.6), math.cos(0.35) * math.sin(-0.6), math.sin(0.35)]
    ))  # fmt: skip
    px = render.project(np.array([[0.0, 0.0, 0.0], d * math.tan(0.4) * up]), np.zeros(3), d)
    np.testing.assert_allclose(px[0], [400.0, 300.0, d], atol=1e-9)
    np.testing.assert_allclose(px[1, :2], [400.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("size", [(800, 600), (600, 600)])
def test_camera_distance_keeps_a_sphere_in_view_from_any_side(size):
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(2000, 3))
    pts = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)  # the unit sphere
    target = np.array([0.3, -0.2, 0.7])
    d = render.camera_distance(pts[None] + target, np.zeros(len(pts)), target[None], margin=1.0)
    for az in np.linspace(-np.pi, np.pi, 7):
        for el in (-1.0, 0.0, 0.35, 1.2):
            px = render.project(pts + target, target, d, *size, azimuth=az, elevation=el)
            assert np.all(px[:, 2] > 0.05)
            assert np.all((px[:, 0] >= 0) & (px[:, 0] <= size[0]))
            assert np.all((px[:, 1] >= 0) & (px[:, 1] <= size[1]))


def _world_vertices(data: dict, pos: np.ndarray, quat: np.ndarray, f: int) -> np.ndarray:
    """Every vertex the viewer draws for the robot's bodies in frame f, (V, 3)."""
    out = [pos[f]]
    for g in data["geoms"]:
        if g["body"] < 0:
            continue
        v = np.asarray(g["v"]).reshape(-1, 3)
        local = render.quat_rotate(g["quat"], v) + g["pos"]
        out.append(render.quat_rotate(quat[f, g["body"]], local) + pos[f, g["body"]])
    return np.concatenate(out)


@pytest.mark.parametrize("size", [(800, 600), (600, 600)])
def test_ant_replay_camera_frames_every_body_and_foot(size):
    pytest.importorskip("mujoco")
    from mbd.tasks import get_task

    problem = get_task("ant").make(horizon=20, seed=0, engine="mujoco")
    z = jax.random.uniform(jax.random.key(0), problem.shape, minval=-1.0, maxval=1.0)
    ro = jax.jit(lambda z: mbd.rollout(problem, problem.controls(z)))(z)
    ro = jax.tree_util.tree_map(np.asarray, ro)
    data = render.problem_scene(problem, ro)
    nf, nb = data["num_frames"], data["num_bodies"]
    pos = np.asarray(data["pos"]).reshape(nf, nb, 3)
    quat = np.asarray(data["quat"]).reshape(nf, nb, 4)
    targets = render.camera_targets(pos, data["track"])
    np.testing.assert_allclose(targets[:, 2], data["track_height"], atol=1e-3)
    w, h = size
    for f in range(nf):
        pts = _world_vertices(data, pos, quat, f)
        px = render.project(pts, targets[f], data["camera_distance"], w, h)
        assert np.all(px[:, 2] > 0.05), f"frame {f}: a vertex behind the near plane"
        assert np.all((px[:, 0] >= 0) & (px[:, 0] <= w)), f"frame {f}: cut at a side"
        assert np.all((px[:, 1] >= 0) & (px[:, 1] <= h)), f"frame {f}: cut at top or bottom"
    # the ant's feet (the spheres at the ends of its legs) reach beyond its body origins
    reach = np.linalg.norm(_world_vertices(data, pos, quat, 0) - targets[0], axis=1).max()
    assert reach > np.linalg.norm(pos[0] - targets[0], axis=1).max() + 0.3
