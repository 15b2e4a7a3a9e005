"""The simulator as an engine: ``--backend sim``, the in-process one.

It is an engine like SGLang and vLLM behind the same adapter contract, so the sweep and
the report never ask for it by name. What differs is declared here: it runs in process
(``in_process``: no server to launch or attach to, a hardware profile to simulate), it
refuses the options that only make sense with a server, and its backend is the
performance model. Everything it prints about deploying a configuration is SGLang's,
the engine it imitates (serve-sim speaks SGLang's protocol too), so it inherits
SGLang's flags, launch lines and configuration rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from specbench.harness.sglang import SglangAdapter
from specbench.spec_config import EAGLE3, SpecConfig

if TYPE_CHECKING:
    from specbench.harness.backend import Backend
    from specbench.model import HardwareProfile, TargetPreset


class SimAdapter(SglangAdapter):
    """The performance model's simulated SGLang, measured in process on a virtual clock."""

    name = "sim"
    adaptive_for = ("sglang", "vllm")
    in_process = True

    def available(self) -> bool:
        """Always: the simulator needs nothing but specbench."""
        return True

    def refused_option(self, *, endpoint: bool, launch_cmd: bool, server_args: bool) -> str | None:
        if endpoint:
            return f"--endpoint attaches to a server; it cannot be used with --backend {self.name}"
        for flag, given in (("--launch-cmd", launch_cmd), ("--server-args", server_args)):
            if given:
                return f"{flag} launches a server; it cannot be used with --backend {self.name}"
        return None

    def in_process_backend(
        self,
        target: TargetPreset,
        profile: HardwareProfile,
        *,
        seed: int,
        perturbation: float,
    ) -> Backend:
        """A SimBackend whose truth is the model, perturbed by ``perturbation`` (0: the
        truth is the prior itself)."""
        from specbench.harness.sim_backend import SimBackend
        from specbench.model import PerformanceModel

        truth = PerformanceModel(target, profile, seed=seed)
        if perturbation > 0:
            truth = truth.perturbed(seed, strength=perturbation)
        return SimBackend(truth, seed=seed)

    def check_config(self, config: SpecConfig) -> str | None:
        """None for EAGLE3 configurations (the simulator models any the space holds);
        for another method "not simulated": the simulator has no acceptance or draft
        cost of it, and answers no invented numbers."""
        if config.method != EAGLE3:
            return (
                f"{config.method} is not simulated (the simulator models the preset's "
                "EAGLE3 draft only): measure it on a real engine"
            )
        return None

    def manifest_fields(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """Nothing: the in-process backend describes itself (SimBackend.describe)."""
        return {}


SIM = SimAdapter()

__all__ = ["SIM", "SimAdapter"]
