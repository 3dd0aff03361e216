"""What the live view draws of a problem: its bodies, their poses, its planned paths, and
how a push changes its state. No server here (see :mod:`mbd.view.live`).

Three kinds of problem:

- a model made by :func:`~mbd.sim.engines.make_mujoco_problem` (any engine): the MuJoCo
  model's geoms, posed by MuJoCo's kinematics from each state; the plan's path is that of
  the bodies the problem tracks (``bodies=``), else of the first body;
- a problem in pure JAX with a drawing (a :class:`Drawing`: an MJCF model for the eyes
  only and the map from a state to its ``qpos``), as the pendulum and cart-pole tasks have;
- any other problem: its state drawn as a point in 3-D (the state's first three numbers),
  and the plan as the path of that point; it cannot be pushed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from mbd.problem import Problem, PyTree


@dataclasses.dataclass(frozen=True)
class Drawing:
    """How to draw a problem whose model is not a MuJoCo model.

    Attributes:
        mjcf: an MJCF model of what to draw (its geoms; its dynamics are unused).
        qpos: ``qpos(state) -> (nq,)`` NumPy, the model's joint positions for a state.
        track: the body whose path shows the plan (the last body if None).
        velocity: indices of the state vector that a push adds to (its velocities, in
            the order of the push's x, y, z); empty: the state cannot be pushed.
    """

    mjcf: str
    qpos: Callable[[Any], np.ndarray]
    track: str | None = None
    velocity: tuple[int, ...] = ()


@dataclasses.dataclass
class Geom:
    """One drawn geom: a triangle mesh in its body's frame.

    Attributes:
        body: index of its body among the drawn bodies (0 = MuJoCo body 1); -1 for a
            geom of the world body (it never moves; its pose is in the world frame).
        vertices: (V, 3) in the geom frame.
        faces: (F, 3) int.
        pos: (3,) geom position in the body frame.
        quat: (4,) geom orientation (w, x, y, z) in the body frame.
        rgb: (3,) int colour.
    """

    body: int
    vertices: np.ndarray
    faces: np.ndarray
    pos: np.ndarray
    quat: np.ndarray
    rgb: tuple[int, int, int]


class Scene:
    """The drawable side of a problem (build it with :func:`scene_for`).

    Attributes:
        geoms: the :class:`Geom` list (empty for a state drawn as a point).
        num_bodies: bodies posed per state (0 for a point or a model of static geoms).
        floor: whether the model has a ground plane (a grid is drawn at ``floor_z``).
        floor_z: the plane's height.
        can_push: whether :meth:`push` changes a state.
        label: what the path shows, for the page.
    """

    def __init__(
        self,
        poses: Callable[[PyTree], tuple[np.ndarray, np.ndarray]] | None,
        paths: Callable[[PyTree], np.ndarray],
        geoms: list[Geom],
        floor: bool,
        floor_z: float,
        push: Callable[[PyTree, np.ndarray], PyTree] | None,
        label: str,
    ):
        self._poses = poses
        self._paths = paths
        self._push = push
        self.geoms = geoms
        self.num_bodies = 1 + max((g.body for g in geoms), default=-1)
        self.floor = floor
        self.floor_z = floor_z
        self.can_push = push is not None
        self.label = label

    def poses(self, state: PyTree) -> tuple[np.ndarray, np.ndarray]:
        """World poses of the drawn bodies in one state.

        Returns:
            (pos (nb, 3), quat (nb, 4) as w, x, y, z); for a point scene pos is (1, 3).
        """
        stacked = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], state)
        if self._poses is None:
            return self._paths(stacked)[0], np.array([[1.0, 0.0, 0.0, 0.0]])
        pos, quat = self._poses(stacked)
        return pos[0], quat[0]

    def paths(self, states: PyTree) -> np.ndarray:
        """The paths that show a plan: (K, T, 3) world points of K bodies over stacked
        states (leading axis T)."""
        return self._paths(states)

    def push(self, state: PyTree, velocity: np.ndarray) -> PyTree:
        """The state after a push that changes the pushed body's velocity by ``velocity``
        (3,) m/s (world frame), or, for a drawn state vector, the entries its drawing
        names as velocities by that much.

        Raises:
            TypeError: a scene that cannot push (see :attr:`can_push`).
        """
        if self._push is None:
            raise TypeError("this problem's state cannot be pushed")
        return self._push(state, np.asarray(velocity, np.float64))


def _geoms(m: Any) -> tuple[list[Geom], bool, float]:
    """The drawn geoms of a MuJoCo model (planes become the floor; invisible ones left)."""
    from mbd.sim.render import PLANE, geom_mesh

    geoms, floor, floor_z = [], False, 0.0
    for i in range(m.ngeom):
        if int(m.geom_type[i]) == PLANE:
            floor, floor_z = True, float(m.geom_pos[i][2])
            continue
        body = int(m.geom_bodyid[i])
        rgba = np.asarray(m.geom_rgba[i], float)
        mesh = geom_mesh(m, i)
        if mesh is None or rgba[3] <= 0:
            continue
        if np.allclose(rgba, [0.5, 0.5, 0.5, 1.0]):  # MuJoCo's default grey: a warmer one
            rgba = np.array([0.75, 0.6, 0.45, 1.0])
        rgb = tuple(round(255 * float(c)) for c in rgba[:3])
        geoms.append(
            Geom(
                body - 1,
                np.asarray(mesh[0], np.float32),
                np.asarray(mesh[1], np.int32),
                np.asarray(m.geom_pos[i], float),
                np.asarray(m.geom_quat[i], float),
                rgb,
            )
        )
    return geoms, floor, floor_z


def _impulse(m: Any, d: Any, body: int, velocity: np.ndarray) -> np.ndarray:
    """The joint-velocity change of the impulse that changes ``body``'s centre-of-mass
    velocity by ``velocity`` (least squares where the body cannot move that way).

    With J the body's translational Jacobian and M the mass matrix, an impulse p changes
    qvel by M^-1 J^T p and the body's velocity by J M^-1 J^T p; p solves the latter = v.
    """
    import mujoco

    nv = m.nv
    jacp = np.zeros((3, nv))
    mujoco.mj_jacBodyCom(m, d, jacp, None, body)
    minv_jt = np.zeros((nv, 3))
    for k in range(3):  # M^-1 J^T, column by column
        out = np.zeros(nv)
        mujoco.mj_solveM(m, d, out.reshape(1, nv), jacp[k].reshape(1, nv))
        minv_jt[:, k] = out
    a = jacp @ minv_jt  # (3, 3): the body's velocity per unit impulse
    # rcond: directions the body can hardly move in (a singular pose) get no impulse
    p, *_ = np.linalg.lstsq(a, velocity, rcond=1e-6)
    return minv_jt @ p


def _mujoco_scene(problem: Problem) -> Scene:
    from mbd.sim.engines import HostState, join64

    step = problem.step
    physics = step.physics
    m = step.mj_model
    geoms, floor, floor_z = _geoms(m)
    tracked = np.asarray(getattr(physics, "bodies", np.zeros(0)), int)

    def paths(states: PyTree) -> np.ndarray:
        if len(tracked):
            body_pos = np.asarray(physics.view(states).body_pos, np.float64)  # (T, K, 3)
            return np.swapaxes(body_pos, 0, 1)
        pos, _ = physics.poses(states)
        return np.swapaxes(pos[:, :1], 0, 1)

    push = None
    if isinstance(problem.init_state, HostState) and hasattr(physics, "_pack"):
        import mujoco

        pushed = int(tracked[0]) if len(tracked) else 1

        def push(state: HostState, velocity: np.ndarray) -> HostState:
            x = join64(np.asarray(state.hi), np.asarray(state.lo))
            d = mujoco.MjData(m)
            mujoco.mj_setState(m, d, x, physics.spec)
            mujoco.mj_forward(m, d)
            d.qvel[:] += _impulse(m, d, pushed, velocity)
            mujoco.mj_forward(m, d)
            out = np.empty(physics.nstate)
            mujoco.mj_getState(m, d, out, physics.spec)
            packed = physics._pack((), out, np.array(d.sensordata), np.array(d.xpos[tracked]))
            return HostState(*(np.asarray(a) for a in packed))

    names = [mujoco_name(m, int(b)) for b in tracked] or [mujoco_name(m, 1)]
    return Scene(physics.poses, paths, geoms, floor, floor_z, push, "path of " + ", ".join(names))


def mujoco_name(m: Any, body: int) -> str:
    """A body's name (``body N`` where it has none)."""
    import mujoco

    return mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, body) or f"body {body}"


def _drawn_scene(problem: Problem, drawing: Drawing) -> Scene:
    import mujoco

    m = mujoco.MjModel.from_xml_string(drawing.mjcf)
    d = mujoco.MjData(m)
    geoms, floor, floor_z = _geoms(m)
    track = m.nbody - 1
    if drawing.track is not None:
        track = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, drawing.track)
        if track < 1:
            raise ValueError(f"the drawing has no body named {drawing.track!r} to track")

    def poses(states: PyTree) -> tuple[np.ndarray, np.ndarray]:
        leaves = jax.tree_util.tree_leaves(states)
        n = np.shape(leaves[0])[0]
        pos, quat = [], []
        for i in range(n):
            one = jax.tree_util.tree_map(lambda a, i=i: np.asarray(a)[i], states)
            d.qpos[:] = drawing.qpos(one)
            mujoco.mj_kinematics(m, d)
            pos.append(d.xpos[1:].copy())
            quat.append(d.xquat[1:].copy())
        return np.stack(pos), np.stack(quat)

    def paths(states: PyTree) -> np.ndarray:
        pos, _ = poses(states)
        return np.swapaxes(pos[:, track - 1 : track], 0, 1)

    push = _vector_push(problem, drawing.velocity)
    label = "path of " + mujoco_name(m, track)
    return Scene(poses, paths, geoms, floor, floor_z, push, label)


def _vector_push(problem: Problem, index: tuple[int, ...]) -> Callable | None:
    """A push for a state vector: the entries ``index`` (its velocities, declared by the
    drawing) change by the push's x, y, z in turn."""
    x0 = problem.init_state
    if not index:
        return None
    if not (isinstance(x0, np.ndarray | jax.Array) and np.ndim(x0) == 1):
        raise ValueError("a drawing's velocity indices need a state vector")
    if max(index) >= np.size(x0) or min(index) < 0:
        raise ValueError(f"velocity indices {index} outside a state of {np.size(x0)} numbers")

    def push(state, velocity: np.ndarray):
        x = np.array(state, np.float64)
        for i, v in zip(index, velocity, strict=False):
            x[i] += v
        return np.asarray(x, np.asarray(state).dtype)

    return push


def _point_scene(problem: Problem) -> Scene:
    def paths(states: PyTree) -> np.ndarray:
        leaves = [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(states)]
        n = leaves[0].shape[0]
        flat = np.concatenate([a.reshape(n, -1) for a in leaves], axis=1)
        pts = np.zeros((n, 3))
        k = min(3, flat.shape[1])
        pts[:, :k] = flat[:, :k]
        return pts[None]

    return Scene(None, paths, [], False, 0.0, None, "state (x0, x1, x2)")


def scene_for(problem: Problem, drawing: Drawing | None = None) -> Scene:
    """The :class:`Scene` of a problem.

    Args:
        problem: the planning problem.
        drawing: how to draw a problem in pure JAX (a task's ``drawing``); None: its
            MuJoCo model where it has one, else its state as a point.
    """
    if drawing is not None:
        return _drawn_scene(problem, drawing)
    if getattr(problem.step, "physics", None) is not None and hasattr(problem.step, "mj_model"):
        return _mujoco_scene(problem)
    return _point_scene(problem)


__all__ = ["Drawing", "Geom", "Scene", "mujoco_name", "scene_for"]
