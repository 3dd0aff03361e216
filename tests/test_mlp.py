"""Gradient-free MLP training (paper A.2.1): data loading, parameter count, MBD beats
chance on digits in seconds, SGD baseline, clear data errors."""

import gzip
import json

import jax
import numpy as np
import pytest

pytest.importorskip("sklearn")

import mbd
from mbd.bbo import mlp
from mbd.cli.main import main


def test_param_counts_and_forward_shape():
    assert mlp.num_params(64) == 64 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10 == 3466
    assert mlp.num_params(784) == 26506
    theta = jax.random.normal(jax.random.key(0), (mlp.num_params(64),))
    assert mlp.logits(theta, np.zeros((5, 64), np.float32)).shape == (5, 10)


def test_digits_split():
    d = mlp.load_digits(seed=0)
    assert d.x_train.shape == (1348, 64) and d.x_test.shape == (449, 64)
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert set(np.unique(d.y_train)) == set(range(10))


def test_mbd_trains_well_above_chance_quickly():
    d = mlp.load_digits(seed=0)
    cfg = mbd.MBDConfig(num_samples=128, num_steps=30, temperature=0.1)
    r = mlp.train_mbd(d, cfg, seed=0, train_subset=512)
    assert r.test_accuracy > 0.35  # chance is 0.10
    assert r.evaluations == 29 * 128 + 1


def test_sgd_baseline():
    pytest.importorskip("optax")
    d = mlp.load_digits(seed=0)
    r = mlp.train_sgd(d, epochs=30, learning_rate=0.1)
    assert r.test_accuracy > 0.8


def _write_idx(path, arr, gz=False):
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def _mnist_like(n, rng):
    return rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_roundtrip(tmp_path, gz):
    rng = np.random.default_rng(0)
    xtr, ytr = _mnist_like(20, rng)
    xte, yte = _mnist_like(7, rng)
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", xtr, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", ytr, gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", xte, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", yte, gz)
    d = mlp.load_mnist(tmp_path)
    assert d.x_train.shape == (20, 784) and d.x_test.shape == (7, 784)
    np.testing.assert_allclose(d.x_train[3], xtr[3].reshape(-1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.y_test, yte)


def test_npz_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    xtr, ytr = _mnist_like(10, rng)
    xte, yte = _mnist_like(4, rng)
    good = tmp_path / "m.npz"
    np.savez(good, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    assert mlp.load_mnist(good).x_train.shape == (10, 784)
    with pytest.raises(mlp.DataError, match="no such file"):
        mlp.load_mnist(tmp_path / "missing.npz")
    bad = tmp_path / "b.npz"
    np.savez(bad, x_train=xtr, y_train=ytr)
    with pytest.raises(mlp.DataError, match="missing arrays x_test, y_test"):
        mlp.load_mnist(bad)
    junk = tmp_path / "j.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(mlp.DataError, match=r"not a readable \.npz"):
        mlp.load_mnist(junk)
    wrong = tmp_path / "w.npz"
    np.savez(wrong, x_train=xtr, y_train=ytr[:3], x_test=xte, y_test=yte)
    with pytest.raises(mlp.DataError, match="do not match"):
        mlp.load_mnist(wrong)
    folder = tmp_path / "idx"
    folder.mkdir()
    _write_idx(folder / "train-images-idx3-ubyte", xtr)
    with pytest.raises(mlp.DataError, match="missing train-labels-idx1-ubyte"):
        mlp.load_mnist(folder)
    trunc = tmp_path / "t-idx"
    trunc.write_bytes(bytes([0, 0, 8, 1]) + (50).to_bytes(4, "big") + b"\x01" * 10)
    with pytest.raises(mlp.DataError, match="header says"):
        mlp.read_idx(trunc)


def test_cli_mlp_errors_and_run(tmp_path, capsys):
    assert main(["mlp", "--data", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "--data:" in capsys.readouterr().err
    junk = tmp_path / "j.npz"
    junk.write_bytes(b"junk")
    assert main(["mlp", "--data", str(junk), "--out", str(tmp_path / "o")]) == 2
    assert "not a readable .npz" in capsys.readouterr().err
    out = tmp_path / "run"
    rc = main(
        [
            "mlp",
            "--methods",
            "mbd",
            "--num-samples",
            "32",
            "--num-steps",
            "5",
            "--train-subset",
            "128",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["data"] == "digits-8x8" and s["num_params"] == 3466
    assert 0.0 <= s["results"]["mbd"]["test_accuracy"] <= 1.0
