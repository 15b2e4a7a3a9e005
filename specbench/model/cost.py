"""Cost model: wall time of target and draft forwards on one profile, vectorised.

Decode is priced as a roofline (weights + KV bytes over HBM bandwidth vs FLOPs over
tensor throughput) plus what a roofline misses: fixed per-layer costs (kernel launches,
MoE routing) and tensor-parallel collectives, 2 all-reduces per layer priced by the
profile's alpha-beta fit. These three terms are why the same tau is worth 2x on NVLink
and nothing on host-staged PCIe, and why speedup falls with batch (the verify forward
processes batch x num_draft_tokens tokens and turns compute-bound first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specbench.model.hardware import HardwareProfile
from specbench.model.targets import TargetPreset

_US = 1e-6
#: p of the smooth max (m^p + c^p)^(1/p): memory and compute overlap imperfectly.
_ROOF_P = 3.0


@dataclass(frozen=True)
class CostScales:
    """Multipliers on the profile/preset constants; all 1.0 except in perturbed models."""

    allreduce_alpha: float = 1.0
    allreduce_bandwidth: float = 1.0
    hbm_efficiency: float = 1.0
    compute_efficiency: float = 1.0
    layer_overhead: float = 1.0
    draft_overhead: float = 1.0
    spec_overhead: float = 1.0


class CostModel:
    """Times in seconds for token counts given as numpy arrays (or scalars)."""

    def __init__(
        self, target: TargetPreset, hardware: HardwareProfile, scales: CostScales | None = None
    ) -> None:
        self.target = target
        self.hardware = hardware
        self.scales = scales or CostScales()
        gpu = hardware.gpu
        s = self.scales
        self._hbm = gpu.hbm_gbps * 1e9 * min(gpu.hbm_efficiency * s.hbm_efficiency, 1.0)
        peak = gpu.peak_tflops_fp8 if target.arch.weight_bytes <= 1.0 else gpu.peak_tflops_bf16
        self._flops = peak * 1e12 * min(gpu.compute_efficiency * s.compute_efficiency, 1.0)
        self._draft_flops = (
            gpu.peak_tflops_bf16 * 1e12 * min(gpu.compute_efficiency * s.compute_efficiency, 1.0)
        )
        self._tp = hardware.tp
        fit = hardware.active_fit
        self._alpha_s = 0.0 if fit is None else fit.alpha_us * s.allreduce_alpha * _US
        self._bw = 1.0 if fit is None else fit.bandwidth_gbps * 1e9 * s.allreduce_bandwidth

    # -- collectives ---------------------------------------------------------------
    def allreduce_s(self, nbytes: np.ndarray) -> np.ndarray:
        if self._tp == 1:
            return np.zeros_like(np.asarray(nbytes, dtype=float))
        return self._alpha_s + np.asarray(nbytes, dtype=float) / self._bw

    def allgather_s(self, total_bytes: np.ndarray) -> np.ndarray:
        # A ring all-gather moves half the bytes per rank of a ring all-reduce of the
        # same output size; price it with the all-reduce fit at half the message.
        if self._tp == 1:
            return np.zeros_like(np.asarray(total_bytes, dtype=float))
        return self._alpha_s + 0.5 * np.asarray(total_bytes, dtype=float) / self._bw

    # -- target ------------------------------------------------------------------
    def experts_touched(self, tokens: np.ndarray) -> np.ndarray:
        """Distinct experts per layer routed to by `tokens` tokens (independent top-k)."""
        a = self.target.arch
        t = np.asarray(tokens, dtype=float)
        return a.num_experts * (1.0 - (1.0 - a.experts_per_token / a.num_experts) ** t)

    def target_forward_s(
        self, tokens: np.ndarray, requests: np.ndarray, logit_tokens: np.ndarray | None = None
    ) -> np.ndarray:
        """One target forward over `tokens` new tokens from `requests` sequences."""
        a = self.target.arch
        o = self.target.overheads
        tp = self._tp
        n = np.asarray(tokens, dtype=float)
        r = np.asarray(requests, dtype=float)
        lt = n if logit_tokens is None else np.asarray(logit_tokens, dtype=float)
        if a.num_experts:
            mlp_params = self.experts_touched(n) * a.expert_params
        else:
            mlp_params = np.full_like(n, a.dense_mlp_params)
        weight_bytes = (
            a.layers * (a.attn_params_per_layer + mlp_params) * a.weight_bytes
            + a.vocab * a.hidden * a.lm_head_bytes
        ) / tp
        kv_heads_gpu = max(a.kv_heads / tp, 1.0)
        kv_bytes = r * o.context_tokens * 2 * kv_heads_gpu * a.head_dim * a.kv_bytes * a.layers
        flops = (
            2.0 * a.active_params_per_token * n
            + 4.0 * n * o.context_tokens * a.heads * a.head_dim * a.layers
        ) / tp
        mem_s = (weight_bytes + kv_bytes) / self._hbm
        comp_s = flops / self._flops
        roof = (mem_s**_ROOF_P + comp_s**_ROOF_P) ** (1.0 / _ROOF_P)
        fixed = (
            a.layers * o.layer_us * self.hardware.gpu.overhead_scale * self.scales.layer_overhead
        ) * _US
        comm = 2 * a.layers * self.allreduce_s(n * a.hidden * 2) + self.allgather_s(
            lt * a.vocab * 2
        )
        return np.asarray(roof + fixed + comm, dtype=float)

    # -- draft -------------------------------------------------------------------
    def draft_forward_s(
        self, tokens: np.ndarray, requests: np.ndarray, *, with_fusion: bool
    ) -> np.ndarray:
        """One EAGLE3 draft forward (1 layer + head) over `tokens` tree nodes."""
        d = self.target.draft
        o = self.target.overheads
        tp = self._tp
        n = np.asarray(tokens, dtype=float)
        r = np.asarray(requests, dtype=float)
        params = d.params_per_forward(with_fusion)
        kv_heads_gpu = max(d.kv_heads / tp, 1.0)
        kv_bytes = r * o.context_tokens * 2 * kv_heads_gpu * d.head_dim * 2 * d.layers
        mem_s = (params * d.weight_bytes / tp + kv_bytes) / self._hbm
        flops = (2.0 * params * n + 4.0 * n * o.context_tokens * d.heads * d.head_dim) / tp
        comp_s = flops / self._draft_flops
        roof = (mem_s**_ROOF_P + comp_s**_ROOF_P) ** (1.0 / _ROOF_P)
        fixed = o.draft_step_us * self.hardware.gpu.overhead_scale * self.scales.draft_overhead
        comm = 2 * d.layers * self.allreduce_s(n * d.hidden * 2) + self.allgather_s(n * d.vocab * 2)
        return np.asarray(roof + fixed * _US + comm, dtype=float)

    # -- decode iterations -------------------------------------------------------
    def baseline_step_s(self, batch: np.ndarray) -> np.ndarray:
        b = np.asarray(batch, dtype=float)
        sched = self.target.overheads.scheduler_us * _US
        return self.target_forward_s(b, b) + sched

    def spec_step_s(
        self,
        num_steps: np.ndarray,
        topk: np.ndarray,
        num_draft_tokens: np.ndarray,
        batch: np.ndarray,
    ) -> np.ndarray:
        """Draft extend + (num_steps - 1) draft steps + one tree verify, as SGLang runs it.

        SGLang's draft phase runs the draft once over the tokens just accepted (padded
        to num_steps + 1 per request; this pass fuses the target's aux hidden states and
        yields the first top-k) and then num_steps - 1 forwards over batch x topk nodes.
        """
        s = np.asarray(num_steps, dtype=float)
        k = np.asarray(topk, dtype=float)
        ndt = np.asarray(num_draft_tokens, dtype=float)
        b = np.asarray(batch, dtype=float)
        o = self.target.overheads
        verify = self.target_forward_s(b * ndt, b)
        extend = self.draft_forward_s(b * (s + 1), b, with_fusion=True)
        steps = (s - 1) * self.draft_forward_s(b * k, b, with_fusion=False)
        fixed = (o.scheduler_us + o.spec_iteration_us * self.scales.spec_overhead) * _US
        return np.asarray(verify + extend + steps + fixed, dtype=float)

    def prefill_s(self, prompt_tokens: float, batch: int = 1) -> float:
        n = float(prompt_tokens) * batch
        # Prefill KV is written, not read over a long context: treat context as the prompt.
        t = self.target_forward_s(np.asarray(n), np.asarray(float(batch)), np.asarray(float(batch)))
        return float(t) + self.target.overheads.scheduler_us * _US
