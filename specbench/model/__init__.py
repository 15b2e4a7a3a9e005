"""Performance model of EAGLE speculative decoding: acceptance, cost, presets, profiles.

Everything computed here is SIMULATED (a prediction), and callers must label it so.
"""

from __future__ import annotations

from specbench.model.acceptance import DomainAcceptance, leviathan_expected_tokens
from specbench.model.cost import CostModel, CostScales
from specbench.model.hardware import (
    DEFAULT_SIM_PROFILE,
    CollectiveFit,
    GpuSpec,
    HardwareProfile,
    list_profiles,
    load_hardware,
)
from specbench.model.performance import (
    PerformanceModel,
    Prediction,
    break_even_concurrency,
)
from specbench.model.targets import DOMAINS, TargetPreset, list_targets, load_target
from specbench.spec_config import SpecConfig

__all__ = [
    "DEFAULT_SIM_PROFILE",
    "DOMAINS",
    "CollectiveFit",
    "CostModel",
    "CostScales",
    "DomainAcceptance",
    "GpuSpec",
    "HardwareProfile",
    "PerformanceModel",
    "Prediction",
    "SpecConfig",
    "TargetPreset",
    "break_even_concurrency",
    "leviathan_expected_tokens",
    "list_profiles",
    "list_targets",
    "load_hardware",
    "load_target",
]
