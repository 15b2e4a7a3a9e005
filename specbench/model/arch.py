"""Model shapes the cost and memory models price: the target's layers and the EAGLE3 draft.

Kept apart from the presets (targets.py) because a shape comes from two places: a preset's
`[arch]` table or the model's own config.json (hf_config.py), and both must count
parameters and bytes the same way. Every count here is a sum of weight matrices; norms,
biases and rotary tables are left out (under 0.1% of any model priced here).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LatentAttention:
    """Multi-head latent attention (DeepSeek-V2/V3 MLA): queries and keys/values go through
    low-rank projections, and the KV cache holds the compressed latent, not per-head K/V
    (modeling_deepseek.py, DeepseekV3Attention)."""

    q_lora_rank: int  # 0: queries projected directly from the hidden state
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int

    def params(self, hidden: int, heads: int) -> float:
        qk_head = self.qk_nope_head_dim + self.qk_rope_head_dim
        if self.q_lora_rank:
            q = hidden * self.q_lora_rank + self.q_lora_rank * heads * qk_head
        else:
            q = hidden * heads * qk_head
        kv_down = hidden * (self.kv_lora_rank + self.qk_rope_head_dim)
        kv_up = self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
        o = heads * self.v_head_dim * hidden
        return float(q + kv_down + kv_up + o)

    @property
    def cache_width(self) -> int:
        """Values cached per token per layer: the latent and the shared rotary key."""
        return self.kv_lora_rank + self.qk_rope_head_dim


@dataclass(frozen=True)
class TargetArch:
    """Shape of the target model as far as decode cost and memory are concerned.

    `moe_layers` counts the layers whose MLP is the routed MoE (None: every layer of an MoE);
    the others run a dense MLP of `dense_intermediate` (DeepSeek's first_k_dense_replace,
    Llama 4 Maverick's interleaving). Shared experts run for every token, beside the
    routed ones.
    """

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    num_experts: int  # 0 for a dense model
    experts_per_token: int
    expert_intermediate: int
    dense_intermediate: int
    weight_bytes: float  # per parameter of attention/MLP weights (1 = FP8)
    lm_head_bytes: float  # embedding and lm_head stay in BF16
    kv_bytes: float
    moe_layers: int | None = None
    shared_intermediate: int = 0  # summed width of the shared experts (0: none)
    latent_attention: LatentAttention | None = None
    tied_embeddings: bool = False
    mtp_layers: int = 0  # multi-token-prediction layers shipped beside the model
    expert_bytes: float | None = None  # per parameter of routed experts (None: weight_bytes)
    router: bool = False  # count the router's hidden x experts matrix (config.json shapes)

    # -- per-layer pieces --------------------------------------------------------------
    @property
    def attn_params_per_layer(self) -> float:
        if self.latent_attention is not None:
            return self.latent_attention.params(self.hidden, self.heads)
        q_o = 2 * self.hidden * self.heads * self.head_dim
        kv = 2 * self.hidden * self.kv_heads * self.head_dim
        return float(q_o + kv)

    @property
    def expert_params(self) -> float:
        return float(3 * self.hidden * self.expert_intermediate)

    @property
    def dense_mlp_params(self) -> float:
        return float(3 * self.hidden * self.dense_intermediate)

    @property
    def shared_expert_params(self) -> float:
        return float(3 * self.hidden * self.shared_intermediate)

    @property
    def router_params(self) -> float:
        return float(self.hidden * self.num_experts) if self.router else 0.0

    @property
    def moe_layer_count(self) -> int:
        if not self.num_experts:
            return 0
        return self.layers if self.moe_layers is None else self.moe_layers

    @property
    def dense_layer_count(self) -> int:
        return self.layers - self.moe_layer_count

    @property
    def routed_bytes(self) -> float:
        return self.weight_bytes if self.expert_bytes is None else self.expert_bytes

    # -- whole-model counts --------------------------------------------------------------
    @property
    def embedding_params(self) -> float:
        """The input embedding table (a lookup, not a matmul, at decode)."""
        return float(self.vocab * self.hidden)

    @property
    def lm_head_params(self) -> float:
        """The output head, multiplied by every token (shared with the embedding if tied)."""
        return float(self.vocab * self.hidden)

    def _layer_params(self, experts: float) -> float:
        """Weights of all layers when `experts` routed experts count per MoE layer."""
        moe = self.moe_layer_count * (
            experts * self.expert_params + self.shared_expert_params + self.router_params
        )
        dense = self.dense_layer_count * self.dense_mlp_params
        return self.layers * self.attn_params_per_layer + moe + dense

    @property
    def total_params(self) -> float:
        """Every weight of the model proper (MTP layers apart, as publishers count)."""
        heads = 1 if self.tied_embeddings else 2
        return self._layer_params(self.num_experts) + heads * self.embedding_params

    @property
    def active_params(self) -> float:
        """Weights one decoded token multiplies: all layers with top-k routed experts, and
        the output head; the input embedding is a row lookup and is left out."""
        return self._layer_params(self.experts_per_token) + self.lm_head_params

    @property
    def active_params_per_token(self) -> float:
        """Active weights with the input embedding counted, as most model cards do."""
        return self.active_params + self.embedding_params

    @property
    def mtp_params(self) -> float:
        """One MTP module per layer: a full decoder layer and the 2 x hidden -> hidden
        projection (DeepSeek-V3's eh_proj); embedding and head are shared."""
        if not self.mtp_layers:
            return 0.0
        layer = self.attn_params_per_layer + (
            self.num_experts * self.expert_params + self.shared_expert_params + self.router_params
            if self.num_experts
            else self.dense_mlp_params
        )
        return float(self.mtp_layers * (layer + 2 * self.hidden * self.hidden))

    def weight_bytes_total(self) -> float:
        """Bytes of the model's weights at its stored precision (MTP layers apart)."""
        attn = self.layers * self.attn_params_per_layer * self.weight_bytes
        routed = self.moe_layer_count * self.num_experts * self.expert_params * self.routed_bytes
        rest = (
            self.moe_layer_count * (self.shared_expert_params + self.router_params)
            + self.dense_layer_count * self.dense_mlp_params
        ) * self.weight_bytes
        heads = 1 if self.tied_embeddings else 2
        return attn + routed + rest + heads * self.embedding_params * self.lm_head_bytes

    def weight_bytes_per_gpu(self, tp: int) -> float:
        """Weights per GPU when tensor parallelism (or TP x EP) splits them `tp` ways."""
        return self.weight_bytes_total() / tp

    def kv_bytes_per_token(self, tp: int) -> float:
        """KV cache per token per GPU. GQA heads split across TP (one at least per GPU);
        an MLA latent is one shared vector, held whole by every rank."""
        if self.latent_attention is not None:
            return float(self.latent_attention.cache_width * self.kv_bytes * self.layers)
        kv_heads_gpu = max(self.kv_heads / tp, 1.0)
        return 2 * kv_heads_gpu * self.head_dim * self.kv_bytes * self.layers


@dataclass(frozen=True)
class DraftArch:
    """The EAGLE3 draft: one decoder layer fed by fused target hidden states."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    aux_layers: tuple[int, ...]
    weight_bytes: float

    def params_per_forward(self, with_fusion: bool) -> float:
        # EAGLE3's first layer sees [embedding, fused hidden] (2 x hidden) as q/k/v input.
        qkv = 2 * self.hidden * (self.heads + 2 * self.kv_heads) * self.head_dim
        o = self.heads * self.head_dim * self.hidden
        mlp = 3 * self.hidden * self.intermediate
        fusion = len(self.aux_layers) * self.hidden * self.hidden if with_fusion else 0
        return float(self.layers * (qkv + o + mlp) + fusion + self.vocab * self.hidden)
