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

from specbench.errors import SpecbenchError
from specbench.model.cost import CostModel
from specbench.model.engines import load_engine
from specbench.model.hardware import HardwareProfile
from specbench.model.memory import MemoryFit, memory_fit
from specbench.model.targets import TargetPreset
from specbench.spec_config import SpecConfig

#: Tree slots per request the memory check reserves: a typical verified tree (3-4-8).
_DRAFT_SLOTS = 8


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


# ---------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class MemoryCheck:
    """Per-GPU memory of target weights, draft weights and KV cache vs what the GPU has."""

    gpu: str
    gpu_gib: float
    tp: int
    weights_gib: float
    draft_gib: float
    kv_gib: float
    concurrency: int
    context_tokens: int
    usable_gib: float
    min_tp: int | None  # the smallest TP (power of two, up to the box) that fits

    @property
    def needed_gib(self) -> float:
        return self.weights_gib + self.draft_gib + self.kv_gib

    @property
    def fits(self) -> bool:
        return self.needed_gib <= self.usable_gib


def memory_check(
    target: TargetPreset, hardware: HardwareProfile, concurrency: int, context_tokens: int
) -> MemoryCheck:
    """Does the target (with its draft and the KV of ``concurrency`` requests) fit, and
    from which TP size on does it (the model's ``memory_fit``, SGLang's memory share)?"""
    engine = load_engine()

    def fit(profile: HardwareProfile) -> MemoryFit:
        return memory_fit(
            target,
            profile,
            engine,
            batch=concurrency,
            sequence_tokens=context_tokens,
            draft_tokens=_DRAFT_SLOTS,
        )

    here = fit(hardware)
    min_tp = None
    size = 1
    while size <= max(hardware.gpus, hardware.tp):
        try:
            candidate = fit(hardware.with_tp(size))
        except SpecbenchError:
            candidate = None
        if candidate is not None and candidate.fits:
            min_tp = size
            break
        size *= 2
    return MemoryCheck(
        hardware.gpu.name,
        hardware.gpu.memory_gib,
        hardware.tp,
        here.weights_gib,
        here.draft_gib,
        here.kv_gib,
        concurrency,
        context_tokens,
        here.capacity_gib,
        min_tp,
    )


def memory_text(check: MemoryCheck) -> str:
    """The memory check as one sentence a deployer can act on."""
    need = (
        f"{check.weights_gib:.1f} GiB of target weights + {check.draft_gib:.1f} GiB of draft "
        f"+ {check.kv_gib:.1f} GiB of KV cache ({check.concurrency} requests x "
        f"{check.context_tokens} tokens) per GPU at TP {check.tp}"
    )
    have = f"{check.usable_gib:.0f} GiB usable of {check.gpu_gib:.0f} GiB ({check.gpu})"
    if check.fits:
        return f"Fits: {need}, against {have}."
    if check.min_tp is not None:
        fix = f"use --tp-size {check.min_tp} or larger"
    else:
        fix = "it does not fit on this box at any TP size; use larger GPUs or more of them"
    return f"Does NOT fit: {need}, against {have}; {fix}."


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
    "MemoryCheck",
    "StepBreakdown",
    "interconnect_text",
    "memory_check",
    "memory_text",
    "model_curve",
    "step_breakdown",
]
