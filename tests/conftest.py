"""Shared test settings.

The suite's programs are tiny, so compiling them is most of its time: every test, and
every process a test starts, compiles with XLA's optimizations off
(``jax_disable_most_optimizations``), which compiles about twice as fast; the library,
the CLI and the benchmarks keep them on. ``JAX_DISABLE_MOST_OPTIMIZATIONS=0 pytest``
runs the suite with them on.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# The CLI turns on JAX's persistent compilation cache; tests that run it in-process keep
# it off (the cache tests choose their own folder).
os.environ.setdefault("MBD_CACHE_DIR", "off")

import jax
import pytest


@pytest.fixture(autouse=True, scope="session")
def _float32() -> None:
    """The library computes in float32; make sure no test flips x64 on for others."""
    assert not jax.config.jax_enable_x64
