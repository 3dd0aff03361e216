"""Simulator adapters: turn a simulator into a :class:`~mbd.problem.Problem`.

The solver never imports a simulator; these modules do, lazily, and only when called:

- :mod:`mbd.sim.brax_adapter`: any Brax ``PipelineEnv`` (backends ``positional``,
  ``generalized``, ``mjx``), state = the Brax ``envs.State`` pytree;
- :mod:`mbd.sim.engines`: a MuJoCo model (MJCF file or text, dm_control and gymnasium
  files included) with a reward of an engine-neutral :class:`~mbd.sim.engines.View`,
  run by native MuJoCo (:mod:`mbd.sim.native`, the CPU default), MJX
  (:mod:`mbd.sim.mjx_adapter`) or MuJoCo Warp (:mod:`mbd.sim.warp_engine`);
- :mod:`mbd.sim.mjx_adapter`: also a MuJoCo model run by MJX with a reward of the MJX
  data itself;
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
        MissingExtraError: naming ``pip install 'mbd[brax]'`` (``'mbd[warp]'`` for MuJoCo
            Warp) when it cannot be imported.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        hint = "pip install 'mbd[warp]'" if top in ("warp", "mujoco_warp") else EXTRA_HINT
        raise MissingExtraError(
            f"this needs the optional dependency {top!r} ({e}); install it with: {hint}"
        ) from None


@contextlib.contextmanager
def quiet_brax():
    """Silences Brax's 'not actively maintained' warning while models load."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not actively being maintained.*")
        yield


def engine_of(problem) -> str | None:
    """The simulator a problem runs on: ``mujoco``, ``mjx``, ``warp``, ``brax-<pipeline>``,
    or None for a pure-JAX problem."""
    step = problem.step
    engine = getattr(step, "engine", None)
    if isinstance(engine, str):
        return engine
    env = getattr(step, "env", None)
    if env is not None:
        return f"brax-{getattr(getattr(env, 'unwrapped', env), 'backend', '?')}"
    return None


__all__ = ["EXTRA_HINT", "MissingExtraError", "engine_of", "quiet_brax", "require"]
