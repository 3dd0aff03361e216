"""Gradient-free training of a small MLP with MBD (paper Appendix A.2.1).

The network is the paper's: inputs -> 32 -> 32 -> 10 with ReLU (784-32-32-10, 27,562
parameters, on MNIST; 64-32-32-10, 3,466 parameters, on scikit-learn's 8x8 digits, the
embedded default). MBD searches the flat parameter vector y; weights are reparametrized
as W = y * sqrt(2 / fan_in) (He scaling), so MBD's unit-scale noise draws He-initialized
networks. The reward is minus the mean cross-entropy on the training set (or a fixed
random subset of it, ``train_subset``). The baseline is SGD with momentum (optax) from a
He-normal initialization, on the same data.

Data: :func:`load_digits` (ships with scikit-learn, nothing downloaded) or
:func:`load_mnist` on local files only: a folder with the four IDX files
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each possibly ``.gz``), or an ``.npz`` with ``x_train``,
``y_train``, ``x_test``, ``y_test``.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbd.compile import compile_and_run
from mbd.problem import Array, Objective
from mbd.solver import MBDConfig, make_solver

HIDDEN: tuple[int, ...] = (32, 32)
NUM_CLASSES = 10


class Dataset(NamedTuple):
    """A classification data set, inputs scaled to [0, 1].

    Attributes:
        x_train: (n, D) float32. y_train: (n,) int32 in 0..9.
        x_test: (m, D) float32. y_test: (m,) int32.
        name: label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str


class DataError(ValueError):
    """A data file that is missing or malformed (message says which and why)."""


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, 64 inputs), split at random.

    Args:
        test_fraction: share of the images held out for testing.
        seed: seed of the split.

    Returns:
        :class:`Dataset` with inputs in [0, 1].
    """
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:
        raise ImportError("the digits data set needs scikit-learn: pip install 'mbd[mlp]'") from e
    d = _load()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int32)
    idx = np.random.default_rng(seed).permutation(len(y))
    n_test = round(test_fraction * len(y))
    te, tr = idx[:n_test], idx[n_test:]
    return Dataset(x[tr], y[tr], x[te], y[te], "digits-8x8")


def _open(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (MNIST's format), possibly gzipped.

    Args:
        path: the file.

    Returns:
        uint8 array of the shape the header states.

    Raises:
        DataError: missing file, bad magic number, or a size that does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = _open(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DataError(f"{path}: IDX data type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if ndim < 1 or len(raw) < head:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - head != size:
        raise DataError(
            f"{path}: header says {shape} ({size} bytes) but the file holds {len(raw) - head}"
        )
    return np.frombuffer(raw, np.uint8, offset=head).reshape(shape)


_IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _check(parts: dict[str, np.ndarray], where: str) -> Dataset:
    for split in ("train", "test"):
        x, y = parts[f"x_{split}"], parts[f"y_{split}"]
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
            raise DataError(
                f"{where}: {split} images {x.shape} and labels {y.shape} do not match "
                "(want (n, ...) images and (n,) labels)"
            )
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(f"{where}: {split} labels must be in 0..9")
    if parts["x_train"].shape[1:] != parts["x_test"].shape[1:]:
        raise DataError(f"{where}: train and test images have different shapes")
    out = {}
    for k, v in parts.items():
        if k.startswith("x"):
            v = v.reshape(len(v), -1).astype(np.float32)
            out[k] = v / 255.0 if v.max() > 1.0 else v
        else:
            out[k] = v.astype(np.int32)
    return Dataset(out["x_train"], out["y_train"], out["x_test"], out["y_test"], "mnist")


def load_mnist(path: str | Path) -> Dataset:
    """MNIST from local files (nothing is downloaded).

    Args:
        path: a folder with the four IDX files (optionally ``.gz``), or an ``.npz`` with
            ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Returns:
        :class:`Dataset`, images flattened to (n, 784) in [0, 1].

    Raises:
        DataError: missing or malformed files.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        parts = {}
        for key, stem in _IDX_NAMES.items():
            cands = [path / stem, path / f"{stem}.gz", path / stem.replace("-idx", ".idx")]
            found = next((c for c in cands if c.is_file()), None)
            if found is None:
                raise DataError(f"{path}: missing {stem} (or {stem}.gz)")
            parts[key] = read_idx(found)
        return _check(parts, str(path))
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _IDX_NAMES if k not in z.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {', '.join(missing)} (found {', '.join(z.files)})"
                )
            parts = {k: np.asarray(z[k]) for k in _IDX_NAMES}
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    return _check(parts, str(path))


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------


def layer_sizes(num_inputs: int) -> tuple[int, ...]:
    """(D, 32, 32, 10)."""
    return (num_inputs, *HIDDEN, NUM_CLASSES)


def num_params(num_inputs: int) -> int:
    """Parameter count: 27,562 for D = 784 (paper A.2.1), 3,466 for D = 64."""
    s = layer_sizes(num_inputs)
    return sum(a * b + b for a, b in itertools.pairwise(s))


def unflatten(theta: Array, num_inputs: int) -> list[tuple[Array, Array]]:
    """Splits a flat vector (P,) into [(W (a, b), bias (b,)), ...], He-scaled."""
    s = layer_sizes(num_inputs)
    out, i = [], 0
    for a, b in itertools.pairwise(s):
        w = theta[i : i + a * b].reshape(a, b) * jnp.sqrt(2.0 / a)
        i += a * b
        out.append((w, theta[i : i + b]))
        i += b
    return out


def logits(theta: Array, x: Array) -> Array:
    """MLP forward pass with ReLU. theta: (P,); x: (n, D) -> (n, 10)."""
    h = x
    layers = unflatten(theta, x.shape[-1])
    for w, b in layers[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = layers[-1]
    return h @ w + b


def cross_entropy(theta: Array, x: Array, y: Array) -> Array:
    """Mean cross-entropy. theta: (P,); x: (n, D); y: (n,) int -> scalar."""
    lp = jax.nn.log_softmax(logits(theta, x))
    return -jnp.mean(jnp.take_along_axis(lp, y[:, None], axis=1))


def accuracy(theta: Array, x: Array, y: Array) -> float:
    """Share of correct predictions."""
    return float(jnp.mean(jnp.argmax(logits(theta, jnp.asarray(x)), -1) == jnp.asarray(y)))


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """One training run.

    Attributes:
        method: ``mbd`` or ``sgd``.
        test_accuracy: accuracy on the test split.
        train_accuracy: accuracy on the training split.
        train_loss: final mean cross-entropy on the training split.
        seconds: training wall time, compilation excluded.
        compile_seconds: compilation time.
        evaluations: loss evaluations (MBD) or gradient steps (SGD).
        params: the flat parameter vector (P,).
    """

    method: str
    test_accuracy: float
    train_accuracy: float
    train_loss: float
    seconds: float
    compile_seconds: float
    evaluations: int
    params: np.ndarray


def _finish(method, theta, data, seconds, compile_s, n) -> TrainResult:
    return TrainResult(
        method=method,
        test_accuracy=accuracy(theta, data.x_test, data.y_test),
        train_accuracy=accuracy(theta, data.x_train, data.y_train),
        train_loss=float(
            cross_entropy(theta, jnp.asarray(data.x_train), jnp.asarray(data.y_train))
        ),
        seconds=seconds,
        compile_seconds=compile_s,
        evaluations=n,
        params=np.asarray(theta),
    )


MLP_CONFIG = MBDConfig(num_samples=256, num_steps=100, temperature=0.1)
"""MBD defaults for the MLP: 256 samples (paper A.2.1), 100 diffusion steps, lambda 0.1."""


def train_mbd(
    data: Dataset, config: MBDConfig = MLP_CONFIG, seed: int = 0, train_subset: int = 2048
) -> TrainResult:
    """Trains the MLP without gradients: MBD on reward = -cross-entropy.

    Args:
        data: the data set.
        config: solver hyper-parameters.
        seed: random seed (of the solve and of the training subset).
        train_subset: number of training examples the reward is computed on (a fixed
            random subset; 0 or more than the set uses all).

    Returns:
        :class:`TrainResult`.
    """
    n = len(data.y_train)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n)[:train_subset] if 0 < train_subset < n else np.arange(n)
    x = jnp.asarray(data.x_train[idx])
    y = jnp.asarray(data.y_train[idx])
    p = num_params(data.x_train.shape[1])
    obj = Objective(fn=lambda th: -cross_entropy(th, x, y), shape=(p,), name="mlp")
    solver = make_solver(obj, config)
    res, compile_s, seconds = compile_and_run(solver.solve, jax.random.key(seed))
    return _finish(
        "mbd", res.solution, data, seconds, compile_s, config.num_updates * config.num_samples + 1
    )


def train_sgd(
    data: Dataset,
    epochs: int = 50,
    batch_size: int = 128,
    learning_rate: float = 0.1,
    momentum: float = 0.9,
    seed: int = 0,
) -> TrainResult:
    """SGD with momentum (optax) from a He-normal initialization, on the same network.

    Args:
        data: the data set.
        epochs: passes over the training split.
        batch_size: examples per step.
        learning_rate: SGD learning rate.
        momentum: momentum coefficient.
        seed: seed of the initialization and of the shuffling.

    Returns:
        :class:`TrainResult`.
    """
    try:
        import optax
    except ImportError as e:
        raise ImportError("the SGD baseline needs optax: pip install 'mbd[mlp]'") from e
    x_all = jnp.asarray(data.x_train)
    y_all = jnp.asarray(data.y_train)
    n = len(data.y_train)
    bs = min(batch_size, n)
    steps = n // bs
    p = num_params(data.x_train.shape[1])
    opt = optax.sgd(learning_rate, momentum=momentum)
    grad = jax.grad(cross_entropy)

    def train(key):
        k0, k1 = jax.random.split(key)
        theta = jax.random.normal(k0, (p,))  # He-normal through the reparametrization
        state = opt.init(theta)

        def epoch(carry, k):
            perm = jax.random.permutation(k, n)[: steps * bs].reshape(steps, bs)

            def step(c, b):
                th, st = c
                g = grad(th, x_all[b], y_all[b])
                upd, st = opt.update(g, st, th)
                return (optax.apply_updates(th, upd), st), None

            carry, _ = jax.lax.scan(step, carry, perm)
            return carry, None

        (theta, _), _ = jax.lax.scan(epoch, (theta, state), jax.random.split(k1, epochs))
        return theta

    theta, compile_s, seconds = compile_and_run(train, jax.random.key(seed))
    return _finish("sgd", theta, data, seconds, compile_s, epochs * steps)
