"""A model's shape from its own config.json, under each family's own field names.

Every model served by SGLang or vLLM ships a config.json (in the folder given to SGLang's
`--model-path` or vLLM's `--model`) that states its layers, widths, experts and
quantization; reading it spares the user a hand-written preset. The field names differ by
family (transformers' configuration_*.py of each): experts are `num_experts` (Qwen MoE),
`n_routed_experts` (DeepSeek, GLM-4.x MoE) or `num_local_experts` (Mixtral, gpt-oss,
MiniMax-M2, Llama 4); the expert width is `moe_intermediate_size` or, for the families that
have no dense MLP of their own, `intermediate_size`. A field this reader needs and cannot
find is an error naming it, never a guess: a wrong layer count or expert width would price
every configuration wrongly without a sign.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specbench.errors import FileFormatError
from specbench.model.arch import DraftArch, LatentAttention, TargetArch

#: Families whose routed experts are `intermediate_size` wide (no separate MoE width field):
#: MixtralConfig, GptOssConfig, MiniMaxM2Config, Llama4TextConfig.
_EXPERTS_AT_INTERMEDIATE = frozenset(
    {"mixtral", "gpt_oss", "minimax_m2", "minimax", "llama4", "llama4_text"}
)
#: Families with one always-on shared expert as wide as a routed one (Llama4TextMoe).
_ONE_SHARED_EXPERT = frozenset({"llama4", "llama4_text"})
#: torch dtypes by bytes per element.
_DTYPE_BYTES = {"bfloat16": 2.0, "float16": 2.0, "float32": 4.0, "float8_e4m3fn": 1.0}
#: How unquantized weights are named by their bytes (float16 is priced as bfloat16).
_DTYPE_LABELS = {2.0: "bf16", 4.0: "fp32", 1.0: "fp8"}
#: MXFP4 (OCP microscaling): 4-bit elements plus one 8-bit scale per 32 (gpt-oss).
_MXFP4_BYTES = (32 * 4 + 8) / 8 / 32


@dataclass(frozen=True)
class ModelConfig:
    """What a config.json says about one model, read once."""

    path: Path
    architecture: str | None
    model_type: str
    arch: TargetArch
    quantization: str  # "bf16", "fp8", "mxfp4", "int4 (gptq)", ...


def config_path(target: str | Path) -> Path | None:
    """The config.json a `--target` names (the file, or a model folder holding one); None
    when the text names neither, so that preset names keep working."""
    p = Path(target)
    if p.is_dir():
        cfg = p / "config.json"
        if not cfg.is_file():
            raise FileFormatError(p, "a model folder needs a config.json")
        return cfg
    if p.name.endswith(".json"):
        if not p.is_file():
            raise FileFormatError(p, "no such file")
        return p
    return None


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FileFormatError(path, "expected a JSON object")
    return data


class _Fields:
    """Typed reads from one config table, collecting every missing field before failing
    so that the one error line names them all."""

    def __init__(self, path: Path, data: Mapping[str, Any]) -> None:
        self.path = path
        self.data = data
        self.missing: list[str] = []

    def int(self, *names: str, optional: bool = False) -> int:
        for name in names:
            value = self.data.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FileFormatError(self.path, f"must be an integer >= 0 (got {value!r})", name)
            return value
        if not optional:
            self.missing.append(" or ".join(names))
        return 0

    def check(self, what: str) -> None:
        if self.missing:
            fields = ", ".join(self.missing)
            raise FileFormatError(self.path, f"cannot read {what}: missing {fields}")


def _text_table(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Multimodal checkpoints (Llama 4, Qwen-VL) keep the language model in `text_config`."""
    text = data.get("text_config")
    return text if isinstance(text, Mapping) else data


def _dtype_bytes(path: Path, data: Mapping[str, Any], text: Mapping[str, Any]) -> float:
    name = data.get("torch_dtype") or data.get("dtype") or text.get("torch_dtype")
    name = name or text.get("dtype")
    if name is None:
        raise FileFormatError(path, "cannot read the weight precision: missing torch_dtype")
    if name not in _DTYPE_BYTES:
        known = ", ".join(_DTYPE_BYTES)
        raise FileFormatError(path, f"unknown dtype {name!r}; known: {known}", "torch_dtype")
    return _DTYPE_BYTES[str(name)]


def _quantization(
    path: Path, data: Mapping[str, Any], dtype_bytes: float
) -> tuple[str, float, float | None]:
    """(label, bytes per layer weight, bytes per routed-expert weight or None: the same)."""
    q = data.get("quantization_config")
    if q is None:
        return _DTYPE_LABELS.get(dtype_bytes, f"{dtype_bytes:g}-byte"), dtype_bytes, None
    if not isinstance(q, Mapping):
        raise FileFormatError(path, "must be a table", "quantization_config")
    method = q.get("quant_method")
    if method == "fp8":
        # Block-wise FP8 (DeepSeek-V3, MiniMax-M2, Qwen3-FP8): one FP32 scale per 128x128
        # block adds under 0.1%. Embedding and lm_head stay in the checkpoint's dtype.
        return "fp8", 1.0, None
    if method == "mxfp4":
        # gpt-oss: only the routed experts are MXFP4; attention, router, embedding and
        # head are listed in modules_to_not_convert and stay BF16.
        return "mxfp4 experts", dtype_bytes, _MXFP4_BYTES
    if method in ("gptq", "awq"):
        bits = q.get("bits", q.get("w_bit"))
        group = q.get("group_size", q.get("q_group_size", 128))
        if not isinstance(bits, int) or not isinstance(group, int) or bits <= 0 or group <= 0:
            raise FileFormatError(path, "needs integer bits and group_size", "quantization_config")
        # Per group: one FP16 scale and one packed zero point.
        per_weight = bits / 8 + (2 + bits / 8) / group
        return f"int{bits} ({method})", per_weight, None
    raise FileFormatError(
        path,
        f"unknown quant_method {method!r}; known: fp8, mxfp4, gptq, awq",
        "quantization_config.quant_method",
    )


def _moe_layer_count(path: Path, t: Mapping[str, Any], model_type: str, layers: int) -> int:
    """How many layers route to experts, by the family's own layout fields."""
    f = _Fields(path, t)
    if "first_k_dense_replace" in t or "moe_layer_freq" in t:
        # DeepSeek-V2/V3, GLM-4.x MoE: layer i is MoE when i >= first_k_dense_replace and
        # i % moe_layer_freq == 0 (modeling_deepseek.py DeepseekV3DecoderLayer).
        first = f.int("first_k_dense_replace", optional=True)
        freq = f.int("moe_layer_freq", optional=True) or 1
        return sum(1 for i in range(layers) if i >= first and i % freq == 0)
    if "decoder_sparse_step" in t or "mlp_only_layers" in t:
        # Qwen2/Qwen3 MoE: layer i is MoE unless listed in mlp_only_layers and when
        # (i + 1) % decoder_sparse_step == 0 (modeling_qwen3_moe.py).
        step = f.int("decoder_sparse_step", optional=True) or 1
        only = t.get("mlp_only_layers") or []
        if not isinstance(only, list):
            raise FileFormatError(path, "must be a list of layer indices", "mlp_only_layers")
        return sum(1 for i in range(layers) if i not in only and (i + 1) % step == 0)
    if model_type in ("llama4", "llama4_text"):
        moe = t.get("moe_layers")
        if isinstance(moe, list):
            return len(moe)
        step = f.int("interleave_moe_layer_step")
        f.check("the Llama 4 MoE layout")
        return len(range(step - 1, layers, step))
    return layers


def _mtp_layers(t: Mapping[str, Any], data: Mapping[str, Any]) -> int:
    """Multi-token-prediction layers: DeepSeek/GLM `num_nextn_predict_layers`, MiniMax-M2
    `num_mtp_modules` (when `use_mtp`), Qwen3-Next `mtp_num_hidden_layers`."""
    for table in (t, data):
        for name in ("num_nextn_predict_layers", "mtp_num_hidden_layers"):
            value = table.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        modules = table.get("num_mtp_modules")
        if table.get("use_mtp") and isinstance(modules, int) and modules > 0:
            return modules
    return 0


def _latent_attention(f: _Fields, t: Mapping[str, Any]) -> LatentAttention | None:
    if "kv_lora_rank" not in t:
        return None
    return LatentAttention(
        q_lora_rank=f.int("q_lora_rank", optional=True),
        kv_lora_rank=f.int("kv_lora_rank"),
        qk_nope_head_dim=f.int("qk_nope_head_dim"),
        qk_rope_head_dim=f.int("qk_rope_head_dim"),
        v_head_dim=f.int("v_head_dim"),
    )


def read_target_config(path: Path) -> ModelConfig:
    """The target's shape, parameter counts and precision from its config.json."""
    data = read_json(path)
    t = _text_table(data)
    model_type = str(t.get("model_type") or data.get("model_type") or "")
    f = _Fields(path, t)
    layers = f.int("num_hidden_layers")
    hidden = f.int("hidden_size")
    heads = f.int("num_attention_heads")
    vocab = f.int("vocab_size")
    experts = f.int("num_experts", "n_routed_experts", "num_local_experts", optional=True)
    f.check("the model's shape")
    # transformers' own rule when these are absent: one KV head per query head, and
    # head_dim = hidden_size / num_attention_heads (LlamaConfig, Qwen2Config).
    kv_heads = f.int("num_key_value_heads", optional=True) or heads
    head_dim = f.int("head_dim", optional=True) or hidden // heads
    mla = _latent_attention(f, t)
    if mla is not None:
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim  # per-head attention width
    top_k = expert_width = shared = dense_width = 0
    moe_layers = 0
    if experts:
        top_k = f.int("num_experts_per_tok", "experts_per_token")
        if model_type in _EXPERTS_AT_INTERMEDIATE:
            expert_width = f.int("intermediate_size")
        elif "moe_intermediate_size" in t:
            expert_width = f.int("moe_intermediate_size")
        else:
            f.check("the MoE layout")
            raise FileFormatError(
                path,
                f"unknown MoE layout (model_type {model_type!r}): has experts but no "
                "moe_intermediate_size",
            )
        shared = f.int("n_shared_experts", optional=True) * expert_width
        shared = shared or f.int("shared_expert_intermediate_size", optional=True)
        shared = shared or f.int("shared_intermediate_size", optional=True)
        if model_type in _ONE_SHARED_EXPERT:
            shared = expert_width
        moe_layers = _moe_layer_count(path, t, model_type, layers)
        if moe_layers < layers:
            dense_width = f.int("intermediate_size_mlp", "intermediate_size")
    else:
        dense_width = f.int("intermediate_size")
    f.check("the model's MLP")
    dtype_bytes = _dtype_bytes(path, data, t)
    label, layer_bytes, expert_bytes = _quantization(path, data, dtype_bytes)
    arch = TargetArch(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=vocab,
        num_experts=experts,
        experts_per_token=top_k,
        expert_intermediate=expert_width,
        dense_intermediate=dense_width,
        weight_bytes=layer_bytes,
        lm_head_bytes=dtype_bytes,
        kv_bytes=dtype_bytes,
        moe_layers=moe_layers if experts else None,
        shared_intermediate=shared,
        latent_attention=mla,
        # Absent means untied in every config class read here (LlamaConfig, Qwen2Config,
        # MixtralConfig, DeepseekV3Config... all default tie_word_embeddings to False).
        tied_embeddings=bool(t.get("tie_word_embeddings", data.get("tie_word_embeddings"))),
        mtp_layers=_mtp_layers(t, data),
        expert_bytes=expert_bytes,
        router=True,
    )
    archs = data.get("architectures")
    first = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    return ModelConfig(path, first, model_type, arch, label)


def read_draft_config(path: Path, target_layers: int) -> DraftArch:
    """An EAGLE3 head from its config.json: draft vocab and the target layers it reads.

    The aux layers are `eagle_aux_hidden_state_layer_ids` (vLLM's llama_eagle3.py reads it
    at the top level; SpecForge writes it under `eagle_config`); without it vLLM takes
    layers (2, L // 2, L - 3) of an L-layer target (vllm/model_executor/models/llama.py
    get_eagle3_aux_hidden_state_layers).
    """
    data = read_json(path)
    f = _Fields(path, data)
    layers = f.int("num_hidden_layers")
    hidden = f.int("hidden_size")
    heads = f.int("num_attention_heads")
    intermediate = f.int("intermediate_size")
    vocab = f.int("draft_vocab_size", "vocab_size")
    f.check("the draft's shape")
    eagle = data.get("eagle_config")
    aux = data.get("eagle_aux_hidden_state_layer_ids")
    if aux is None and isinstance(eagle, Mapping):
        aux = eagle.get("eagle_aux_hidden_state_layer_ids")
    if aux is None:
        aux = [2, target_layers // 2, target_layers - 3]
    if not isinstance(aux, list) or not all(isinstance(x, int) for x in aux):
        raise FileFormatError(
            path, "must be a list of layer indices", "eagle_aux_hidden_state_layer_ids"
        )
    dtype = _dtype_bytes(path, data, data)
    return DraftArch(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=f.int("num_key_value_heads", optional=True) or heads,
        head_dim=f.int("head_dim", optional=True) or hidden // heads,
        intermediate=intermediate,
        vocab=vocab,
        aux_layers=tuple(aux),
        weight_bytes=dtype,
    )
