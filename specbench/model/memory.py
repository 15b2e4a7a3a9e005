"""Does a configuration fit in GPU memory? Weights + KV cache + draft, per GPU.

A what-if that predicts 2x for a 70B model on one 24 GB card is worse than no answer, so
every prediction can say whether its (target, TP, batch, context) fits within the share of
memory the engine hands to weights and KV cache (SGLang mem_fraction_static, vLLM
gpu_memory_utilization), and how many concurrent requests would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from specbench.model.engines import EngineProfile
from specbench.model.hardware import HardwareProfile
from specbench.model.targets import TargetPreset

_GIB = float(2**30)


@dataclass(frozen=True)
class MemoryFit:
    """Per-GPU memory of one configuration at one batch, in GiB."""

    weights_gib: float
    kv_gib: float
    draft_gib: float
    capacity_gib: float  # what the engine lets weights + KV use
    max_batch: int  # concurrent requests of this length that fit (0: not even the weights)

    @property
    def used_gib(self) -> float:
        return self.weights_gib + self.kv_gib + self.draft_gib

    @property
    def fits(self) -> bool:
        return self.used_gib <= self.capacity_gib

    def as_dict(self) -> dict[str, object]:
        return {
            "weights_gib": round(self.weights_gib, 3),
            "kv_gib": round(self.kv_gib, 3),
            "draft_gib": round(self.draft_gib, 3),
            "used_gib": round(self.used_gib, 3),
            "capacity_gib": round(self.capacity_gib, 3),
            "fits": self.fits,
            "max_batch": self.max_batch,
        }


def memory_fit(
    target: TargetPreset,
    hardware: HardwareProfile,
    engine: EngineProfile,
    *,
    batch: int,
    sequence_tokens: float,
    draft_tokens: int = 0,
    draft_tp: int | None = None,
) -> MemoryFit:
    """Memory per GPU for `batch` requests of `sequence_tokens` (prompt + completion) each,
    plus `draft_tokens` tree slots per request when speculating (0: the baseline)."""
    a = target.arch
    d = target.draft
    tp = hardware.tp
    dtp = tp if draft_tp is None else draft_tp
    weights = a.weight_bytes_per_gpu(tp)
    kv_token = a.kv_bytes_per_token(tp)
    tokens = sequence_tokens + draft_tokens
    kv = batch * tokens * kv_token
    if draft_tokens:
        draft_w = d.params_per_forward(with_fusion=True) * d.weight_bytes / dtp
        draft_token = 2 * max(d.kv_heads / dtp, 1.0) * d.head_dim * 2 * d.layers
    else:
        draft_w, draft_token = 0.0, 0.0
    draft = draft_w + batch * tokens * draft_token
    capacity = hardware.gpu.memory_gib * engine.memory_fraction * _GIB
    per_request = tokens * (kv_token + draft_token)
    free = capacity - weights - draft_w
    max_batch = max(0, math.floor(free / per_request)) if per_request > 0 else 0
    return MemoryFit(weights / _GIB, kv / _GIB, draft / _GIB, capacity / _GIB, max_batch)
