"""Figures: reward per diffusion step, and the car U-maze picture (paper Fig. 4).

matplotlib is imported inside the functions, with the non-interactive Agg backend, so that
importing :mod:`mbd` has no side effects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def fmt(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals, never ``-0.000``: a value that rounds to zero is 0.

    Args:
        x: the number (NaN and inf print as ``nan`` and ``inf``).
        digits: decimals.

    Returns:
        The text.
    """
    x = float(x)
    if np.isfinite(x) and round(x, digits) == 0.0:
        x = 0.0
    return f"{x:.{digits}f}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def legend_below(fig, handles=None, labels=None, ncols: int = 2):
    """A figure legend under the axes, outside them, so that it covers no data.

    The figure must use ``layout="constrained"``, which makes room for it.

    Args:
        fig: the figure (or a subfigure: the legend goes under its axes).
        handles: the artists to name (default: those of every axes with a label).
        labels: their names (default: the artists' labels).
        ncols: columns of entries.

    Returns:
        The :class:`matplotlib.legend.Legend`.
    """
    if handles is None:
        handles, labels = [], []
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
    return fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=8)


def legend_right(ax, **kwargs):
    """An axes legend to the right of the axes, outside them, top-aligned.

    Under ``layout="constrained"`` the figure makes room for it, so it covers no data.

    Args:
        ax: the axes.
        **kwargs: passed on to :meth:`matplotlib.axes.Axes.legend` (handles, labels...).

    Returns:
        The :class:`matplotlib.legend.Legend`.
    """
    kwargs.setdefault("fontsize", 8)
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


def _reward_axes(ax, history) -> None:
    k = np.arange(1, len(np.asarray(history.reward_mean)) + 1)
    ax.plot(k, np.asarray(history.reward_mean), label="mean over samples")
    best = np.asarray(history.reward_max, dtype=np.float64)
    ax.plot(k, np.where(np.isfinite(best), best, np.nan), label="best feasible sample")
    ax.set_xlabel("diffusion update (noise high to low)")
    ax.set_ylabel("reward (mean per step)")
    ax.grid(alpha=0.3)


def plot_reward(history, path: str | Path, title: str = ""):
    """Draws the sample reward per diffusion update; the legend sits under the axes.

    Args:
        history: a :class:`~mbd.solver.StepInfo` of arrays of shape (K,).
        path: PNG file to write.
        title: figure title.

    Returns:
        The :class:`matplotlib.figure.Figure` written (closed in pyplot; for inspection).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.3), layout="constrained")
    _reward_axes(ax, history)
    legend_below(fig)
    ax.set_title(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def car2d_extent(problem, pos: np.ndarray, margin: float = 0.15) -> tuple:
    """Axis limits that hold everything the car2d picture draws: the discs, the goal, the
    path and the demonstration, with a margin, and at least the square [-2, 2]^2.

    Args:
        problem: the car2d problem (its demo, if any, is drawn).
        pos: (T+1, 2) positions of the path.
        margin: space around the outermost point, in m.

    Returns:
        (low (2,), high (2,)).
    """
    from mbd.tasks import car2d

    pts = [pos, car2d.CENTERS - car2d.RADIUS, car2d.CENTERS + car2d.RADIUS, car2d.GOAL[None]]
    if problem.demo is not None:
        pts.append(np.asarray(problem.demo.reference))
    allp = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in pts])
    allp = allp[np.all(np.isfinite(allp), axis=1)]
    lo = np.minimum(allp.min(axis=0) - margin, -2.0)
    hi = np.maximum(allp.max(axis=0) + margin, 2.0)
    return lo, hi


def plot_car2d(problem, result, path: str | Path):
    """Draws the car U-maze: discs, the path coloured by time, the demo, and the reward.

    Positions are in metres (the car drives at up to 3 m/s, :mod:`mbd.tasks.car2d`). Each
    panel's legend sits under it, outside the axes.

    Args:
        problem: the car2d :class:`~mbd.problem.Problem`.
        result: its :class:`~mbd.solver.MBDResult` (states (T, 3), ``history`` of (K,)).
        path: PNG file to write.

    Returns:
        The :class:`matplotlib.figure.Figure` written (closed in pyplot; for inspection).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    from mbd.tasks import car2d

    plt = _pyplot()
    fig = plt.figure(figsize=(12, 5.6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=(1.15, 1.0))
    ax, ax2 = left.subplots(), right.subplots()
    for c in car2d.CENTERS:
        ax.add_patch(Circle(tuple(c), car2d.RADIUS, color="0.55", alpha=0.8))
    handles = [
        Circle((0, 0), 1, color="0.55", alpha=0.8, label=f"obstacle (disc, r = {car2d.RADIUS} m)")
    ]
    start = np.asarray(problem.init_state)[:2]
    pos = np.concatenate([start[None], np.asarray(result.states)[:, :2]])
    if problem.demo is not None:
        ref = np.concatenate([start[None], np.asarray(problem.demo.reference)])
        handles += ax.plot(
            ref[:, 0], ref[:, 1], "--", color="tab:orange", lw=1.5, label="RRT demonstration"
        )
    ax.plot(pos[:, 0], pos[:, 1], color="0.3", lw=0.8, zorder=2)
    sc = ax.scatter(
        pos[:, 0], pos[:, 1], c=np.arange(len(pos)) * car2d.DT, cmap="viridis", s=14, zorder=3
    )
    handles.append(
        Line2D(
            [], [], color="0.3", lw=0.8, marker="o", ms=4, mfc="tab:green", mec="none",
            label=f"planned path (a dot every {car2d.DT} s)",
        )
    )  # fmt: skip
    left.colorbar(sc, ax=ax, label="time (s)")
    handles += ax.plot(*start, "o", color="tab:blue", ms=9, label="start", zorder=4)
    handles += ax.plot(*car2d.GOAL, "*", color="tab:red", ms=15, label="goal", zorder=4)
    ax.set_aspect("equal")
    lo, hi = car2d_extent(problem, pos)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(alpha=0.3)
    legend_below(left, handles, [h.get_label() for h in handles], ncols=3)
    ax.set_title(f"car2d: reward {fmt(result.reward)}")
    _reward_axes(ax2, result.history)
    legend_below(right)
    ax2.set_title("sample reward per diffusion update")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def plot_realtime(result, path: str | Path, title: str = ""):
    """Draws a real-time run: the plant's reward over time, and each replan's latency
    against the deadline; each panel's legend sits to its right, outside the axes.

    Args:
        result: a :class:`mbd.mpc.realtime.RealtimeResult`.
        path: PNG file to write.
        title: figure title.

    Returns:
        The :class:`matplotlib.figure.Figure` written (closed in pyplot; for inspection).
    """
    plt = _pyplot()
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, layout="constrained")
    ax.plot(result.times, result.rewards, label="plant reward")
    ax.set_ylabel("stage reward")
    ax.grid(alpha=0.3)
    legend_right(ax)
    ready = np.array([r.ready for r in result.replans])
    lat = np.array([1e3 * (r.ready - r.read) for r in result.replans])
    bx.plot(ready, lat, ".", ms=3, label="replan latency\n(state read to plan ready)")
    bx.axhline(1e3 * result.deadline, color="C3", lw=1, label="deadline")
    bx.set_xlabel("time since the plant started (s)")
    bx.set_ylabel("latency (ms)")
    bx.grid(alpha=0.3)
    legend_right(bx)
    ax.set_title(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def plot_closed_loop(rewards, predicted, path: str | Path, title: str = ""):
    """Draws a closed loop's stage reward per control step, and the planner's prediction.

    The legend sits under the axes, outside them, so that it hides no part of the curves.

    Args:
        rewards: the plant's stage rewards, shape (T,).
        predicted: the planner's predicted mean per-step reward at each step, (T,).
        path: PNG file to write.
        title: figure title.

    Returns:
        The :class:`matplotlib.figure.Figure` written (closed in pyplot; for inspection).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.3), layout="constrained")
    t = np.arange(len(np.asarray(rewards)))
    ax.plot(t, np.asarray(rewards), label="plant reward at step t")
    ax.plot(t, np.asarray(predicted), label="planned mean reward over the horizon", alpha=0.8)
    ax.set_xlabel("control step")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    legend_below(fig)
    ax.set_title(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig
