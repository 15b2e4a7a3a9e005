"""Performance model of EAGLE speculative decoding: acceptance, cost, presets, profiles.

Everything computed here is SIMULATED (a prediction), and callers must label it so.
"""

from __future__ import annotations

from specbench.model.acceptance import DomainAcceptance, leviathan_expected_tokens
from specbench.model.cost import CostModel, CostScales, StepParts
from specbench.model.draft_profile import DraftProfile, load_draft_profile
from specbench.model.engines import DEFAULT_ENGINE, EngineProfile, list_engines, load_engine
from specbench.model.hardware import (
    DEFAULT_SIM_PROFILE,
    CollectiveFit,
    GpuSpec,
    HardwareProfile,
    list_profiles,
    load_hardware,
)
from specbench.model.memory import MemoryFit
from specbench.model.performance import (
    PerformanceModel,
    Prediction,
    break_even_concurrency,
)
from specbench.model.targets import DOMAINS, TargetPreset, list_targets, load_target
from specbench.model.workload import Workload
from specbench.spec_config import SpecConfig

__all__ = [
    "DEFAULT_ENGINE",
    "DEFAULT_SIM_PROFILE",
    "DOMAINS",
    "CollectiveFit",
    "CostModel",
    "CostScales",
    "DomainAcceptance",
    "DraftProfile",
    "EngineProfile",
    "GpuSpec",
    "HardwareProfile",
    "MemoryFit",
    "PerformanceModel",
    "Prediction",
    "SpecConfig",
    "StepParts",
    "TargetPreset",
    "Workload",
    "break_even_concurrency",
    "leviathan_expected_tokens",
    "list_engines",
    "list_profiles",
    "list_targets",
    "load_draft_profile",
    "load_engine",
    "load_hardware",
    "load_target",
]
