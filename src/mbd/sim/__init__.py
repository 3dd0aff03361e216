"""Simulator adapters: turn a simulator into a :class:`~mbd.problem.Problem`.

The solver never imports a simulator; these modules do, lazily, and only when called:

- :mod:`mbd.sim.brax_adapter`: any Brax ``PipelineEnv`` (backends ``positional``,
  ``generalized``, ``mjx``), state = the Brax ``envs.State`` pytree;
- :mod:`mbd.sim.mjx_adapter`: a MuJoCo model (an MJCF file or string of your own) run by
  MuJoCo MJX, with a reward function of the MJX data;
- :mod:`mbd.sim.render`: a self-contained HTML 3-D replay of a planned trajectory.

Both adapters need the ``brax`` extra: ``pip install 'mbd[brax]'``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from types import ModuleType

EXTRA_HINT = "pip install 'mbd[brax]'"


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str) -> ModuleType:
    """Imports an optional simulator module, quietly, with a clear error when missing.

    Brax warns on every model load that it is no longer maintained, and MuJoCo MJX prints
    to stdout when its optional Warp backend is absent; both are silenced here so that
    ``mbd plan --quiet`` keeps stdout for its result.

    Args:
        module: dotted module name, e.g. ``"brax.envs"`` or ``"mujoco.mjx"``.

    Returns:
        The module.

    Raises:
        MissingExtraError: naming ``pip install 'mbd[brax]'`` when it cannot be imported.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        raise MissingExtraError(
            f"this needs the optional dependency {top!r} ({e}); install it with: {EXTRA_HINT}"
        ) from None


@contextlib.contextmanager
def quiet_brax():
    """Silences Brax's 'not actively maintained' warning while models load."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not actively being maintained.*")
        yield


__all__ = ["EXTRA_HINT", "MissingExtraError", "quiet_brax", "require"]
