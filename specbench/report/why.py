"""Why the verdict is what it is: step time by part, the interconnect in words, memory.

Everything here is SIMULATED: it prices the run's target on the run's hardware profile
with the performance model, because a run measures tokens/s, not where a decode step's
time goes. The report labels it so. The breakdown is the cost model's own
``spec_parts``/``baseline_parts`` and the memory check its ``memory_fit``; this module
only puts them into the words and rows the report shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from specbench.model.cost import CostModel
from specbench.model.hardware import HardwareProfile
from specbench.model.targets import TargetPreset
from specbench.spec_config import SpecConfig


@dataclass(frozen=True)
class StepBreakdown:
    """One decode iteration in milliseconds, and what it yields (tokens per request)."""

    label: str
    concurrency: int
    draft_ms: float
    verify_ms: float
    allreduce_ms: float
    other_ms: float
    tokens_per_step: float

    @property
    def total_ms(self) -> float:
        return self.draft_ms + self.verify_ms + self.allreduce_ms + self.other_ms

    @property
    def ms_per_token(self) -> float:
        return self.total_ms / self.tokens_per_step


def _parts(cost: CostModel, config: SpecConfig | None, batch: int) -> tuple[float, ...]:
    """(draft, verify, all-reduce, other) seconds of one decode iteration."""
    b = np.asarray(float(batch))
    if config is None:
        parts = cost.baseline_parts(b)
    else:
        parts = cost.spec_parts(
            np.asarray(float(config.num_steps)),
            np.asarray(float(config.topk)),
            np.asarray(float(config.num_draft_tokens)),
            b,
        )
    return tuple(
        float(np.asarray(x)) for x in (parts.draft, parts.verify, parts.allreduce, parts.other)
    )


def step_breakdown(
    target: TargetPreset,
    hardware: HardwareProfile,
    config: SpecConfig | None,
    concurrency: int,
    tau: float | None,
) -> StepBreakdown:
    """One iteration of ``config`` (None: no speculation) at ``concurrency`` requests."""
    cost = CostModel(target, hardware)
    draft, verify, comm, other = _parts(cost, config, concurrency)
    label = "no speculation" if config is None else config.key
    yield_ = 1.0 if config is None else max(tau or 1.0, 1.0)
    return StepBreakdown(
        label, concurrency, draft * 1e3, verify * 1e3, comm * 1e3, other * 1e3, yield_
    )


# ---------------------------------------------------------------------------- interconnect
_CLASS_WORDS = {
    "nvlink": "GPUs talk over NVLink: a small all-reduce takes a few microseconds",
    "pcie-p2p": (
        "GPUs copy to each other directly over PCIe (peer-to-peer), without NVLink: small "
        "all-reduces cost several times what they cost on NVLink"
    ),
    "host-staged": (
        "GPUs cannot read each other's memory (no peer-to-peer), so NCCL stages every "
        "all-reduce through host memory (its SHM transport): tens of microseconds each"
    ),
    "single-gpu": "one GPU: no tensor-parallel collectives at all",
    "cpu-only": "no GPU: collectives run on the CPU",
}


def interconnect_text(hardware: HardwareProfile, target: TargetPreset) -> str:
    """What the interconnect costs a forward of this target, in words and one number."""
    words = _CLASS_WORDS.get(hardware.interconnect_class, hardware.interconnect_class)
    fit = hardware.active_fit
    if fit is None or hardware.tp == 1:
        return f"{words.capitalize()}. At TP {hardware.tp} a forward runs no all-reduce."
    count = 2 * target.arch.layers
    one = fit.predict_us(target.arch.hidden * 2)
    return (
        f"{words[0].upper()}{words[1:]}. At TP {hardware.tp} one decode-sized all-reduce "
        f"({target.arch.hidden * 2 // 1024} KiB) costs about {one:.0f} us, and every target "
        f"forward runs {count} of them (2 per layer x {target.arch.layers} layers): "
        f"{count * one / 1000:.2f} ms per forward before any compute. Speculation adds the "
        "draft's own collectives on every draft step."
    )


def model_curve(
    target: TargetPreset,
    hardware: HardwareProfile,
    config: SpecConfig,
    concurrencies: Sequence[int],
    *,
    seed: int = 0,
) -> list[tuple[int, float]]:
    """The model's speedup of ``config`` at each concurrency (SIMULATED, for a plot)."""
    from specbench.model.performance import PerformanceModel

    model = PerformanceModel(target, hardware, seed=seed)
    return [(p.concurrency, p.speedup) for p in model.predict_grid([config], list(concurrencies))]


__all__ = [
    "StepBreakdown",
    "interconnect_text",
    "model_curve",
    "step_breakdown",
]
