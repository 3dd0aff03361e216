"""Real-time MPC on 2 cores: each method at the same deadline (issue 22, point 4).

    python benchmarks/bench_realtime.py --out runs/bench_realtime        # everything
    python benchmarks/bench_realtime.py --tasks dmc-cartpole --methods mbd ps --seeds 0 1
    python benchmarks/bench_realtime.py --methods mbd --lookahead --out runs/rt-lookahead
    python benchmarks/bench_realtime.py --tasks dmc-cartpole --methods mbd --budget 64 2 \
        --fake-latency 0.026 --seeds 0 1 2 3 4 5 6 7

Every method plans as ``mbd mpc TASK`` does (the task's horizon, spline knots and, for the
MBD methods, noise level), on the task's planning model. Per task and method, the
planner is sized to the task's replanning rate on this machine
(:func:`mbd.mpc.fit_to_rate`: the largest samples x updates whose replan takes at most
0.7 of the period), so every method gets the same wall-clock budget; then, per seed, the
plant (:class:`mbd.mpc.SimPlant` of the task's plant model) runs ``--duration`` seconds
at wall-clock pace in its own thread while the planner replans from the latest state.

Recorded per run (``runs.jsonl``): the loop's figures (real-time factor, replans per
second, latency median and p95, missed deadlines) and what the system did: for the
dm_control tasks whether the pole (every link) was upright through the last 3 s, for
hopper-hop whether the torso fell below 0.7 m and how far it went. A run is real time
when its real-time factor is >= 0.99 and at most 1 % of its replans missed the deadline.
``--lookahead`` / ``--no-lookahead``: each replan plans from the state predicted at the
time it will be ready (:class:`mbd.mpc.RealtimeLoop`'s ``lookahead``), or from the state
read; by default as ``mbd mpc TASK --realtime`` does (on for hopper-hop only). The rows
say which (``lookahead``; the table's method ``mbd+la``). Run it alone on the machine:
the figures are wall-clock figures.

``--rate HZ`` replaces the tasks' replanning rates. ``--budget N K`` gives every method N
samples x K updates instead of sizing it to the rate, and ``--fake-latency S`` runs the
loop on :class:`mbd.mpc.FakeClock`: each replan takes S seconds of plant time whatever it
takes on this machine, so the closed loop is deterministic and does not depend on the load
(a study of the controller at a given latency; its rows say ``fake_latency`` and their
timing figures are the fake clock's).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

METHODS = ("mbd", "dial", "mppi", "ps", "cem")
TASKS = ("dmc-cartpole", "dmc-acrobot", "hopper-hop")
RATE = {"dmc-cartpole": 20.0, "dmc-acrobot": 10.0, "hopper-hop": 10.0}
"""Replans per second asked of every method (the deadline is 1 / rate)."""


def problems(name: str, seed: int):
    """(the planner's problem, the plant's problem) of a task and seed."""
    from mbd.tasks import get_task

    task = get_task(name)
    p = task.make(horizon=task.horizon, seed=seed)
    opts = dict(task.mpc_defaults)  # the task's spline knots, as `mbd mpc TASK` plans
    if opts.get("knots") is not None:
        p = dataclasses.replace(p, knots=opts["knots"], spline=opts.get("spline", "linear"))
    plant = p if task.plant is None else task.plant(horizon=task.horizon, seed=seed)
    return p, plant


def success(name: str, metrics: dict) -> bool:
    """Swung up and held (dm_control tasks); hopped the whole run without a fall."""
    if name.startswith("dmc-"):
        return bool(metrics["swung_up"])
    return not metrics["fell"]


def run_method(name: str, method: str, seeds: list[int], a) -> list[dict]:
    import jax

    import mbd
    from mbd.mpc import (
        FakeClock,
        MPCConfig,
        RealtimeLoop,
        SimPlant,
        fit_to_rate,
        make_controller,
    )
    from mbd.tasks import get_task

    task = get_task(name)
    level = dict(task.mpc_defaults).get("noise_level", 1.0)
    planner, _ = problems(name, seeds[0])

    def make(n: int, k: int):
        return make_controller(
            planner, method, mbd.MBDConfig(num_samples=n, temperature=0.1),
            MPCConfig(iterations=k, warmup_iterations=30, noise_level=level),
        )  # fmt: skip

    rate = RATE[name] if a.rate is None else a.rate
    t0 = time.perf_counter()
    if a.budget is None:
        fit = fit_to_rate(make, rate, iterations=2, max_samples=a.max_samples)
        ladder, chosen, record = fit.ladder, fit.chosen, fit.record()
    else:
        n, k = a.budget
        chosen = make(n, k)
        ladder, record = [chosen], {"num_samples": n, "iterations": k, "given": True}
    fit_seconds = time.perf_counter() - t0
    lookahead = a.lookahead
    if lookahead is None:
        lookahead = bool(dict(task.mpc_defaults).get("lookahead", False))
    rows = []
    for seed in seeds:
        _, plant = problems(name, seed)
        clock = None if a.fake_latency is None else FakeClock(a.fake_latency)
        loop = RealtimeLoop(ladder, SimPlant(plant), rate=rate, clock=clock, lookahead=lookahead)
        res = loop.run(jax.random.key(seed), a.duration)
        s = res.summary()
        metrics = task.loop_metrics(plant, res.states)
        rt = s["realtime_factor"] >= 0.99 and s["missed_fraction"] <= 0.01
        rows.append(
            {
                "task": name,
                "method": method,
                "lookahead": lookahead,
                "seed": seed,
                "rate_hz": rate,
                "fit": record,
                "fake_latency": a.fake_latency,
                "fit_seconds": fit_seconds,
                **s,
                "metrics": metrics,
                "success": success(name, metrics),
                "real_time": rt,
            }
        )
        r = rows[-1]
        print(
            f"{name:<13} {method:<5} seed {seed}: {chosen.num_samples:>4} x "
            f"{chosen.iterations} | RTF {s['realtime_factor']:.3f}, "
            f"{s['replan_hz']:.1f} Hz, latency {s['latency_ms']['median']:.1f} / "
            f"{s['latency_ms']['p95']:.1f} ms, missed {s['missed_deadlines']}/{s['replans']} | "
            f"return {s['closed_loop_return']:.3f}, success {r['success']}, {metrics}",
            flush=True,
        )
    return rows


def table(rows: list[dict]) -> str:
    """The Markdown table of the runs, one row per task and method."""
    out = [
        "| task | method | samples x updates | success | return (mean) | real time "
        "(RTF >= 0.99, missed <= 1 %) | replans/s | latency median / p95 (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def label(r):
        fake = r.get("fake_latency")
        return (
            r["method"] + ("+la" if r.get("lookahead") else "")
            + ("" if fake is None else f" (fake clock, {fake * 1e3:g} ms)")
        )  # fmt: skip

    def key(r):
        return r["task"], r["method"], label(r)

    def order(k):
        return TASKS.index(k[0]) if k[0] in TASKS else 99, METHODS.index(k[1]), k[2]

    for k in sorted({key(r) for r in rows}, key=order):
        task, _, method = k
        rs = [r for r in rows if key(r) == k]
        fit = rs[0]["fit"]
        med = statistics.median
        out.append(
            f"| {task} | {method} | {fit['num_samples']} x {fit['iterations']} | "
            f"{sum(r['success'] for r in rs)} of {len(rs)} | "
            f"{statistics.mean(r['closed_loop_return'] for r in rs):.3f} | "
            f"{sum(r['real_time'] for r in rs)} of {len(rs)} | "
            f"{med(r['replan_hz'] for r in rs):.1f} | "
            f"{med(r['latency_ms']['median'] for r in rs):.1f} / "
            f"{med(r['latency_ms']['p95'] for r in rs):.1f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--max-samples", type=int, default=1024)
    p.add_argument(
        "--lookahead",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="plan from the predicted state (default: as the task's `mbd mpc --realtime`)",
    )
    p.add_argument("--rate", type=float, default=None, help="replans/s (default: the task's)")
    p.add_argument(
        "--budget",
        nargs=2,
        type=int,
        default=None,
        metavar=("N", "K"),
        help="N samples x K updates for every method instead of fitting the rate",
    )
    p.add_argument(
        "--fake-latency",
        type=float,
        default=None,
        metavar="S",
        help="a fake clock on which every replan takes S seconds",
    )
    p.add_argument("--out", type=Path, default=None, help="folder for runs.jsonl and table.md")
    p.add_argument("--table-only", action="store_true", help="only print --out's table")
    a = p.parse_args(argv)
    if not a.duration > 0:
        p.error(f"--duration must be > 0 seconds (got {a.duration})")
    if a.rate is not None and not (math.isfinite(a.rate) and a.rate > 0):
        p.error(f"--rate must be a number of replans per second > 0 (got {a.rate})")
    if a.budget is not None and min(a.budget) < 1:
        p.error(f"--budget N K: both must be >= 1 (got {a.budget[0]} {a.budget[1]})")
    if a.fake_latency is not None and not (math.isfinite(a.fake_latency) and a.fake_latency >= 0):
        p.error(f"--fake-latency must be a number of seconds >= 0 (got {a.fake_latency})")
    rows: list[dict] = []
    log = None if a.out is None else a.out / "runs.jsonl"
    if a.table_only:
        rows = [json.loads(x) for x in log.read_text().splitlines()]
        print(table(rows))
        return
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
    for name in a.tasks:
        for method in a.methods:
            new = run_method(name, method, a.seeds, a)
            rows += new
            if log is not None:
                with log.open("a") as f:
                    f.writelines(json.dumps(r) + "\n" for r in new)
    text = table(rows)
    print(text)
    if a.out is not None:
        (a.out / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
