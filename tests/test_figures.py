"""`mbd figures` writes the three PNGs; the numerical densities of Fig. 2 are right."""

import numpy as np

from mbd.cli.main import main
from mbd.figures import fig2_objective, intermediate_densities


def test_intermediate_densities_normalized_and_gaussian_limit():
    y = np.linspace(-6, 6, 1201)
    dens = intermediate_densities(y, fig2_objective(y), np.array([0.999, 0.5, 1e-4]), 0.05)
    dy = y[1] - y[0]
    np.testing.assert_allclose(dens.sum(axis=1) * dy, 1.0, rtol=1e-6)
    # ab -> 0: p_i -> N(0, 1)
    np.testing.assert_allclose(dens[-1], np.exp(-0.5 * y**2) / np.sqrt(2 * np.pi), atol=2e-3)
    # p_0 peaks at the global minimum of J (0.5); smoothing lowers the peak
    assert abs(y[np.argmax(dens[0])] - 0.5) < 0.02
    assert dens[2].max() < dens[1].max() < dens[0].max()


def test_figures_command_writes_pngs(tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["figures", str(out), "--quick"]) == 0
    for name in ("fig2.png", "fig6.png", "car2d_iterates.png"):
        f = out / name
        assert f.stat().st_size > 10_000
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["figures"]) == 2
    assert "DIR: missing" in capsys.readouterr().err
