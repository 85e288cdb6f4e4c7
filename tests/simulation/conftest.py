"""Shared fixtures of the simulator tests: the full 2015–2016 replay, run once."""

from __future__ import annotations

import pytest

from fairshare.simulation import SimulationResult, simulate


@pytest.fixture(scope="session")
def replay() -> SimulationResult:
    """All six policies on the 2015–2016 flows, seed 1."""
    return simulate("2015-2016", seed=1)
