"""Shared test helpers."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture(autouse=True, scope="session")
def _float32() -> None:
    """The library computes in float32; make sure no test flips x64 on for others."""
    assert not jax.config.jax_enable_x64
