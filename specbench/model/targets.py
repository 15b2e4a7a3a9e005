"""Target presets: the model to serve, its EAGLE3 draft, its shape and its acceptance.

A preset carries what the cost model needs (layer count, hidden size, experts, weight
bytes) and what the acceptance model needs (per-domain draft sharpness and agreement),
because both change from one target to the next while the algorithms do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specbench.errors import BadInputError, FileFormatError, InvalidConfigError
from specbench.model._data import (
    data_dir,
    get_int,
    get_num,
    get_str,
    get_str_list,
    get_table,
    read_toml,
    shipped_names,
)
from specbench.model.acceptance import DomainAcceptance
from specbench.spec_config import SpecConfig, make_config

#: Text domains the acceptance model distinguishes; ``None`` elsewhere means their mix.
DOMAINS: tuple[str, ...] = ("chat", "code", "math")


@dataclass(frozen=True)
class TargetArch:
    """Shape of the target model as far as decode cost is concerned."""

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

    @property
    def attn_params_per_layer(self) -> float:
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
    def active_params_per_token(self) -> float:
        mlp = (
            self.experts_per_token * self.expert_params
            if self.num_experts
            else self.dense_mlp_params
        )
        return self.layers * (self.attn_params_per_layer + mlp) + self.vocab * self.hidden

    @property
    def total_params(self) -> float:
        mlp = self.num_experts * self.expert_params if self.num_experts else self.dense_mlp_params
        return self.layers * (self.attn_params_per_layer + mlp) + 2 * self.vocab * self.hidden


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


@dataclass(frozen=True)
class Overheads:
    """What belongs to the model rather than the engine: per-layer fixed costs (kernel
    launches, MoE routing, norms) and the context length assumed when none is given.
    Engine costs (scheduler, tree bookkeeping, draft launches) live in engines.py."""

    layer_us: float  # per target layer per forward
    context_tokens: int  # average KV length read per request during decode


@dataclass(frozen=True)
class TargetPreset:
    name: str
    description: str
    model_path: str
    draft_model_path: str
    algorithm: str
    default_tp: int
    default_ep: int | None
    card_config: SpecConfig
    auto_config: SpecConfig
    extra_server_args: tuple[str, ...]
    sources: tuple[str, ...]
    arch: TargetArch
    draft: DraftArch
    overheads: Overheads
    acceptance: tuple[tuple[str, DomainAcceptance], ...]
    #: (tp, ep) layouts the model is commonly served with, default first; ep None = no EP.
    parallel_options: tuple[tuple[int, int | None], ...] = ()
    #: The model's ``architectures[0]`` (config.json): SGLang picks its automatic
    #: speculative configuration by it (and by its own version).
    architecture: str | None = None

    def domain_acceptance(self, domain: str) -> DomainAcceptance:
        for name, params in self.acceptance:
            if name == domain:
                return params
        raise BadInputError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")


def list_targets() -> list[str]:
    return shipped_names("targets")


def load_target(name: str) -> TargetPreset:
    """Load a shipped preset by name, or a preset TOML file by path."""
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.exists():
        return _parse_target(candidate, read_toml(candidate))
    path = data_dir("targets") / f"{name}.toml"
    if not path.is_file():
        raise BadInputError(f"unknown target {name!r}; known: {', '.join(list_targets())}")
    return _parse_target(path, read_toml(path))


def _config(path: Path, data: Mapping[str, Any], field: str) -> SpecConfig:
    value = data.get(field)
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise FileFormatError(path, "expected [num_steps, topk, num_draft_tokens]", field=field)
    try:
        return make_config(*value)
    except InvalidConfigError as exc:
        raise FileFormatError(path, str(exc), field=field) from None


def parse_acceptance(
    path: object, acc: Mapping[str, Any]
) -> tuple[tuple[str, DomainAcceptance], ...]:
    """Per-domain acceptance tables (presets and draft profiles), naming file and field."""
    out: list[tuple[str, DomainAcceptance]] = []
    for domain in DOMAINS:
        t = acc.get(domain)
        if not isinstance(t, Mapping):
            raise FileFormatError(path, "missing or not a table", field=f"acceptance.{domain}")
        prefix = f"acceptance.{domain}."
        try:
            params = DomainAcceptance(
                confidence_mu=get_num(path, t, "confidence_mu", prefix, positive=False),
                confidence_sigma=get_num(path, t, "confidence_sigma", prefix, positive=False),
                agreement=get_num(path, t, "agreement", prefix),
                depth_decay=get_num(path, t, "depth_decay", prefix, default=1.0),
                temperature_loss=get_num(
                    path, t, "temperature_loss", prefix, default=0.6, positive=False
                ),
            )
        except ValueError as exc:
            raise FileFormatError(path, str(exc), field=f"acceptance.{domain}") from None
        out.append((domain, params))
    return tuple(out)


def _parse_arch(path: Path, a: Mapping[str, Any]) -> TargetArch:
    arch = TargetArch(
        layers=get_int(path, a, "layers", "arch."),
        hidden=get_int(path, a, "hidden", "arch."),
        heads=get_int(path, a, "heads", "arch."),
        kv_heads=get_int(path, a, "kv_heads", "arch."),
        head_dim=get_int(path, a, "head_dim", "arch."),
        vocab=get_int(path, a, "vocab", "arch."),
        num_experts=get_int(path, a, "num_experts", "arch.", default=0, minimum=0),
        experts_per_token=get_int(path, a, "experts_per_token", "arch.", default=0, minimum=0),
        expert_intermediate=get_int(path, a, "expert_intermediate", "arch.", default=0, minimum=0),
        dense_intermediate=get_int(path, a, "dense_intermediate", "arch.", default=0, minimum=0),
        weight_bytes=get_num(path, a, "weight_bytes", "arch."),
        lm_head_bytes=get_num(path, a, "lm_head_bytes", "arch.", default=2.0),
        kv_bytes=get_num(path, a, "kv_bytes", "arch.", default=2.0),
    )
    if arch.num_experts and not (arch.experts_per_token and arch.expert_intermediate):
        raise FileFormatError(
            path, "an MoE needs experts_per_token and expert_intermediate", field="arch.num_experts"
        )
    if not arch.num_experts and not arch.dense_intermediate:
        raise FileFormatError(
            path, "a dense model needs dense_intermediate", field="arch.dense_intermediate"
        )
    return arch


def _parse_draft(path: Path, d: Mapping[str, Any]) -> DraftArch:
    aux = d.get("aux_layers", [])
    if not isinstance(aux, list) or not all(isinstance(x, int) for x in aux):
        raise FileFormatError(path, "must be a list of layer indices", field="draft.aux_layers")
    return DraftArch(
        layers=get_int(path, d, "layers", "draft."),
        hidden=get_int(path, d, "hidden", "draft."),
        heads=get_int(path, d, "heads", "draft."),
        kv_heads=get_int(path, d, "kv_heads", "draft."),
        head_dim=get_int(path, d, "head_dim", "draft."),
        intermediate=get_int(path, d, "intermediate", "draft."),
        vocab=get_int(path, d, "vocab", "draft."),
        aux_layers=tuple(aux),
        weight_bytes=get_num(path, d, "weight_bytes", "draft.", default=2.0),
    )


def _parallel_options(
    path: Path, data: Mapping[str, Any], default: tuple[int, int | None]
) -> tuple[tuple[int, int | None], ...]:
    """The (tp, ep) deployments the preset names, its default first, without repeats."""
    options: list[tuple[int, int | None]] = [default]
    raw_opts = data.get("parallel_options", [])
    if not isinstance(raw_opts, list):
        raise FileFormatError(path, "must be a list of [tp, ep] pairs", field="parallel_options")
    for i, opt in enumerate(raw_opts):
        if (
            not isinstance(opt, list)
            or len(opt) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in opt)
            or opt[0] < 1
        ):
            raise FileFormatError(
                path, "expected [tp, ep] with ep 0 for none", field=f"parallel_options[{i}]"
            )
        pair = (opt[0], opt[1] or None)
        if pair not in options:
            options.append(pair)
    return tuple(options)


def _parse_target(path: Path, data: Mapping[str, Any]) -> TargetPreset:
    o = get_table(path, data, "overheads")
    overheads = Overheads(
        layer_us=get_num(path, o, "layer_us", "overheads."),
        context_tokens=get_int(path, o, "context_tokens", "overheads."),
    )
    ep_raw = data.get("default_ep")
    default_ep = None if ep_raw in (None, 0) else get_int(path, data, "default_ep")
    default_tp = get_int(path, data, "default_tp")
    return TargetPreset(
        name=get_str(path, data, "name"),
        description=get_str(path, data, "description"),
        model_path=get_str(path, data, "model_path"),
        draft_model_path=get_str(path, data, "draft_model_path"),
        algorithm=get_str(path, data, "algorithm"),
        default_tp=default_tp,
        default_ep=default_ep,
        card_config=_config(path, data, "card_config"),
        auto_config=_config(path, data, "auto_config"),
        extra_server_args=get_str_list(path, data, "extra_server_args"),
        sources=get_str_list(path, data, "sources"),
        arch=_parse_arch(path, get_table(path, data, "arch")),
        draft=_parse_draft(path, get_table(path, data, "draft")),
        overheads=overheads,
        acceptance=parse_acceptance(path, get_table(path, data, "acceptance")),
        parallel_options=_parallel_options(path, data, (default_tp, default_ep)),
        architecture=get_str(path, data, "architecture") if "architecture" in data else None,
    )
