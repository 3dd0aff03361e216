"""``mbd figures DIR [--quick]``: draw the paper's explanatory figures into DIR.

Writes ``fig2.png`` (1-D multimodal objective, intermediate densities p_i, reverse SDE
versus Monte Carlo score ascent), ``fig6.png`` (1-D constrained problem, MBD with and
without a non-optimal demonstration) and ``car2d_iterates.png`` (the car U-maze plan over
the diffusion, Fig. 4b kind).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from mbd.cli.common import CLIError, atomic_out_dir, check_out_dir, check_seed, fail, tyro_parse

SUMMARY = "draw the paper's Fig. 2, Fig. 6 and the car2d diffusion iterates into DIR"


@dataclasses.dataclass(frozen=True)
class FigureOptions:
    """Options of ``mbd figures``."""

    quick: bool = False
    """fewer samples and seeds (seconds instead of a minute)"""
    seed: int = 0
    """random seed"""


def run(argv: list[str]) -> int:
    """Entry point of ``mbd figures``; returns the exit code."""
    prog = "mbd figures"
    try:
        if argv and argv[0] in ("-h", "--help"):
            print("usage: mbd figures DIR [--quick] [--seed N]\n\n" + __doc__.split("\n\n")[1])
            return 0
        if not argv or argv[0].startswith("-"):
            raise CLIError("DIR", "missing; give the output folder first")
        out = Path(argv[0])
        opts = tyro_parse(FigureOptions, FigureOptions(), argv[1:], prog, __doc__.splitlines()[0])
        check_seed(opts.seed)
        try:
            check_out_dir(out)
        except CLIError as e:
            raise CLIError("DIR", e.message) from None
    except CLIError as e:
        return fail(prog, e)
    from mbd.figures import make_all

    t = time.perf_counter()
    with atomic_out_dir(out) as tmp:
        files = make_all(tmp, quick=opts.quick, seed=opts.seed)
    names = ", ".join(f.name for f in files)
    print(f"mbd figures: {names} in {time.perf_counter() - t:.0f}s -> {out}")
    return 0
