"""Shared test helpers."""

from __future__ import annotations

import os

import jax
import pytest

# The CLI turns on JAX's persistent compilation cache; tests that run it in-process keep
# it off (the cache tests choose their own folder).
os.environ.setdefault("MBD_CACHE_DIR", "off")


@pytest.fixture(autouse=True, scope="session")
def _float32() -> None:
    """The library computes in float32; make sure no test flips x64 on for others."""
    assert not jax.config.jax_enable_x64
