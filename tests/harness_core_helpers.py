"""Shared fixtures of the tests/test_harness_core_*.py files."""

from __future__ import annotations

import pytest

from specbench.model import PerformanceModel, load_hardware, load_target


@pytest.fixture(scope="session", name="real_model")
def real_model_fixture() -> PerformanceModel:
    """The shipped prior for MiniMax-M2.7 on the default simulated profile."""
    return PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"), seed=0)
