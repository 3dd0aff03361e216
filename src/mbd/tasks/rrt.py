"""A rapidly-exploring random tree (RRT) planner for 2-D points among disc obstacles.

Used to make the car U-maze demonstration (paper A.4.4: step 0.2, 1000 iterations, on
the simplified kinematics: a point that moves straight between tree nodes). It runs once,
offline, in NumPy; its output is a reference path for the demonstration term (Eq. 13).
"""

from __future__ import annotations

import numpy as np


def segment_clear(a: np.ndarray, b: np.ndarray, centers: np.ndarray, radius: float) -> bool:
    """Whether the segment a-b keeps a distance > radius from every disc centre.

    Args:
        a: start point, shape (2,).
        b: end point, shape (2,).
        centers: disc centres, shape (M, 2).
        radius: disc radius.

    Returns:
        True if the segment touches no disc.
    """
    d = b - a
    L2 = float(d @ d)
    if L2 == 0.0:
        t = np.zeros(len(centers))
    else:
        t = np.clip((centers - a) @ d / L2, 0.0, 1.0)
    closest = a + t[:, None] * d
    return bool(np.all(np.linalg.norm(centers - closest, axis=1) > radius))


def rrt(
    start: np.ndarray,
    goal: np.ndarray,
    centers: np.ndarray,
    radius: float,
    bounds: tuple[float, float, float, float] = (-2.0, 2.0, -2.0, 2.0),
    step: float = 0.2,
    iterations: int = 1000,
    goal_bias: float = 0.1,
    seed: int = 0,
) -> np.ndarray | None:
    """Plans a collision-free polyline from start to goal with RRT.

    Each iteration samples a point (the goal with probability ``goal_bias``), steers from
    the nearest tree node towards it by at most ``step``, and adds the new node if the
    segment is collision-free; the search ends when a node can connect to the goal.

    Args:
        start: (2,) start position.
        goal: (2,) goal position.
        centers: (M, 2) disc obstacle centres.
        radius: disc radius.
        bounds: sampling box (xmin, xmax, ymin, ymax).
        step: largest edge length.
        iterations: number of samples drawn at most.
        goal_bias: probability of sampling the goal.
        seed: NumPy random seed.

    Returns:
        Waypoints from start to goal, shape (P, 2), or None when no path was found.
    """
    rng = np.random.default_rng(seed)
    start = np.asarray(start, dtype=np.float64)
    goal = np.asarray(goal, dtype=np.float64)
    nodes = np.zeros((iterations + 2, 2))
    parent = np.full(iterations + 2, -1)
    nodes[0] = start
    n = 1
    lo = np.array([bounds[0], bounds[2]])
    hi = np.array([bounds[1], bounds[3]])
    for _ in range(iterations):
        target = goal if rng.random() < goal_bias else lo + rng.random(2) * (hi - lo)
        dists = np.linalg.norm(nodes[:n] - target, axis=1)
        near = int(np.argmin(dists))
        d = target - nodes[near]
        dist = float(dists[near])
        new = target if dist <= step else nodes[near] + d / dist * step
        if not segment_clear(nodes[near], new, centers, radius):
            continue
        nodes[n], parent[n] = new, near
        n += 1
        if np.linalg.norm(goal - new) <= step and segment_clear(new, goal, centers, radius):
            nodes[n], parent[n] = goal, n - 1
            n += 1
            path = [n - 1]
            while parent[path[-1]] >= 0:
                path.append(int(parent[path[-1]]))
            return nodes[path[::-1]].copy()
    return None


def shortcut(path: np.ndarray, centers: np.ndarray, radius: float) -> np.ndarray:
    """Removes waypoints that a straight collision-free segment can skip (greedy).

    Args:
        path: (P, 2) waypoints.
        centers: (M, 2) disc centres.
        radius: disc radius.

    Returns:
        (P', 2) waypoints, P' <= P, same start and end.
    """
    out = [path[0]]
    i = 0
    while i < len(path) - 1:
        j = len(path) - 1
        while j > i + 1 and not segment_clear(path[i], path[j], centers, radius):
            j -= 1
        out.append(path[j])
        i = j
    return np.asarray(out)


def resample(path: np.ndarray, num: int) -> np.ndarray:
    """Resamples a polyline to ``num`` points evenly spaced by arc length.

    Args:
        path: (P, 2) waypoints, P >= 1.
        num: number of output points.

    Returns:
        (num, 2) points; the first is path[0], the last path[-1].
    """
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] == 0.0:
        return np.repeat(path[:1], num, axis=0)
    q = np.linspace(0.0, s[-1], num)
    return np.stack([np.interp(q, s, path[:, k]) for k in range(2)], axis=1)
