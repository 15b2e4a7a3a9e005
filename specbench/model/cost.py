"""Cost model: wall time of target and draft forwards on one profile, vectorised.

Decode is priced as a roofline plus what a roofline misses:
  * GEMM-size-dependent efficiency: a GEMM over M tokens costs as much compute as one over
    ``M + gemm_pad_tokens`` at full efficiency (tile padding, wave quantisation, launch
    latency), so small batches never reach peak and the verify pass of a large batch is
    the first to turn compute-bound. For an MoE every touched expert pays that padding on
    its own few tokens: the small-batch inefficiency of grouped expert GEMMs.
  * fixed per-layer costs (kernel launches, MoE routing) and tensor-parallel collectives,
    2 all-reduces per layer priced by the profile's alpha-beta fit;
  * engine overheads (engines.py): per iteration, per request (and per request of a
    speculative iteration), per draft forward, per drafted and per verified token, and per target layer of a speculative iteration (the
    accepted path's KV entries are moved layer by layer).
These are why the same tau is worth 2x on NVLink and nothing on host-staged PCIe, why the
speculative step costs 1.4-2.2x a plain decode step, and why speedup falls with batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specbench.errors import BadInputError
from specbench.model.engines import EngineProfile, load_engine
from specbench.model.hardware import CollectiveFit, HardwareProfile
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


@dataclass(frozen=True)
class StepParts:
    """One decode iteration split by where the time goes (seconds, numpy arrays)."""

    draft: np.ndarray  # draft forwards: roofline, launches, per-token tree work
    verify: np.ndarray  # the target forward (the plain decode forward for the baseline)
    allreduce: np.ndarray  # tensor-parallel collectives of target and draft
    other: np.ndarray  # scheduler, per-request and per-iteration engine work

    @property
    def total(self) -> np.ndarray:
        out: np.ndarray = self.draft + self.verify + self.allreduce + self.other
        return out


class CostModel:
    """Times in seconds for token counts given as numpy arrays (or scalars)."""

    def __init__(
        self,
        target: TargetPreset,
        hardware: HardwareProfile,
        scales: CostScales | None = None,
        *,
        engine: EngineProfile | None = None,
        context_tokens: float | None = None,
        draft_tp: int | None = None,
    ) -> None:
        self.target = target
        self.hardware = hardware
        self.engine = engine or load_engine()
        self.scales = scales or CostScales()
        self.context_tokens = float(
            target.overheads.context_tokens if context_tokens is None else context_tokens
        )
        if self.context_tokens < 0:
            raise BadInputError(f"context length must be >= 0 (got {self.context_tokens:g})")
        gpu = hardware.gpu
        s = self.scales
        self._hbm = gpu.hbm_gbps * 1e9 * min(gpu.hbm_efficiency * s.hbm_efficiency, 1.0)
        eff = min(gpu.compute_efficiency * s.compute_efficiency, 1.0)
        peak = gpu.peak_tflops_fp8 if target.arch.weight_bytes <= 1.0 else gpu.peak_tflops_bf16
        self._flops = peak * 1e12 * eff
        self._draft_flops = gpu.peak_tflops_bf16 * 1e12 * eff
        self._pad = gpu.gemm_pad_tokens
        self._tp = hardware.tp
        self.draft_tp = hardware.tp if draft_tp is None else draft_tp
        if self.draft_tp < 1 or self.draft_tp > hardware.tp:
            raise BadInputError(
                f"--draft-tp must be in 1..{hardware.tp} (the target's TP), got {self.draft_tp}"
            )
        self._fit = self._scaled(hardware.active_fit)
        draft_fit = None if self.draft_tp == 1 else hardware.fit_for(self.draft_tp)
        if self.draft_tp > 1 and draft_fit is None:
            raise BadInputError(
                f"hardware {hardware.name!r} has no all-reduce figures for the draft's "
                f"world size {self.draft_tp}; choose another --draft-tp"
            )
        self._draft_fit = self._scaled(draft_fit)

    def _scaled(self, fit: CollectiveFit | None) -> tuple[float, float] | None:
        if fit is None:
            return None
        s = self.scales
        return (
            fit.alpha_us * s.allreduce_alpha * _US,
            fit.bandwidth_gbps * 1e9 * s.allreduce_bandwidth,
        )

    # -- collectives ---------------------------------------------------------------
    @staticmethod
    def _allreduce(fit: tuple[float, float] | None, nbytes: np.ndarray) -> np.ndarray:
        b = np.asarray(nbytes, dtype=float)
        if fit is None:
            return np.zeros_like(b)
        out: np.ndarray = fit[0] + b / fit[1]
        return out

    def allreduce_s(self, nbytes: np.ndarray) -> np.ndarray:
        return self._allreduce(self._fit, nbytes)

    def allgather_s(self, total_bytes: np.ndarray) -> np.ndarray:
        # A ring all-gather moves half the bytes per rank of a ring all-reduce of the
        # same output size; price it with the all-reduce fit at half the message.
        return self._allreduce(self._fit, 0.5 * np.asarray(total_bytes, dtype=float))

    # -- target ------------------------------------------------------------------
    def experts_touched(self, tokens: np.ndarray) -> np.ndarray:
        """Distinct experts per layer routed to by `tokens` tokens (independent top-k)."""
        a = self.target.arch
        t = np.asarray(tokens, dtype=float)
        out: np.ndarray = a.num_experts * (1.0 - (1.0 - a.experts_per_token / a.num_experts) ** t)
        return out

    def _kv_bytes_per_token(self) -> float:
        return self.target.arch.kv_bytes_per_token(self._tp)

    def target_parts(
        self,
        tokens: np.ndarray,
        requests: np.ndarray,
        logit_tokens: np.ndarray | None = None,
        *,
        tree: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(compute + launch seconds, collective seconds) of one target forward."""
        a = self.target.arch
        tp = self._tp
        n = np.asarray(tokens, dtype=float)
        r = np.asarray(requests, dtype=float)
        lt = n if logit_tokens is None else np.asarray(logit_tokens, dtype=float)
        pad = self._pad
        attn = a.attn_params_per_layer
        mlp_bytes = np.full_like(n, a.dense_layer_count * a.dense_mlp_params * a.weight_bytes)
        mlp_flops = a.dense_layer_count * 2.0 * a.dense_mlp_params * (n + pad)
        if a.num_experts:
            touched = self.experts_touched(n)
            always = a.shared_expert_params + a.router_params  # every token, every MoE layer
            mlp_bytes = mlp_bytes + a.moe_layer_count * (
                touched * a.expert_params * a.routed_bytes + always * a.weight_bytes
            )
            # Every touched expert's GEMM pads its own handful of tokens.
            mlp_flops = mlp_flops + a.moe_layer_count * 2.0 * (
                a.expert_params * (n * a.experts_per_token + touched * pad) + always * (n + pad)
            )
        weight_bytes = (
            a.layers * attn * a.weight_bytes + mlp_bytes + a.vocab * a.hidden * a.lm_head_bytes
        ) / tp
        kv_bw = self.engine.tree_attention_efficiency if tree else 1.0
        kv_s = r * self.context_tokens * self._kv_bytes_per_token() / (self._hbm * kv_bw)
        flops = (
            a.layers * 2.0 * attn * (n + pad)
            + mlp_flops
            + 2.0 * a.vocab * a.hidden * (lt + pad)
            + 4.0 * n * self.context_tokens * a.heads * a.head_dim * a.layers
        ) / tp
        mem_s = weight_bytes / self._hbm
        comp_s = flops / self._flops
        roof = (mem_s**_ROOF_P + comp_s**_ROOF_P) ** (1.0 / _ROOF_P) + kv_s
        fixed = (
            a.layers
            * self.target.overheads.layer_us
            * self._overhead_scale(self.scales.layer_overhead)
        )
        comm = 2 * a.layers * self.allreduce_s(n * a.hidden * 2) + self.allgather_s(
            lt * a.vocab * 2
        )
        return np.asarray(roof + fixed, dtype=float), np.asarray(comm, dtype=float)

    def _overhead_scale(self, scale: float) -> float:
        return self.hardware.gpu.overhead_scale * scale * _US

    def target_forward_s(
        self, tokens: np.ndarray, requests: np.ndarray, logit_tokens: np.ndarray | None = None
    ) -> np.ndarray:
        """One target forward over `tokens` new tokens from `requests` sequences."""
        work, comm = self.target_parts(tokens, requests, logit_tokens)
        out: np.ndarray = work + comm
        return out

    # -- draft -------------------------------------------------------------------
    def draft_parts(
        self, tokens: np.ndarray, requests: np.ndarray, *, with_fusion: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(compute + launch seconds, collective seconds) of one EAGLE draft forward."""
        d = self.target.draft
        tp = self.draft_tp
        e = self.engine
        n = np.asarray(tokens, dtype=float)
        r = np.asarray(requests, dtype=float)
        params = d.params_per_forward(with_fusion)
        kv_heads_gpu = max(d.kv_heads / tp, 1.0)
        kv_bytes = r * self.context_tokens * 2 * kv_heads_gpu * d.head_dim * 2 * d.layers
        mem_s = (params * d.weight_bytes / tp + kv_bytes) / self._hbm
        flops = (
            2.0 * params * (n + self._pad) + 4.0 * n * self.context_tokens * d.heads * d.head_dim
        ) / tp
        comp_s = flops / self._draft_flops
        roof = (mem_s**_ROOF_P + comp_s**_ROOF_P) ** (1.0 / _ROOF_P)
        fixed = (e.draft_step_us + n * e.draft_token_us) * self._overhead_scale(
            self.scales.draft_overhead
        )
        comm = 2 * d.layers * self._allreduce(self._draft_fit, n * d.hidden * 2) + self._allreduce(
            self._draft_fit, 0.5 * n * d.vocab * 2
        )
        return np.asarray(roof + fixed, dtype=float), np.asarray(comm, dtype=float)

    def draft_forward_s(
        self, tokens: np.ndarray, requests: np.ndarray, *, with_fusion: bool
    ) -> np.ndarray:
        work, comm = self.draft_parts(tokens, requests, with_fusion=with_fusion)
        out: np.ndarray = work + comm
        return out

    # -- decode iterations -------------------------------------------------------
    def _iteration_us(self, batch: np.ndarray) -> np.ndarray:
        e = self.engine
        out: np.ndarray = e.scheduler_us + batch * e.request_us
        return out

    def baseline_parts(self, batch: np.ndarray) -> StepParts:
        b = np.asarray(batch, dtype=float)
        work, comm = self.target_parts(b, b)
        other = self._iteration_us(b) * self._overhead_scale(1.0)
        return StepParts(np.zeros_like(work), work, comm, np.broadcast_to(other, work.shape))

    def baseline_step_s(self, batch: np.ndarray) -> np.ndarray:
        return self.baseline_parts(batch).total

    def spec_parts(
        self,
        num_steps: np.ndarray,
        topk: np.ndarray,
        num_draft_tokens: np.ndarray,
        batch: np.ndarray,
    ) -> StepParts:
        """Draft extend + (num_steps - 1) draft steps + one tree verify, as SGLang runs it.

        SGLang's draft phase runs the draft once over the tokens just accepted (padded
        to num_steps + 1 per request; this pass fuses the target's aux hidden states and
        yields the first top-k) and then num_steps - 1 forwards over batch x topk nodes
        (sglang/srt/speculative/eagle_worker.py). vLLM's chain proposer has the same
        shape with topk 1 (vllm/v1/spec_decode/eagle.py).
        """
        s = np.asarray(num_steps, dtype=float)
        k = np.asarray(topk, dtype=float)
        ndt = np.asarray(num_draft_tokens, dtype=float)
        b = np.asarray(batch, dtype=float)
        e = self.engine
        verify, verify_comm = self.target_parts(b * ndt, b, tree=True)
        ext, ext_comm = self.draft_parts(b * (s + 1), b, with_fusion=True)
        step, step_comm = self.draft_parts(b * k, b, with_fusion=False)
        draft = ext + (s - 1) * step
        comm = verify_comm + ext_comm + (s - 1) * step_comm
        layers = self.target.arch.layers
        spec_us = (
            e.spec_iteration_us
            + b * (e.spec_request_us + ndt * e.spec_token_us)
            + layers * e.spec_layer_us
        )
        other = (
            self._iteration_us(b) + spec_us * self.scales.spec_overhead
        ) * self._overhead_scale(1.0)
        shape = np.broadcast_shapes(draft.shape, verify.shape, comm.shape, np.shape(other))
        return StepParts(
            np.broadcast_to(draft, shape),
            np.broadcast_to(verify, shape),
            np.broadcast_to(comm, shape),
            np.broadcast_to(other, shape),
        )

    def spec_step_s(
        self,
        num_steps: np.ndarray,
        topk: np.ndarray,
        num_draft_tokens: np.ndarray,
        batch: np.ndarray,
    ) -> np.ndarray:
        return self.spec_parts(num_steps, topk, num_draft_tokens, batch).total

    def prefill_s(self, prompt_tokens: float, batch: int = 1) -> float:
        n = float(prompt_tokens) * batch
        # Prefill KV is written, not read over a long context: priced like a verify of the
        # prompt with its own length as context.
        t = self.target_forward_s(np.asarray(n), np.asarray(float(batch)), np.asarray(float(batch)))
        return float(t) + self.engine.scheduler_us * _US
