"""Per-engine overhead profiles: what SGLang and vLLM spend outside the GPU kernels.

The same tree on the same GPU costs a different wall time in different engines: how much
Python runs per iteration, per request and per draft forward, and how the verify pass
attends over the KV cache with a tree mask. A roofline cannot see any of it, and published
figures (vLLM issue #20780 against SGLang's EAGLE-3 numbers) show it is a large share of a
speculative step, so these constants are data, one TOML file per engine, each citing the
measurement it was fitted to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specbench.errors import BadInputError, FileFormatError
from specbench.model._data import data_dir, get_num, get_str, get_str_list, read_toml, shipped_names

#: The engine priced when nothing is said (the one the sweep drives by default).
DEFAULT_ENGINE = "sglang"


@dataclass(frozen=True)
class EngineProfile:
    """Fixed and per-request costs of one serving engine, in microseconds."""

    name: str
    description: str
    sources: tuple[str, ...]
    scheduler_us: float  # per decode iteration, with or without speculation
    request_us: float  # per request per iteration (sampling, detokenise, bookkeeping)
    spec_iteration_us: float  # per speculative iteration (tree mask, accept)
    spec_token_us: float  # per verified tree node (tree build, accept, per-request work)
    spec_layer_us: float  # per target layer per speculative iteration (KV moves)
    draft_step_us: float  # per draft forward (launches, top-k selection)
    draft_token_us: float  # per drafted node per draft forward (tree update, sampling)
    #: Fraction of the decode attention's KV bandwidth the tree-masked verify attention
    #: reaches (the verify pass runs a prefill-style kernel with a custom mask).
    tree_attention_efficiency: float
    #: Fraction of GPU memory the engine lets weights + KV cache use.
    memory_fraction: float
    #: Per request per speculative iteration, whatever the tree's size (accept, finish
    #: and cache checks run request by request); 0 in profiles that predate it.
    spec_request_us: float = 0.0

    def summary(self) -> dict[str, object]:
        return {"name": self.name, "description": self.description}


def list_engines() -> list[str]:
    return shipped_names("engines")


def load_engine(name_or_path: str | None = None) -> EngineProfile:
    """A shipped engine profile by name, or an engine TOML by path."""
    name = name_or_path or DEFAULT_ENGINE
    path = Path(name)
    if path.suffix.lower() != ".toml":
        path = data_dir("engines") / f"{name}.toml"
        if not path.is_file():
            raise BadInputError(f"unknown engine {name!r}; known: {', '.join(list_engines())}")
    return _parse_engine(path, read_toml(path))


def _fraction(path: Path, data: Mapping[str, Any], field: str) -> float:
    value = get_num(path, data, field)
    if value > 1.0:
        raise FileFormatError(path, f"must be in (0, 1] (got {value})", field=field)
    return value


def _parse_engine(path: Path, data: Mapping[str, Any]) -> EngineProfile:
    def us(field: str, default: float | None = None) -> float:
        value = get_num(path, data, field, default=default, positive=False)
        if value < 0:
            raise FileFormatError(path, f"must be >= 0 (got {value})", field=field)
        return value

    return EngineProfile(
        name=get_str(path, data, "name"),
        description=get_str(path, data, "description"),
        sources=get_str_list(path, data, "sources"),
        scheduler_us=us("scheduler_us"),
        request_us=us("request_us"),
        spec_iteration_us=us("spec_iteration_us"),
        spec_token_us=us("spec_token_us"),
        spec_layer_us=us("spec_layer_us"),
        draft_step_us=us("draft_step_us"),
        draft_token_us=us("draft_token_us"),
        tree_attention_efficiency=_fraction(path, data, "tree_attention_efficiency"),
        memory_fraction=_fraction(path, data, "memory_fraction"),
        spec_request_us=us("spec_request_us", 0.0),
    )
