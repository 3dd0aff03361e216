"""MBD against each baseline, seed by seed, from recorded sweeps (``runs.jsonl``).

For every task and baseline with seeds in common with MBD, prints the mean of each, the
mean paired difference MBD - baseline with its standard error, and on how many seeds
MBD is ahead. Which reward counts is a rule per side:

- ``final``: the reward of the plan the run returned (``final_reward``);
- ``last``: the best sample of the last iteration (``best_reward_history[-1]``). For an
  MBD run this is what ``--output mode`` returns: the mode is the last update's
  highest-weight sample, the search is the same, and on the native MuJoCo engine its
  replay scores the same (bit for bit on 111 of the 112 runs in docs/native_sweep, within
  3e-7 on the last);
- ``best``: the best sample of any iteration (what the baselines' ``output="best"``
  returns).

The 24-seed comparison of docs/results.md ("The mode output, and 8 fresh seeds"):

    D=docs/native_sweep
    python benchmarks/robots_paired.py --mbd-rule last \
        --mbd $D/ess-diagonal-mode $D/heldout-*/ess-diagonal* $D/fresh-16-23/mode \
        --baselines $D $D/heldout-ant/native $D/heldout-pusht-halfcheetah \
            $D/heldout-hopper-walker2d-humanoidrun $D/fresh-16-23/cem $D/fresh-16-23/cmaes

Add ``--baseline-rule last`` or ``best`` to give the baselines the same kind of rule.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
from pathlib import Path

BASELINES = ("cmaes", "cem", "mppi")
RULES = ("final", "last", "best")


def score(run: dict, rule: str) -> float:
    """The reward of one run under ``rule`` (see the module docstring)."""
    if rule == "final":
        return run["final_reward"]
    if rule == "last":
        return run["best_reward_history"][-1]
    return max(run["final_reward"], *run["best_reward_history"])


def load(folders: list[Path], methods: tuple[str, ...]) -> list[dict]:
    """Every run of ``methods`` in ``folders`` (each folder's ``runs.jsonl``, if any, and
    those one level below it)."""
    runs = []
    for folder in folders:
        for path in [folder / "runs.jsonl", *sorted(folder.glob("*/runs.jsonl"))]:
            if path.is_file():
                for line in path.read_text().splitlines():
                    run = json.loads(line)
                    if run["method"] in methods:
                        runs.append(run)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mbd", type=Path, nargs="+", required=True, help="folders of MBD runs")
    ap.add_argument("--baselines", type=Path, nargs="+", required=True)
    ap.add_argument("--mbd-rule", choices=RULES, default="final")
    ap.add_argument("--baseline-rule", choices=RULES, default="final")
    args = ap.parse_args()

    mbd: dict[tuple[str, int], float] = {}
    for run in load(args.mbd, ("mbd",)):
        key = (run["task"], run["seed"])
        if key in mbd:
            raise SystemExit(f"two MBD runs of {key} in --mbd; give each seed once")
        mbd[key] = score(run, args.mbd_rule)
    base: dict[tuple[str, str], dict[int, float]] = collections.defaultdict(dict)
    for run in load(args.baselines, BASELINES):
        base[(run["task"], run["method"])][run["seed"]] = score(run, args.baseline_rule)

    print(f"MBD ({args.mbd_rule}) - baseline ({args.baseline_rule}), paired by seed")
    print("| task | baseline | seeds | baseline | MBD | MBD - baseline (s.e.) | MBD ahead |")
    print("|---|---|---|---|---|---|---|")
    for (task, method), by_seed in sorted(base.items()):
        seeds = sorted(s for s in by_seed if (task, s) in mbd)
        if len(seeds) < 2:
            continue
        a = [mbd[(task, s)] for s in seeds]
        b = [by_seed[s] for s in seeds]
        d = [x - y for x, y in zip(a, b, strict=True)]
        n = len(d)
        mean = sum(d) / n
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n)
        ahead = sum(x > 0 for x in d)
        print(
            f"| {task} | {method} | {n} | {sum(b) / n:.3f} | {sum(a) / n:.3f} | "
            f"{mean:+.3f} ({se:.3f}) | {ahead} of {n} |"
        )


if __name__ == "__main__":
    main()
