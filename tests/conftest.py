"""Shared test fixtures: a seeded random generator and the hypothesis settings profiles.

Select a hypothesis profile with ``HYPOTHESIS_PROFILE=thorough pytest ...`` (default: ``lrsweep``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

#: Seed of the ``rng`` fixture; every test gets a fresh generator with this seed.
TEST_SEED = 20250917

settings.register_profile(
    "lrsweep",
    max_examples=40,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "lrsweep"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh ``np.random.Generator`` seeded with :data:`TEST_SEED` (never the global RNG)."""
    return np.random.default_rng(TEST_SEED)
