"""Target presets: the model to serve, its EAGLE3 draft, its shape and its acceptance.

A preset carries what the cost model needs (layer count, hidden size, experts, weight
bytes) and what the acceptance model needs (per-domain draft sharpness and agreement),
because both change from one target to the next while the algorithms do not.
"""

from __future__ import annotations

import dataclasses
import os
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
from specbench.model.arch import DraftArch, TargetArch
from specbench.model.hf_config import config_path, read_draft_config, read_target_config
from specbench.spec_config import SpecConfig
from specbench.spec_methods import (
    DRAFT_MODEL,
    NO_DRAFT,
    TARGET_LAYERS,
    method,
    method_of_engine_name,
)

#: Text domains the acceptance model distinguishes; ``None`` elsewhere means their mix.
DOMAINS: tuple[str, ...] = ("chat", "code", "math")

#: The draft path of a config.json target given without --draft (predict's lines).
DRAFT_PLACEHOLDER = "DRAFT_MODEL_PATH"


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
    #: What was assumed rather than read (a target from config.json without a draft
    #: config, acceptance from another preset); `predict` prints each.
    assumptions: tuple[str, ...] = ()
    #: How the weights are stored ("bf16", "fp8", "mxfp4 experts"...), from config.json.
    quantization: str | None = None
    #: The speculative methods the target supports, each with its draft: a checkpoint
    #: path, ``None`` for a method that drafts from the target's own MTP layers or from
    #: the text (spec_methods.Method.draft says which). The preset's ``[methods]`` table;
    #: without one, its own algorithm with ``draft_model_path``.
    methods: tuple[tuple[str, str | None], ...] = ()

    @property
    def method_drafts(self) -> tuple[tuple[str, str | None], ...]:
        """``(method, draft path or None)`` of every method the preset lists."""
        return self.methods or ((_preset_method(self.algorithm), self.draft_model_path),)

    @property
    def method_names(self) -> tuple[str, ...]:
        """The methods the preset lists, in its order (the default of ``--method``)."""
        return tuple(name for name, _ in self.method_drafts)

    def domain_acceptance(self, domain: str) -> DomainAcceptance:
        for name, params in self.acceptance:
            if name == domain:
                return params
        raise BadInputError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")


def list_targets() -> list[str]:
    return shipped_names("targets")


def load_target(name: str, draft: str | None = None) -> TargetPreset:
    """A shipped preset by name, a preset TOML file, or a model folder / config.json
    (with `draft`, the EAGLE3 head's folder or config.json, when one is at hand)."""
    config = config_path(name)
    if config is not None:
        return target_from_config(config, draft)
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
        return SpecConfig(*value)
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


def _preset_method(algorithm: str) -> str:
    """specbench's method for a preset's ``algorithm`` (EAGLE3, EAGLE, NEXTN...)."""
    try:
        return method_of_engine_name(algorithm, "sglang")
    except BadInputError:
        return method(algorithm).name


def _methods(path: Path, data: Mapping[str, Any]) -> tuple[tuple[str, str | None], ...]:
    """The preset's ``[methods]`` table: ``name = "draft path"`` for a method that loads
    a draft, ``name = "target"`` (its own MTP layers) or ``"none"`` (n-gram, suffix)."""
    table = data.get("methods")
    if table is None:
        return ()
    if not isinstance(table, Mapping) or not table:
        raise FileFormatError(path, "expected a table of method = draft", field="methods")
    out: list[tuple[str, str | None]] = []
    for name, draft in table.items():
        try:
            entry = method(str(name))
        except BadInputError as exc:
            raise FileFormatError(path, str(exc), field=f"methods.{name}") from None
        if not isinstance(draft, str) or not draft:
            raise FileFormatError(path, "expected a draft path string", field=f"methods.{name}")
        wants_path = entry.draft == DRAFT_MODEL
        if wants_path == (draft in (TARGET_LAYERS, NO_DRAFT)):
            expected = "a draft checkpoint path" if wants_path else f'"{entry.draft}"'
            raise FileFormatError(
                path, f"{entry.name} drafts from {expected}", field=f"methods.{name}"
            )
        out.append((entry.name, draft if wants_path else None))
    return tuple(out)


def _parse_target(path: Path, data: Mapping[str, Any]) -> TargetPreset:
    arch, quantization, architecture = _preset_arch(path, data)
    if "architecture" in data:
        architecture = get_str(path, data, "architecture")
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
        arch=arch,
        draft=_preset_draft(path, data, arch),
        overheads=overheads,
        acceptance=parse_acceptance(path, get_table(path, data, "acceptance")),
        parallel_options=_parallel_options(path, data, (default_tp, default_ep)),
        architecture=architecture,
        quantization=quantization,
        methods=_methods(path, data),
    )


def _shipped_config(path: Path, data: Mapping[str, Any], field: str) -> Path:
    """A config.json a preset names: beside the preset, else among the shipped ones."""
    name = get_str(path, data, field)
    beside = path.parent / name
    shipped = data_dir("configs") / name
    found = beside if beside.is_file() else shipped
    if not found.is_file():
        raise FileFormatError(path, f"no config {name!r} beside the preset nor shipped", field)
    return found


def _preset_arch(path: Path, data: Mapping[str, Any]) -> tuple[TargetArch, str | None, str | None]:
    """(shape, quantization, architecture) of the preset's target: from its `config` (a
    config.json, as the shipped presets do) or a hand-written `[arch]` table."""
    if "config" in data:
        model = read_target_config(_shipped_config(path, data, "config"))
        return model.arch, model.quantization, model.architecture
    return _parse_arch(path, get_table(path, data, "arch")), None, None


def _preset_draft(path: Path, data: Mapping[str, Any], target: TargetArch) -> DraftArch:
    if "draft_config" in data:
        return read_draft_config(_shipped_config(path, data, "draft_config"), target.layers)
    return _parse_draft(path, get_table(path, data, "draft"))


def _assumed_draft(target: TargetArch, vocab: int) -> DraftArch:
    """A one-layer EAGLE3 head of the target's width (SwiGLU at 8/3 x hidden when the
    target has no dense MLP width), reading target layers (2, L // 2, L - 3) as vLLM does."""
    width = target.dense_intermediate or (8 * target.hidden) // 3
    layers = target.layers
    return DraftArch(
        layers=1,
        hidden=target.hidden,
        heads=target.heads,
        kv_heads=target.kv_heads,
        head_dim=target.head_dim,
        intermediate=width,
        vocab=vocab,
        aux_layers=(2, layers // 2, layers - 3),
        weight_bytes=2.0,
    )


def served_model_config(model_path: str) -> Path | None:
    """The config.json of the model a server serves, when its model path (SGLang
    ``--model-path``, vLLM ``--model``) is a local folder holding one; None for a hub
    name or a folder without one."""
    folder = Path(os.path.expandvars(model_path))
    config = folder / "config.json"
    return config if folder.is_dir() and config.is_file() else None


def with_served_config(target: TargetPreset, config: Path) -> TargetPreset:
    """``target`` with the shape, precision and architecture the served model's own
    config.json states (the preset's draft, acceptance and serving options kept): the
    model on the server is what is measured, whatever the preset assumed."""
    model = read_target_config(config)
    return dataclasses.replace(
        target,
        arch=model.arch,
        architecture=model.architecture,
        quantization=model.quantization,
        sources=(*target.sources, f"{config}: the served model's config.json"),
    )


def target_from_config(config: Path, draft: str | None = None) -> TargetPreset:
    """A target read from its config.json; what it cannot say comes from the shipped
    prior (data/priors/config-target.toml) and is listed in `assumptions`."""
    model = read_target_config(config)
    prior_path = data_dir("priors") / "config-target.toml"
    prior = read_toml(prior_path)
    assumptions = [
        "acceptance of an ordinary community EAGLE3 draft (the minimax-m2.7 preset's)",
    ]
    draft_config = None if draft is None else config_path(draft)
    if draft is not None and draft_config is None:
        raise BadInputError(f"--draft {draft!r} is neither a model folder nor a config.json")
    if draft_config is not None:
        draft_arch = read_draft_config(draft_config, model.arch.layers)
        draft_path = str(draft_config.parent)
    else:
        vocab = get_int(prior_path, get_table(prior_path, prior, "draft"), "vocab", "draft.")
        draft_arch = _assumed_draft(model.arch, vocab)
        # A placeholder a launch line shows as such: a sentence there would be quoted
        # into --speculative-draft-model-path and fetched as a model name.
        draft_path = DRAFT_PLACEHOLDER
        assumptions.append(
            f"draft: a one-layer EAGLE3 head of the target's width (no --draft given; "
            f"the launch lines say {DRAFT_PLACEHOLDER}: put your draft's folder there)"
        )
    o = get_table(prior_path, prior, "overheads")
    kind = "moe_layer_us" if model.arch.num_experts else "dense_layer_us"
    assumptions.append(f"per-layer overhead {get_num(prior_path, o, kind, 'overheads.'):g} us")
    return TargetPreset(
        name=config.parent.name or config.stem,
        description=f"{model.architecture or model.model_type} "
        + get_str(prior_path, prior, "description"),
        model_path=str(config.parent),
        draft_model_path=draft_path,
        algorithm=get_str(prior_path, prior, "algorithm"),
        default_tp=1,
        default_ep=None,
        card_config=_config(prior_path, prior, "card_config"),
        auto_config=_config(prior_path, prior, "auto_config"),
        extra_server_args=(),
        sources=(str(config), *get_str_list(prior_path, prior, "sources")),
        arch=model.arch,
        draft=draft_arch,
        overheads=Overheads(
            layer_us=get_num(prior_path, o, kind, "overheads."),
            context_tokens=get_int(prior_path, o, "context_tokens", "overheads."),
        ),
        acceptance=parse_acceptance(prior_path, get_table(prior_path, prior, "acceptance")),
        parallel_options=((1, None),),
        architecture=model.architecture,
        assumptions=tuple(assumptions),
        quantization=model.quantization,
    )
