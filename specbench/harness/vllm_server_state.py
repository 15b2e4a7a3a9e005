"""The deployment an attached vLLM server runs, read from its own resolved configuration.

``GET /server_info?config_format=json`` (only with ``VLLM_SERVER_DEV_MODE=1``;
vllm/entrypoints/serve/dev/server_info/api_router.py) dumps the whole ``VllmConfig``:
``model_config`` (``model``, ``served_model_name``, ``dtype`` as ``"torch.bfloat16"``,
``max_model_len``, ``enforce_eager``), ``parallel_config`` (``tensor_parallel_size``,
``enable_expert_parallel``), ``scheduler_config.max_num_seqs`` and
``speculative_config`` (``method``, ``model``, ``num_speculative_tokens``). Without dev
mode the adapter knows only the model root (``/v1/models``) and k; then the preset's flags
stand for the rest. Recorded from vLLM 0.32.0 in tests/data/vllm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from specbench.harness.engine import Deployment
from specbench.harness.served_deployment import without_flags

#: The preset's algorithm name for a vLLM ``method`` (the first name that maps to it).
_ALGORITHM_OF_METHOD = {"eagle3": "EAGLE3", "eagle": "EAGLE", "draft_model": "DRAFT_MODEL"}
_ALGORITHM_OF_METHOD.update({"ngram": "NGRAM", "mtp": "MTP"})
#: Flags a preset may set whose values the server's model_config reports.
_REPORTED_FLAGS = ("--dtype", "--max-model-len", "--max-num-seqs", "--served-model-name")
_REPORTED_SWITCHES = ("--enforce-eager",)


def _section(info: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    nested = info.get("vllm_config")
    source = nested if isinstance(nested, Mapping) else info
    section = source.get(name)
    return section if isinstance(section, Mapping) else {}


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _model_flags(model: Mapping[str, Any], model_path: str) -> list[str]:
    """The flags of the model_config the server reports (what the preset guessed)."""
    flags: list[str] = []
    name = model.get("served_model_name")
    if isinstance(name, str) and name and name != model_path:
        flags += ["--served-model-name", name]
    dtype = _text(model.get("dtype"))
    if dtype is not None:
        flags += ["--dtype", dtype.removeprefix("torch.")]
    length = _count(model.get("max_model_len"))
    if length is not None:
        flags += ["--max-model-len", str(length)]
    if model.get("enforce_eager") is True:
        flags.append("--enforce-eager")
    return flags


def served_deployment(info: Mapping[str, Any], base: Deployment) -> Deployment:
    """The deployment ``info`` (``fetch_info``'s answer) describes; ``base`` fills in
    what the server does not report."""
    model, parallel = _section(info, "model_config"), _section(info, "parallel_config")
    scheduler, spec = _section(info, "scheduler_config"), _section(info, "speculative_config")
    model_path = _text(model.get("model")) or _text(info.get("model")) or base.model_path
    extra = base.extra_args
    if model:
        extra = (
            *without_flags(extra, _REPORTED_FLAGS, _REPORTED_SWITCHES),
            *_model_flags(model, model_path),
        )
    tp = _count(parallel.get("tensor_parallel_size")) or base.tp
    expert_parallel = parallel.get("enable_expert_parallel")
    ep = base.ep if not isinstance(expert_parallel, bool) else (tp if expert_parallel else None)
    method = _text(spec.get("method"))
    version = _text(info.get("version"))
    return dataclasses.replace(
        base,
        model_path=model_path,
        draft_model_path=_text(spec.get("model")) or base.draft_model_path,
        algorithm=_ALGORITHM_OF_METHOD.get(method or "", base.algorithm),
        tp=tp,
        ep=ep,
        extra_args=extra,
        max_batch=_count(scheduler.get("max_num_seqs")) or base.max_batch,
        engine_version=version or base.engine_version,
    )


__all__ = ["served_deployment"]
