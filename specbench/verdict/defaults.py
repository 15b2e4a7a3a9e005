"""What a user would launch without specbench, measured at every load.

The model card's flags and the engine's own automatic choice are the comparison that
persuades: a tuned tree at 1.2x means little until it stands next to the card's 0.9x.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from specbench.spec_config import SpecConfig
from specbench.verdict.candidates import (
    Candidate,
    canonical_tree,
    config_from_json,
    config_json,
    find_candidate,
)

#: The names the defaults are shown under (and the automatic choice is recognised by).
MODEL_CARD = "model card"
AUTOMATIC = "SGLang automatic choice"


@dataclass
class DefaultComparison:
    """A configuration the user would otherwise launch, at every load."""

    name: str  # "model card", "SGLang automatic choice"
    config: SpecConfig
    points: dict[int, Candidate | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": config_json(self.config),
            "by_concurrency": {
                str(c): None if p is None else {"speedup": p.speedup, "speedup_ci": list(p.ci)}
                for c, p in self.points.items()
            },
        }

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], per_load: Mapping[int, Sequence[Candidate]]
    ) -> DefaultComparison:
        """Back from results.json: the points are the decision's own candidates."""
        config = config_from_json(data["config"])
        canon = canonical_tree(config)
        points = {
            int(c): find_candidate(per_load, canon, int(c))
            for c in data.get("by_concurrency") or {}
        }
        return cls(str(data["name"]), config, points)


class PresetLike(Protocol):
    """The two configurations a target preset names (specbench.model.TargetPreset)."""

    @property
    def card_config(self) -> SpecConfig: ...
    @property
    def auto_config(self) -> SpecConfig: ...


def named_defaults(target: PresetLike | None, *, sglang: bool = True) -> dict[str, SpecConfig]:
    """What a user would launch without specbench: the model card's flags, or, on SGLang
    (``sglang``), no ``--speculative-num-*`` flags at all (SGLang then chooses by
    architecture). vLLM has no automatic choice: its chain length is always given."""
    if target is None:
        return {}
    named = {MODEL_CARD: target.card_config}
    if sglang:
        named[AUTOMATIC] = target.auto_config
    return named


def compare_defaults(
    per_load: Mapping[int, Sequence[Candidate]], named: Mapping[str, SpecConfig]
) -> list[DefaultComparison]:
    """The named configurations at every load (None where not tested)."""
    out = []
    for name, config in named.items():
        canon = canonical_tree(config)
        points = {c: find_candidate(per_load, canon, c) for c in sorted(per_load)}
        out.append(DefaultComparison(name, config, points))
    return out


__all__ = [
    "AUTOMATIC",
    "MODEL_CARD",
    "DefaultComparison",
    "PresetLike",
    "compare_defaults",
    "named_defaults",
]
