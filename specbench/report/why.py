"""Why the verdict is what it is: step time by part, the interconnect in words, memory.

Everything here is SIMULATED: it prices the run's target on the run's hardware profile
with the performance model, because a run measures tokens/s, not where a decode step's
time goes. The report labels it so. The breakdown comes from the cost model's own
``spec_parts``/``baseline_parts`` where this specbench has them, and is otherwise split
from the forwards the cost model exposes (the all-reduces priced separately, as the
cost model adds them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from specbench.model.cost import CostModel
from specbench.model.hardware import HardwareProfile
from specbench.model.targets import TargetPreset
from specbench.spec_config import SpecConfig

_GIB = 2.0**30
#: Share of GPU memory SGLang hands to weights and KV cache (its ``mem_fraction_static``
#: is about 0.8-0.9 depending on GPU size, python/sglang/srt/server_args.py); the rest is
#: activations, CUDA graphs and the allocator's slack.
USABLE_MEMORY_FRACTION = 0.88


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


def _parts_from_forwards(
    cost: CostModel, config: SpecConfig | None, batch: float
) -> tuple[float, float, float, float]:
    """(draft, verify, all-reduce, other) seconds from the forward-level prices."""
    t, d = cost.target.arch, cost.target.draft
    o = cost.target.overheads
    b = np.asarray(batch, dtype=float)

    def target_comm(tokens: np.ndarray) -> float:
        return float(
            2 * t.layers * cost.allreduce_s(tokens * t.hidden * 2)
            + cost.allgather_s(tokens * t.vocab * 2)
        )

    def draft_comm(tokens: np.ndarray) -> float:
        return float(
            2 * d.layers * cost.allreduce_s(tokens * d.hidden * 2)
            + cost.allgather_s(tokens * d.vocab * 2)
        )

    sched = o.scheduler_us * 1e-6
    if config is None:
        total = float(cost.target_forward_s(b, b))
        comm = target_comm(b)
        return 0.0, total - comm, comm, sched
    s, k, n = config.num_steps, config.topk, config.num_draft_tokens
    verify_total = float(cost.target_forward_s(b * n, b))
    verify_comm = target_comm(b * n)
    extend = float(cost.draft_forward_s(b * (s + 1), b, with_fusion=True))
    step = float(cost.draft_forward_s(b * k, b, with_fusion=False))
    draft_comm_total = draft_comm(b * (s + 1)) + (s - 1) * draft_comm(b * k)
    draft_total = extend + (s - 1) * step
    other = sched + o.spec_iteration_us * 1e-6
    return (
        draft_total - draft_comm_total,
        verify_total - verify_comm,
        verify_comm + draft_comm_total,
        other,
    )


def _parts(cost: CostModel, config: SpecConfig | None, batch: int) -> tuple[float, ...]:
    """The cost model's own split when it has one, else the split from its forwards."""
    b = np.asarray(float(batch))
    if config is None and hasattr(cost, "baseline_parts"):
        parts = cost.baseline_parts(b)
    elif config is not None and hasattr(cost, "spec_parts"):
        parts = cost.spec_parts(
            np.asarray(float(config.num_steps)),
            np.asarray(float(config.topk)),
            np.asarray(float(config.num_draft_tokens)),
            b,
        )
    else:
        return _parts_from_forwards(cost, config, float(batch))
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


def _per_gpu_gib(
    target: TargetPreset, tp: int, concurrency: int, context: int
) -> tuple[float, ...]:
    a, d = target.arch, target.draft
    body = a.total_params - 2 * a.vocab * a.hidden
    weights = (body * a.weight_bytes + 2 * a.vocab * a.hidden * a.lm_head_bytes) / tp
    draft = d.params_per_forward(True) * d.weight_bytes / tp
    kv_heads = max(a.kv_heads / tp, 1.0)
    kv_token = 2 * kv_heads * a.head_dim * a.kv_bytes * a.layers
    kv = kv_token * context * concurrency
    return weights / _GIB, draft / _GIB, kv / _GIB


def memory_check(
    target: TargetPreset, hardware: HardwareProfile, concurrency: int, context_tokens: int
) -> MemoryCheck:
    """Does the target (with its draft and the KV of ``concurrency`` requests) fit?"""
    tp = hardware.tp
    weights, draft, kv = _per_gpu_gib(target, tp, concurrency, context_tokens)
    usable = hardware.gpu.memory_gib * USABLE_MEMORY_FRACTION
    min_tp = None
    size = 1
    while size <= max(hardware.gpus, tp):
        if sum(_per_gpu_gib(target, size, concurrency, context_tokens)) <= usable:
            min_tp = size
            break
        size *= 2
    return MemoryCheck(
        hardware.gpu.name,
        hardware.gpu.memory_gib,
        tp,
        weights,
        draft,
        kv,
        concurrency,
        context_tokens,
        usable,
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
    "USABLE_MEMORY_FRACTION",
    "MemoryCheck",
    "StepBreakdown",
    "interconnect_text",
    "memory_check",
    "memory_text",
    "model_curve",
    "step_breakdown",
]
