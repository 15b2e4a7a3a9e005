"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest

from specbench.model import PerformanceModel, TargetPreset, load_hardware, load_target


@pytest.fixture(scope="session")
def target() -> TargetPreset:
    """The shipped MiniMax-M2.7 preset (immutable, so one per session)."""
    return load_target("minimax-m2.7")


@pytest.fixture(scope="session")
def real_model(target: TargetPreset) -> PerformanceModel:
    """The shipped prior for MiniMax-M2.7 on the default simulated profile."""
    return PerformanceModel(target, load_hardware("h200-nvlink"), seed=0)
