"""The paper's explanatory figures: Fig. 2, Fig. 6 and the car U-maze iterates (Fig. 4b).

- :func:`figure2`: a 1-D multimodal objective J(y); the intermediate densities
  p_i = p_0 convolved with the forward Gaussian of Eq. 3 (computed on a grid), with
  p_0 ∝ exp(-J / lambda); trajectories of the reverse SDE and of Monte Carlo score ascent
  (Sec. 4.1) over the density background.
- :func:`figure6`: a 1-D constrained problem (feasible where ||y| - 0.4| > 0.3) solved by
  MBD with and without a non-optimal demonstration (Eq. 13, :class:`mbd.Demo`).
- :func:`car_iterates`: the car2d plan of each diffusion stage (``keep_iterates``).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mbd.plotting import _pyplot
from mbd.problem import Demo, Objective, rollout
from mbd.schedule import make_schedule
from mbd.solver import MBDConfig, make_solver

# --------------------------------------------------------------------------------------
# Fig. 2
# --------------------------------------------------------------------------------------

FIG2_LAMBDA = 0.05
FIG2_STEPS = 100
FIG2_BETAS = (1e-4, 0.1)  # so that p_N is close to N(0, 1), as drawn in the paper


def fig2_objective(y: np.ndarray) -> np.ndarray:
    """J(y) = 0.5 (y - 0.5)^2 + 0.3 (1 - cos(3 pi (y - 0.5))): global minimum at 0.5 and
    local minima every 2/3 on both sides. y: any shape -> same shape."""
    return 0.5 * (y - 0.5) ** 2 + 0.3 * (1.0 - np.cos(3.0 * np.pi * (y - 0.5)))


def intermediate_densities(
    y: np.ndarray, j0: np.ndarray, alpha_bars: np.ndarray, lam: float
) -> np.ndarray:
    """p_i(y) = int p_0(y0) N(y; sqrt(ab_i) y0, (1 - ab_i)) dy0 (Eq. 3), by quadrature.

    Args:
        y: grid (G,), also used as the y0 grid.
        j0: J on the grid (G,).
        alpha_bars: ab_1 .. ab_N (N,).
        lam: temperature of p_0 ∝ exp(-J / lambda).

    Returns:
        (N + 1, G) densities, row 0 is p_0, each normalized on the grid.
    """
    dy = y[1] - y[0]
    p0 = np.exp(-(j0 - j0.min()) / lam)
    p0 /= p0.sum() * dy
    rows = [p0]
    for ab in alpha_bars:
        var = 1.0 - ab
        k = np.exp(-0.5 * (y[:, None] - np.sqrt(ab) * y[None, :]) ** 2 / var)
        k /= np.sqrt(2 * np.pi * var)
        p = k @ p0 * dy
        rows.append(p / (p.sum() * dy))
    return np.stack(rows)


def _score(yq, ab, y0, p0):
    """Exact score of p_i at points yq (Eq. 7c) by quadrature over the y0 grid."""
    var = 1.0 - ab
    logk = -0.5 * (yq[:, None] - np.sqrt(ab) * y0[None, :]) ** 2 / var + np.log(p0 + 1e-300)
    w = np.exp(logk - logk.max(axis=1, keepdims=True))
    mean0 = (w @ y0) / w.sum(axis=1)
    return -yq / var + np.sqrt(ab) / var * mean0


def _mc_score(yq, ab, rng, num_samples):
    """Monte Carlo score of p_i (Eqs. 8-9b): samples of phi_i = N(Y / sqrt(ab),
    (1 / ab - 1)), weighted by p_0 ∝ exp(-J / lambda)."""
    y0 = yq[:, None] / np.sqrt(ab) + np.sqrt(1 / ab - 1) * rng.standard_normal(
        (len(yq), num_samples)
    )
    logw = -fig2_objective(y0) / FIG2_LAMBDA
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    ybar = np.sum(w * y0, axis=1) / np.sum(w, axis=1)
    return -yq / (1 - ab) + np.sqrt(ab) / (1 - ab) * ybar  # Eq. 9b


def fig2_trajectories(num: int = 24, seed: int = 0, num_samples: int = 16):
    """Reverse SDE and Monte Carlo score ascent from the same Y^N ~ N(0, 1).

    Update rules of Sec. 4.1: MCSA (Eq. 6) Y^{i-1} = (Y^i + (1 - ab_i) score) /
    sqrt(alpha_i), with MBD's Monte Carlo score (Eq. 9b, ``num_samples`` samples);
    reverse SDE Y^{i-1} = (Y^i + (1 - alpha_i) / 2 score) / sqrt(alpha_i) +
    sqrt(1 - alpha_i) z as printed in Sec. 4.1, with the exact score (Eq. 7c by
    quadrature on the grid).

    Returns:
        (grid (G,), densities (N + 1, G), sde (N + 1, num), mcsa (N + 1, num)); row i of
        the trajectories is Y^i.
    """
    sch = make_schedule("linear", FIG2_STEPS, *FIG2_BETAS)
    y = np.linspace(-3.0, 3.0, 1201)
    j0 = fig2_objective(y)
    dens = intermediate_densities(y, j0, sch.alpha_bars, FIG2_LAMBDA)
    p0 = dens[0]
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(num)
    sde = np.empty((FIG2_STEPS + 1, num))
    mcsa = np.empty((FIG2_STEPS + 1, num))
    sde[-1] = mcsa[-1] = start
    for i in range(FIG2_STEPS, 0, -1):
        ab, a = sch.alpha_bars[i - 1], sch.alphas[i - 1]
        s = _mc_score(mcsa[i], ab, rng, num_samples)
        mcsa[i - 1] = (mcsa[i] + (1 - ab) * s) / np.sqrt(a)  # Eq. 6
        s = _score(sde[i], ab, y, p0)
        z = rng.standard_normal(num)
        sde[i - 1] = (sde[i] + (1 - a) / 2 * s) / np.sqrt(a) + np.sqrt(1 - a) * z  # Sec. 4.1
    return y, dens, sde, mcsa


def figure2(path: str | Path, seed: int = 0) -> None:
    """Draws Fig. 2: (a) objective, (b) densities p_i, (c) reverse SDE vs MCSA.

    Args:
        path: PNG file to write.
        seed: seed of the starting points and the SDE noise.
    """
    plt = _pyplot()
    y, dens, sde, mcsa = fig2_trajectories(seed=seed)
    fig = plt.figure(figsize=(14, 4.2))
    gs = fig.add_gridspec(1, 4, width_ratios=[1, 1, 1.3, 1.3])
    ax = fig.add_subplot(gs[0])
    sel = np.abs(y) <= 2.0
    ax.plot(y[sel], fig2_objective(y[sel]), color="k")
    ax.plot(0.5, 0.0, "*", color="tab:red", ms=13, label="global minimum")
    ax.set_xlabel("y")
    ax.set_ylabel("J(y)")
    ax.set_title("(a) objective")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = fig.add_subplot(gs[1])
    for i, c in zip((0, 1, 20, 100), ("k", "tab:blue", "tab:green", "tab:orange"), strict=True):
        ax.plot(y, dens[i], color=c, label=f"p_{i}")
    ax.set_xlim(-3, 3)
    ax.set_xlabel("y")
    ax.set_ylabel("density")
    ax.set_title("(b) p_i = p_0 * forward Gaussian (Eq. 3)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    n = dens.shape[0] - 1
    for k, (traj, name) in enumerate(((sde, "reverse SDE"), (mcsa, "Monte Carlo score ascent"))):
        ax = fig.add_subplot(gs[2 + k])
        bg = dens / dens.max(axis=1, keepdims=True)
        ax.imshow(
            bg.T,
            origin="lower",
            aspect="auto",
            extent=(-0.5, n + 0.5, y[0], y[-1]),
            cmap="Blues",
            alpha=0.8,
        )
        steps = np.arange(n + 1)
        for j in range(traj.shape[1]):
            ax.plot(steps, traj[:, j], color="tab:red", lw=0.8, alpha=0.8)
        ax.set_xlim(n, 0)
        ax.set_ylim(-2.5, 2.5)
        ax.set_xlabel("diffusion step i (N to 0)")
        ax.set_ylabel("Y^(i)")
        ax.set_title(f"(c) {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# Fig. 6
# --------------------------------------------------------------------------------------

FIG6_BOX = 1.5
FIG6_DEMO = -1.2


def fig6_reward(y: jax.Array) -> jax.Array:
    """Reward (to maximize) of Fig. 6: a broad local peak (0.6) at y = +0.9, the narrow
    optimum (1.0) at y = -0.85, and a narrow non-optimal peak (0.75) at y = -1.2 where the
    demonstration sits. y: (1,) -> scalar."""
    y = y[0]
    return (
        0.6 * jnp.exp(-((y - 0.9) ** 2) / 0.3)
        + jnp.exp(-((y + 0.85) ** 2) / 0.002)
        + 0.75 * jnp.exp(-((y - FIG6_DEMO) ** 2) / 0.002)
    )


def fig6_constraint(y: jax.Array) -> jax.Array:
    """g(y) = 0.3 - ||y| - 0.4| <= 0: feasible where ||y| - 0.4| > 0.3 (Fig. 6). (1,) -> (1,)."""
    return 0.3 - jnp.abs(jnp.abs(y) - 0.4)


def fig6_problem(demo: bool) -> Objective:
    """The constrained 1-D objective, with the non-optimal demonstration y = -1.2 if asked."""
    d = None
    if demo:
        ref = jnp.array([FIG6_DEMO])
        d = Demo(reference=ref, scale=0.5, reward=float(fig6_reward(ref)))
    return Objective(
        fn=fig6_reward,
        shape=(1,),
        low=-FIG6_BOX,
        high=FIG6_BOX,
        constraint=fig6_constraint,
        demo=d,
        name="fig6",
    )


FIG6_CONFIG = MBDConfig(num_samples=32, num_steps=100, temperature=0.1, keep_iterates=True)


def fig6_runs(seeds: int = 16) -> dict[str, np.ndarray]:
    """MBD iterates without and with the demonstration, (seeds, K) each, real units."""
    out = {}
    for demo in (False, True):
        obj = fig6_problem(demo)
        solver = make_solver(obj, FIG6_CONFIG)
        res = jax.vmap(solver.solve)(jax.random.split(jax.random.key(0), seeds))
        out["with demo" if demo else "without demo"] = np.asarray(obj.decode(res.iterates))[..., 0]
    return out


def figure6(path: str | Path, seeds: int = 16) -> None:
    """Draws Fig. 6: the constrained objective, and MBD's estimate per diffusion step
    without and with a non-optimal demonstration.

    Args:
        path: PNG file to write.
        seeds: number of MBD runs per case.
    """
    plt = _pyplot()
    runs = fig6_runs(seeds)
    y = np.linspace(-FIG6_BOX, FIG6_BOX, 1201)
    r = np.asarray(jax.vmap(fig6_reward)(jnp.asarray(y)[:, None]))
    infeasible = np.abs(np.abs(y) - 0.4) <= 0.3
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.0))

    def shade(ax, vertical):
        edges = np.flatnonzero(np.diff(infeasible.astype(int)))
        lo = [y[e + 1] for e in edges[::2]]
        hi = [y[e] for e in edges[1::2]]
        for a, b in zip(lo, hi, strict=True):
            (ax.axhspan if vertical else ax.axvspan)(a, b, color="0.85", zorder=0)

    ax = axes[0]
    shade(ax, False)
    ax.plot(y, r, color="k", label="reward")
    ax.plot(
        -0.85, float(fig6_reward(jnp.array([-0.85]))), "*", color="tab:red", ms=14, label="optimum"
    )
    ax.plot(
        FIG6_DEMO,
        float(fig6_reward(jnp.array([FIG6_DEMO]))),
        "o",
        color="tab:orange",
        ms=8,
        label="demonstration",
    )
    ax.set_xlabel("y")
    ax.set_ylabel("reward")
    ax.set_title("objective; grey: infeasible (||y| - 0.4| <= 0.3)")
    ax.legend(fontsize=8, loc="upper right")
    for ax, (name, it) in zip(axes[1:], runs.items(), strict=True):
        shade(ax, True)
        k = np.arange(1, it.shape[1] + 1)
        for row in it:
            ax.plot(k, row, color="tab:blue", lw=1, alpha=0.8)
        ax.axhline(-0.85, color="tab:red", ls="--", lw=1, label="optimum")
        if name == "with demo":
            ax.axhline(FIG6_DEMO, color="tab:orange", ls=":", lw=1.5, label="demonstration")
        ax.set_ylim(-FIG6_BOX, FIG6_BOX)
        ax.set_xlabel("diffusion update (noise high to low)")
        ax.set_ylabel("MBD estimate of y")
        final = it[:, -1]
        hit = np.mean(np.abs(final + 0.85) < 0.1)
        ax.set_title(f"MBD {name}: {hit:.0%} of {len(final)} runs at the optimum")
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# Car U-maze iterates (Fig. 4b kind)
# --------------------------------------------------------------------------------------


def car_iterates(path: str | Path, num_samples: int = 2048, seed: int = 0, panels: int = 5):
    """Draws the car2d plan at several diffusion stages (demo-augmented MBD).

    Args:
        path: PNG file to write.
        num_samples: MBD samples per step (2048 is the task's default).
        seed: seed of the solve and of the RRT demonstration.
        panels: number of stages shown.
    """
    from mbd.tasks import car2d, get_task

    plt = _pyplot()
    problem = car2d.make(demo=True, seed=seed)
    base = get_task("car2d").config
    cfg = MBDConfig(
        num_samples=num_samples,
        num_steps=base.num_steps,
        temperature=base.temperature,
        keep_iterates=True,
    )
    res = make_solver(problem, cfg).solve(jax.random.key(seed))
    its = np.asarray(res.iterates)
    K = its.shape[0]
    ks = np.unique(np.linspace(0, K - 1, panels).round().astype(int))

    def positions(z):
        ro = rollout(problem, problem.controls(jnp.asarray(z)))
        return np.asarray(ro.states)[:, :2], float(jnp.mean(ro.rewards)), float(ro.violation)

    start = np.asarray(problem.init_state)[:2]
    ref = np.concatenate([start[None], np.asarray(problem.demo.reference)])
    fig, axes = plt.subplots(1, len(ks), figsize=(3.3 * len(ks), 3.7))
    for ax, k in zip(np.atleast_1d(axes), ks, strict=True):
        pos, rew, viol = positions(its[k])
        pos = np.concatenate([start[None], pos])
        for c in car2d.CENTERS:
            ax.add_patch(plt.Circle(tuple(c), car2d.RADIUS, color="0.6", alpha=0.8))
        ax.plot(ref[:, 0], ref[:, 1], "--", color="tab:orange", lw=1.2, label="RRT demo")
        ax.plot(pos[:, 0], pos[:, 1], "-o", color="tab:blue", ms=2.5, lw=1.2, label="plan")
        ax.plot(*start, "o", color="k", ms=7)
        ax.plot(*car2d.GOAL, "*", color="tab:red", ms=14)
        ax.set_xlim(-2.0, 2.0)
        ax.set_ylim(-2.0, 2.0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ok = "feasible" if viol <= 0 else "collides"
        ax.set_title(f"update {k + 1}/{K}\nreward {rew:.2f}, {ok}", fontsize=9)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(
        "car2d with RRT demonstration: MBD estimate over the diffusion (noise high to low)"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def make_all(out: str | Path, quick: bool = False, seed: int = 0) -> list[Path]:
    """Writes fig2.png, fig6.png and car2d_iterates.png into ``out``.

    Args:
        out: existing folder.
        quick: fewer samples and seeds (for tests).
        seed: seed.

    Returns:
        The files written.
    """
    out = Path(out)
    files = [out / "fig2.png", out / "fig6.png", out / "car2d_iterates.png"]
    figure2(files[0], seed=seed)
    figure6(files[1], seeds=4 if quick else 16)
    car_iterates(files[2], num_samples=128 if quick else 2048, seed=seed)
    return files
