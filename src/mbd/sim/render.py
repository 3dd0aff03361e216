"""Self-contained HTML replays of planned trajectories (``DIR/render.html``).

The page holds the model's geometry (triangle meshes built here from the MuJoCo model
that Brax and MJX both carry), the body poses of every control step, and a small viewer
(``viewer.html`` beside this file: a perspective camera on a 2-D canvas; drag to orbit,
wheel to zoom, play/pause and a time slider). It loads nothing from the network.

Why not Brax's own ``brax.io.html``: its page imports three.js, lil-gui and pako from
public CDNs, which Brax does not ship, so it shows nothing offline; copying those
libraries into this package was not an option. The data it shows is the same: the
model's geoms in their body frames and the body poses ``x.pos`` / ``x.rot`` per step.
A problem with a demonstration of 3-D positions (humanoidjog ``--demo``) also shows the
reference points as orange diamonds, and a caption on the page says what they are.

The camera follows the tracked body at the distance :func:`camera_distance` gives: far
enough that every drawn geom of every body stays in view over the whole replay.
"""

from __future__ import annotations

import html as html_lib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

# MuJoCo geom types (mjtGeom).
PLANE, HFIELD, SPHERE, CAPSULE, ELLIPSOID, CYLINDER, BOX, MESH = range(8)

# The viewer's camera (viewer.html): vertical field of view (rad), and the azimuth and
# elevation it starts at (rad).
VIEWER_FOV = 0.8
VIEWER_AZIMUTH = -0.6
VIEWER_ELEVATION = 0.35
MARKER_LABEL = "the demonstration's reference positions at this step"
MARKER_COLOR = "#ff8c1a"  # the diamonds' colour in viewer.html


def _lathe(rings: list[tuple[float, float]], rx: float, ry: float, rz: float, segs: int = 12):
    """Surface of revolution about z from rings (polar angle theta, z offset)."""
    verts = []
    for th, off in rings:
        for j in range(segs):
            ph = 2 * np.pi * j / segs
            verts.append(
                [rx * np.sin(th) * np.cos(ph), ry * np.sin(th) * np.sin(ph), rz * np.cos(th) + off]
            )
    faces = []
    for i in range(len(rings) - 1):
        for j in range(segs):
            a, b = i * segs + j, i * segs + (j + 1) % segs
            faces += [[a, a + segs, b], [b, a + segs, b + segs]]
    return np.array(verts), np.array(faces)


def _sphere(rx: float, ry: float, rz: float, n: int = 6):
    return _lathe([(np.pi * i / n, 0.0) for i in range(n + 1)], rx, ry, rz)


def _capsule(r: float, half: float, n: int = 3):
    """Capsule along z: a hemisphere at +half, one at -half, and the band between."""
    top = [(0.5 * np.pi * i / n, half) for i in range(n + 1)]
    bottom = [(0.5 * np.pi * (1 + i / n), -half) for i in range(n + 1)]
    return _lathe(top + bottom, r, r, r)


def _cylinder(r: float, half: float, segs: int = 12):
    ang = 2 * np.pi * np.arange(segs) / segs
    ring = np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)
    top = np.concatenate([ring, np.full((segs, 1), half)], axis=1)
    bot = np.concatenate([ring, np.full((segs, 1), -half)], axis=1)
    v = np.concatenate([top, bot, [[0, 0, half], [0, 0, -half]]])
    f = []
    for j in range(segs):
        a, b = j, (j + 1) % segs
        f += [[a, segs + a, b], [b, segs + a, segs + b], [2 * segs, a, b]]
        f += [[2 * segs + 1, segs + b, segs + a]]
    return v, np.array(f)


def _box(hx: float, hy: float, hz: float):
    s = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    v = s * np.array([hx, hy, hz])
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    f = [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
    return v, np.array(f)


def geom_mesh(m: Any, i: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Triangle mesh of geom ``i`` of a ``mujoco.MjModel`` in its geom frame.

    Args:
        m: the model.
        i: geom index.

    Returns:
        (vertices (V, 3), faces (F, 3) int), or None for planes and height fields
        (planes are drawn as the viewer's floor).
    """
    t = int(m.geom_type[i])
    s = np.asarray(m.geom_size[i], float)
    if t == SPHERE:
        return _sphere(s[0], s[0], s[0])
    if t == ELLIPSOID:
        return _sphere(s[0], s[1], s[2])
    if t == CAPSULE:
        return _capsule(s[0], s[1])
    if t == CYLINDER:
        return _cylinder(s[0], s[1])
    if t == BOX:
        return _box(*s[:3])
    if t == MESH:
        k = int(m.geom_dataid[i])
        va, nv = int(m.mesh_vertadr[k]), int(m.mesh_vertnum[k])
        fa, nf = int(m.mesh_faceadr[k]), int(m.mesh_facenum[k])
        return np.asarray(m.mesh_vert[va : va + nv]), np.asarray(m.mesh_face[fa : fa + nf])
    return None


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotates vectors by unit quaternions (w, x, y, z), as the viewer does.

    Args:
        q: quaternions, shape (..., 4).
        v: vectors, shape (..., 3) (broadcast against ``q``'s leading axes).

    Returns:
        The rotated vectors, shape of the broadcast (..., 3).
    """
    q = np.asarray(q, np.float64)
    v = np.asarray(v, np.float64)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def camera_targets(pos: np.ndarray, track: int) -> np.ndarray:
    """The point the viewer's camera looks at in each frame while it follows a body.

    Args:
        pos: body positions per frame, (F, B, 3).
        track: the followed body (index into B).

    Returns:
        (F, 3): the tracked body's x and y, and the mean height of all bodies over the
        replay (the viewer's ``track_height``).
    """
    pos = np.asarray(pos, np.float64)
    target = np.empty((pos.shape[0], 3))
    target[:, :2] = pos[:, track, :2]
    target[:, 2] = np.mean(pos[:, :, 2])
    return target


def camera_distance(
    points: np.ndarray,
    radii: np.ndarray,
    targets: np.ndarray,
    fov: float = VIEWER_FOV,
    margin: float = 1.15,
    minimum: float = 0.5,
) -> float:
    """Camera distance that keeps every ball (point, radius) of every frame in view.

    The balls lie within R = max_f,k |p_fk - c_f| + r_k of the frame's target c_f. A
    camera at distance d >= R / sin(fov / 2) from the target sees that whole sphere inside
    a cone of half-angle fov / 2 around its axis, from any azimuth and elevation, so the
    picture holds the robot in every frame (on a canvas at least as wide as it is tall:
    the vertical field of view is the narrower one).

    Args:
        points: ball centres per frame, (F, N, 3).
        radii: their radii, (N,).
        targets: the camera's target per frame, (F, 3).
        fov: the vertical field of view, rad.
        margin: factor on the distance, room around the robot (>= 1).
        minimum: the smallest distance returned.

    Returns:
        The distance d = max(minimum, margin * R / sin(fov / 2)).
    """
    points = np.asarray(points, np.float64)
    radii = np.asarray(radii, np.float64)
    if points.size == 0:
        return float(minimum)
    reach = np.linalg.norm(points - np.asarray(targets, np.float64)[:, None, :], axis=-1)
    r = float(np.max(reach + radii[None, :]))
    return float(max(minimum, margin * r / np.sin(0.5 * fov)))


def project(
    points: np.ndarray,
    target: np.ndarray,
    distance: float,
    width: int = 800,
    height: int = 600,
    azimuth: float = VIEWER_AZIMUTH,
    elevation: float = VIEWER_ELEVATION,
    fov: float = VIEWER_FOV,
) -> np.ndarray:
    """The viewer's perspective projection of world points to canvas pixels.

    Args:
        points: world points, (N, 3).
        target: the camera's target, (3,).
        distance: camera distance to the target.
        width: canvas width in pixels.
        height: canvas height in pixels.
        azimuth: camera azimuth, rad.
        elevation: camera elevation, rad.
        fov: vertical field of view, rad.

    Returns:
        (N, 3): pixel column, pixel row (0 at the top) and depth along the view axis.
    """
    ce, se, ca, sa = np.cos(elevation), np.sin(elevation), np.cos(azimuth), np.sin(azimuth)
    eye = np.asarray(target, np.float64) + distance * np.array([ce * ca, ce * sa, se])
    fwd = np.array([-ce * ca, -ce * sa, -se])
    right = np.array([-sa, ca, 0.0])
    up = np.cross(right, fwd)
    d = np.asarray(points, np.float64) - eye
    z = d @ fwd
    focal = 0.5 * height / np.tan(0.5 * fov)
    return np.stack(
        [0.5 * width + focal * (d @ right) / z, 0.5 * height - focal * (d @ up) / z, z], -1
    )


def scene_data(
    m: Any,
    pos: np.ndarray,
    quat: np.ndarray,
    dt: float,
    rewards: np.ndarray | None = None,
    title: str = "",
    track: str | None = None,
    markers: np.ndarray | None = None,
    marker_label: str = MARKER_LABEL,
) -> dict:
    """The JSON the viewer reads.

    Args:
        m: ``mujoco.MjModel`` (for Brax: ``sys.mj_model``).
        pos: body positions per frame, (F, nbody - 1, 3) (world body left out).
        quat: body orientations (w, x, y, z), (F, nbody - 1, 4).
        dt: seconds per frame (one control step).
        rewards: per-step rewards (F - 1,) shown beside the time.
        title: first line of the overlay.
        track: body the camera follows; the first body if None.
        markers: optional points drawn as small orange diamonds, (F, K, 3), e.g. a
            demonstration's reference positions.
        marker_label: what the diamonds are; the page's caption says so (when there are
            markers).

    Returns:
        A JSON-ready dict. ``camera_distance`` is :func:`camera_distance` of every
        drawn geom (its bounding ball), every body and every marker, over all frames,
        around the followed body.
    """
    pos = np.asarray(pos, np.float64)
    quat = np.asarray(quat, np.float64)
    nb = pos.shape[1]
    if quat.shape[:2] != pos.shape[:2] or nb != m.nbody - 1:
        raise ValueError(
            f"poses for {nb} bodies of shapes {pos.shape}, {quat.shape}; the model has "
            f"{m.nbody - 1} bodies besides the world"
        )
    geoms, floor_z, floor = [], 0.0, False
    balls = []  # (body, centre in the body frame (3,), radius) of the geoms drawn on a body
    for i in range(m.ngeom):
        if int(m.geom_type[i]) == PLANE:
            floor, floor_z = True, float(m.geom_pos[i][2])
            continue
        mesh = geom_mesh(m, i)
        if mesh is None:
            continue
        rgba = np.asarray(m.geom_rgba[i], float)
        if rgba[3] <= 0:
            continue
        if np.allclose(rgba, [0.5, 0.5, 0.5, 1.0]):
            rgba = np.array([0.75, 0.6, 0.45, 1.0])
        v, f = mesh
        if int(m.geom_bodyid[i]) >= 1:
            radius = float(np.max(np.linalg.norm(v, axis=1))) if len(v) else 0.0
            balls.append((int(m.geom_bodyid[i]) - 1, np.asarray(m.geom_pos[i], float), radius))
        geoms.append(
            {
                "body": int(m.geom_bodyid[i]) - 1,
                "pos": np.round(m.geom_pos[i], 5).tolist(),
                "quat": np.round(m.geom_quat[i], 5).tolist(),
                "rgba": np.round(rgba, 3).tolist(),
                "v": np.round(v.ravel(), 4).tolist(),
                "f": np.asarray(f, int).ravel().tolist(),
            }
        )
    track_id = 0
    if track is not None:
        import mujoco

        track_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, track) - 1
    distance = 2.5
    if nb:
        points, radii = [pos], [np.zeros(nb)]
        if balls:
            body = np.array([b for b, _, _ in balls])
            offset = np.stack([o for _, o, _ in balls])
            points.append(pos[:, body] + quat_rotate(quat[:, body], offset))
            radii.append(np.array([r for _, _, r in balls]))
        if markers is not None and np.size(markers):
            mk = np.asarray(markers, np.float64)
            points.append(mk)
            radii.append(np.full(mk.shape[1], 0.05))
        distance = camera_distance(
            np.concatenate(points, axis=1),
            np.concatenate(radii),
            camera_targets(pos, int(track_id)),
        )
    has_markers = markers is not None and np.size(markers) > 0
    return {
        "title": title,
        "dt": float(dt),
        "num_frames": int(pos.shape[0]),
        "num_bodies": int(nb),
        "pos": np.round(pos.ravel(), 4).tolist(),
        "quat": np.round(quat.ravel(), 4).tolist(),
        "reward": [] if rewards is None else np.round(np.asarray(rewards), 4).tolist(),
        "geoms": geoms,
        "floor": floor,
        "floor_z": floor_z,
        "floor_tile": 0.5,
        "track": int(track_id) if nb else -1,
        "track_height": float(np.mean(pos[:, :, 2])) if nb else 0.0,
        "camera_distance": distance,
        "markers": np.round(np.asarray(markers), 4).tolist() if has_markers else [],
        "marker_label": marker_label if has_markers else "",
    }


def marker_caption(label: str) -> str:
    """The page's caption for the orange markers: a diamond swatch and what they are.

    Args:
        label: what the markers show (plain text; escaped here).

    Returns:
        An HTML ``div``, placed at the top right of the page.
    """
    return (
        '<div id="marker-legend" style="position:absolute;right:10px;top:8px;'
        "max-width:45%;padding:4px 8px;background:rgba(0,0,0,.45);border-radius:4px;"
        'text-shadow:0 0 3px #000"><span style="color:' + MARKER_COLOR + '">&#9670;</span> '
        f"orange diamonds: {html_lib.escape(label)}</div>"
    )


def html(data: dict) -> str:
    """The complete HTML page for :func:`scene_data`'s output.

    A scene with markers gets a caption (:func:`marker_caption`) naming them.
    """
    template = resources.files("mbd.sim").joinpath("viewer.html").read_text()
    if data.get("markers"):
        caption = marker_caption(data.get("marker_label") or MARKER_LABEL)
        template = template.replace('<div id="bar">', caption + '\n<div id="bar">', 1)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return template.replace("/*MBD_DATA*/", payload)


def problem_scene(
    problem, result, title: str = "", track: str | None = None, marker_label: str = MARKER_LABEL
) -> dict:
    """Scene data of a solved problem built by the Brax or MJX adapter.

    Args:
        problem: from :func:`~mbd.sim.brax_adapter.make_brax_problem` or
            :func:`~mbd.sim.mjx_adapter.make_mjx_problem`.
        result: its :class:`~mbd.solver.MBDResult` (or anything with ``states``,
            ``rewards``).
        title: overlay title.
        track: body the camera follows.
        marker_label: what the demonstration's reference points (orange diamonds) are.

    Returns:
        :func:`scene_data`'s dict.
    """
    from mbd.sim import brax_adapter, engines, mjx_adapter

    step = problem.step
    if isinstance(step, brax_adapter.BraxStep):
        env = getattr(step.env, "unwrapped", step.env)
        m = env.sys.mj_model
        pos, quat = brax_adapter.frames(problem, result.states)
        dt = float(env.dt)
    elif isinstance(step, mjx_adapter.MJXStep):
        m = step.mj_model
        pos, quat = mjx_adapter.frames(problem, result.states)
        dt = float(m.opt.timestep) * step.n_frames
    elif isinstance(step, engines.MuJoCoStep):
        m = step.mj_model
        pos, quat = engines.frames(problem, result.states)
        dt = step.dt
    else:
        raise TypeError("render needs a problem made by the Brax, MJX or MuJoCo-engine adapter")
    markers = None
    demo = problem.demo
    if demo is not None:
        ref = np.asarray(demo.reference, dtype=np.float64)
        if ref.ndim == 3 and ref.shape[-1] == 3 and ref.shape[0] == pos.shape[0] - 1:
            markers = np.concatenate([ref[:1], ref])  # frame 0 shows the first target
    return scene_data(m, pos, quat, dt, result.rewards, title, track, markers, marker_label)


def save_html(
    problem,
    result,
    path: str | Path,
    title: str = "",
    track: str | None = None,
    marker_label: str = MARKER_LABEL,
):
    """Writes ``render.html``: a self-contained 3-D replay of the planned trajectory.

    Args:
        problem: a problem from the Brax or MJX adapter.
        result: its :class:`~mbd.solver.MBDResult`.
        path: the HTML file to write.
        title: overlay title (default: the problem's name and the reward).
        track: body the camera follows (default: the first body).
        marker_label: what the demonstration's reference points are (the page's caption).
    """
    if not title:
        from mbd.plotting import fmt

        title = f"{problem.name}: reward {fmt(np.asarray(result.reward))}"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html(problem_scene(problem, result, title, track, marker_label)))


__all__ = [
    "camera_distance",
    "camera_targets",
    "geom_mesh",
    "html",
    "marker_caption",
    "problem_scene",
    "project",
    "quat_rotate",
    "save_html",
    "scene_data",
]
