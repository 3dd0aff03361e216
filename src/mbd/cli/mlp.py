"""``mbd mlp [options]``: train the paper's MLP without gradients (MBD) and with SGD.

The network is inputs-32-32-10 with ReLU (paper A.2.1). Data: scikit-learn's 8x8 digits
by default (ships with scikit-learn), or MNIST from local files given with ``--data`` (a
folder with the four IDX files, possibly ``.gz``, or an ``.npz`` with x_train, y_train,
x_test, y_test); nothing is downloaded. Writes ``DIR/summary.json`` with test accuracy and
training time of both methods.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import tyro

from mbd.cli.common import (
    CLIError,
    atomic_out_dir,
    check_out_dir,
    fail,
    flag,
    tyro_parse,
    write_json,
)
from mbd.solver import ConfigError, MBDConfig, deferred_validation, validate_config

SUMMARY = "train a 2x32 MLP on digits/MNIST without gradients (MBD) and with SGD"


def _mlp_config() -> MBDConfig:
    from mbd.bbo.mlp import MLP_CONFIG

    return MLP_CONFIG


@dataclasses.dataclass(frozen=True)
class MLPOptions:
    """Options of ``mbd mlp``."""

    data: Path | None = None
    """MNIST folder (IDX files) or .npz; None uses scikit-learn's 8x8 digits"""
    methods: tuple[Literal["mbd", "sgd"], ...] = ("mbd", "sgd")
    """which trainers to run"""
    seed: int = 0
    """random seed"""
    train_subset: int = 2048
    """training examples MBD's reward is computed on (fixed random subset; 0 = all)"""
    epochs: int = 50
    """SGD epochs"""
    learning_rate: float = 0.1
    """SGD learning rate"""
    momentum: float = 0.9
    """SGD momentum"""
    batch_size: int = 128
    """SGD batch size"""
    out: Path = Path("runs/mlp")
    """output folder"""
    solver: Annotated[MBDConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(
        default_factory=_mlp_config
    )
    """MBD hyper-parameters"""


def parse(argv: list[str]) -> MLPOptions:
    """Parses and checks the options; raises :class:`CLIError`."""
    with deferred_validation():
        opts = tyro_parse(MLPOptions, MLPOptions(), argv, "mbd mlp", __doc__.splitlines()[0])
    try:
        validate_config(opts.solver)
    except ConfigError as e:
        raise CLIError(flag(e.field), e.message) from None
    if not opts.methods:
        raise CLIError("--methods", "give mbd, sgd or both")
    if opts.train_subset < 0:
        raise CLIError("--train-subset", f"must be >= 0 (got {opts.train_subset})")
    if opts.epochs < 1:
        raise CLIError("--epochs", f"must be an integer >= 1 (got {opts.epochs})")
    if opts.batch_size < 1:
        raise CLIError("--batch-size", f"must be an integer >= 1 (got {opts.batch_size})")
    if not opts.learning_rate > 0:
        raise CLIError("--learning-rate", f"must be > 0 (got {opts.learning_rate})")
    if not 0 <= opts.momentum < 1:
        raise CLIError("--momentum", f"must be in [0, 1) (got {opts.momentum})")
    if opts.data is not None and not opts.data.exists():
        raise CLIError("--data", f"{opts.data}: no such file or folder")
    check_out_dir(opts.out)
    return opts


def run(argv: list[str]) -> int:
    """Entry point of ``mbd mlp``; returns the exit code."""
    prog = "mbd mlp"
    try:
        opts = parse(argv)
        from mbd.bbo import mlp

        try:
            data = (
                mlp.load_digits(seed=opts.seed) if opts.data is None else mlp.load_mnist(opts.data)
            )
        except mlp.DataError as e:
            raise CLIError("--data", str(e)) from None
        except ImportError as e:
            raise CLIError("--data", str(e)) from None
    except CLIError as e:
        return fail(prog, e)
    from mbd.cli.common import versions

    d = data.x_train.shape[1]
    print(
        f"{data.name}: {len(data.y_train)} train / {len(data.y_test)} test, MLP {d}-32-32-10 "
        f"({mlp.num_params(d):,} parameters)",
    )
    results = {}
    for m in opts.methods:
        if m == "mbd":
            r = mlp.train_mbd(data, opts.solver, opts.seed, opts.train_subset)
        else:
            r = mlp.train_sgd(
                data, opts.epochs, opts.batch_size, opts.learning_rate, opts.momentum, opts.seed
            )
        results[m] = {k: v for k, v in dataclasses.asdict(r).items() if k != "params"}
        print(
            f"  {m}: test accuracy {r.test_accuracy:.4f} (train {r.train_accuracy:.4f}), "
            f"{r.seconds:.2f}s + compile {r.compile_seconds:.1f}s, {r.evaluations:,} "
            f"{'loss evaluations' if m == 'mbd' else 'gradient steps'}",
        )
    summary = {
        "data": data.name,
        "data_path": None if opts.data is None else str(opts.data),
        "train_size": len(data.y_train),
        "test_size": len(data.y_test),
        "num_params": mlp.num_params(d),
        "results": results,
        "options": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(opts).items()
        },
        "versions": versions(),
    }
    with atomic_out_dir(opts.out) as tmp:
        write_json(tmp / "summary.json", summary)
    print(f"-> {opts.out}")
    return 0
