"""``mbd rl TASK [options]``: train Brax PPO / SAC with the paper's hyper-parameters.

Writes ``DIR/rl.json``: the mean per-step reward over 50 steps and 8 episodes (as the
paper evaluates), the budget asked and done, the paper's budget, and the hyper-parameters
(paper Tables 5 and 6). Needs brax (``pip install 'mbd[rl]'``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

from mbd.cli.common import (
    CLIError,
    atomic_out_dir,
    check_out_dir,
    check_seed,
    fail,
    fresh_out_dir,
    tyro_parse,
    write_json,
)

SUMMARY = "train the RL baseline (Brax PPO/SAC, paper Tables 5-6) under a --timesteps budget"


@dataclasses.dataclass(frozen=True)
class RLOptions:
    """Options of ``mbd rl``."""

    timesteps: int = 100_000
    """training budget in environment steps (the paper: 6.5M-100M on a GPU)"""
    seed: int = 0
    """training seed"""
    num_envs: int = 32
    """parallel environments (scaled down for a CPU; not in the paper)"""
    batch_size: int = 32
    """batch size (scaled down for a CPU; not in the paper)"""
    out: Path | None = None
    """output folder; None writes to runs/rl-TASK-sSEED"""


def run(argv: list[str]) -> int:
    """Entry point of ``mbd rl``; returns the exit code."""
    prog = "mbd rl"
    try:
        if not argv or argv[0].startswith("-"):
            if argv and argv[0] in ("-h", "--help"):
                print("usage: mbd rl TASK [--timesteps N] [--seed S] [--out DIR]")
                return 0
            raise CLIError("TASK", "missing; give a task or Brax environment name first")
        task, rest = argv[0], argv[1:]
        opts = tyro_parse(RLOptions, RLOptions(), rest, f"{prog} {task}", "Train the RL baseline.")
        for name in ("timesteps", "num_envs", "batch_size"):
            if getattr(opts, name) < 1:
                raise CLIError(f"--{name.replace('_', '-')}", "must be an integer >= 1")
        check_seed(opts.seed)
        if importlib.util.find_spec("brax") is None:
            raise CLIError("TASK", "the RL baseline needs brax: pip install 'mbd[rl]'")
        from mbd.baselines import rl

        try:
            rl.resolve_env(task)
        except KeyError as e:
            raise CLIError("TASK", str(e.args[0])) from None
        out = opts.out or fresh_out_dir(Path("runs") / f"rl-{task}-s{opts.seed}")
        check_out_dir(out)
    except CLIError as e:
        return fail(prog, e)
    from mbd.cli.common import versions

    cfg = rl.RLConfig(timesteps=opts.timesteps, num_envs=opts.num_envs,
                      batch_size=opts.batch_size)  # fmt: skip
    print(rl.CPU_NOTE.format(timesteps=opts.timesteps, backend=versions()["backend"],
                             paper=rl.PAPER_RL.get(task, rl.DEFAULT_RL).timesteps),
          file=sys.stderr)  # fmt: skip
    result = rl.train_and_evaluate(task, opts.timesteps, opts.seed, cfg)
    result["versions"] = versions()
    with atomic_out_dir(out) as tmp:
        write_json(tmp / "rl.json", result)
    print(
        f"{task}: {result['algorithm']} reward {result['reward']:.4f} ± {result['reward_std']:.4f} "
        f"(mean per-step reward, {result['eval_episodes']} episodes x {result['eval_steps']} steps)"
        f"; trained {result['timesteps_done']:,} steps in {result['train_seconds']:.1f}s -> {out}"
    )
    return 0
