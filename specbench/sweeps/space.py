"""The search space: which tree shapes a sweep may try, with SGLang's rules applied first.

SGLang rejects some triples at start-up and crashes mid-run on others, and a launch costs
minutes, so the space is always the *valid* subset (``spec_config.valid_configs``) of the
user's ranges. The sampler still proposes points of the full box (Optuna distributions
cannot express "num_draft_tokens <= num_steps * topk + 1"); ``SearchSpace.nearest``
projects such a point onto the closest valid configuration before anything launches.

``--space`` syntax (every part optional, parts separated by commas)::

    num_steps=2..5,topk=1|4|8,num_draft_tokens=4..32
    steps=3,topk=4,draft_tokens=8|16|4..6

A value is an integer, an inclusive range ``a..b``, or alternatives joined by ``|``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from specbench.errors import BadInputError
from specbench.spec_config import (
    EAGLE3,
    MAX_DRAFT_TOKENS,
    MIN_DRAFT_TOKENS,
    NUM_STEPS_RANGE,
    TOPK_CHOICES,
    SpecConfig,
    valid_configs,
)
from specbench.spec_methods import EngineMethod, method

#: Canonical parameter names (also the Optuna parameter names) and accepted aliases.
PARAM_NAMES: tuple[str, ...] = ("num_steps", "topk", "num_draft_tokens")
_ALIASES: dict[str, str] = {
    "num_steps": "num_steps",
    "steps": "num_steps",
    "topk": "topk",
    "eagle_topk": "topk",
    "num_draft_tokens": "num_draft_tokens",
    "draft_tokens": "num_draft_tokens",
    "ndt": "num_draft_tokens",
}
_BOUNDS: dict[str, tuple[int, ...]] = {
    "num_steps": NUM_STEPS_RANGE,
    "topk": TOPK_CHOICES,
    "num_draft_tokens": tuple(range(MIN_DRAFT_TOKENS, MAX_DRAFT_TOKENS + 1)),
}
_RANGE = re.compile(r"^(\d+)\s*\.\.\s*(\d+)$")
_INT = re.compile(r"^\d+$")


@dataclass(frozen=True)
class SearchSpace:
    """Allowed values per parameter; ``configs`` is the valid subset of their product."""

    num_steps: tuple[int, ...] = NUM_STEPS_RANGE
    topk: tuple[int, ...] = TOPK_CHOICES
    num_draft_tokens: tuple[int, ...] = _BOUNDS["num_draft_tokens"]
    configs: tuple[SpecConfig, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.configs:
            found = valid_configs(self.num_steps, self.topk, self.num_draft_tokens)
            object.__setattr__(self, "configs", tuple(found))
        object.__setattr__(self, "_keys", frozenset(c.key for c in self.configs))

    def __len__(self) -> int:
        return len(self.configs)

    def __contains__(self, config: object) -> bool:
        return isinstance(config, SpecConfig) and config.key in self._keys  # type: ignore[attr-defined]

    def describe(self) -> str:
        """Short text for banners and the manifest, e.g. ``num_steps=1..8,topk=1|2|4|8,...``."""
        parts = [f"num_steps={_format_values(self.num_steps)}"]
        parts.append("topk=" + "|".join(str(k) for k in self.topk))
        parts.append(f"num_draft_tokens={_format_values(self.num_draft_tokens)}")
        methods = list(dict.fromkeys(c.method for c in self.configs))
        if methods != [EAGLE3]:
            parts.append("method=" + "|".join(methods))
        return ",".join(parts)

    def nearest(
        self,
        num_steps: int,
        topk: int,
        num_draft_tokens: int,
        *,
        exclude: Collection[str] = (),
    ) -> SpecConfig:
        """The valid configuration closest to a (possibly invalid) sampled point.

        Distance is measured per axis on the scale the axis matters on: steps linearly,
        topk and draft tokens in log2 (4 -> 8 draft tokens is as big a change as 16 -> 32).
        Ties go to the smaller configuration, which is the cheaper one to verify.
        ``exclude`` (configuration keys) is skipped unless it covers the whole space.
        """
        candidates = [c for c in self.configs if c.key not in exclude] or list(self.configs)

        def distance(config: SpecConfig) -> tuple[float, SpecConfig]:
            d_steps = abs(config.num_steps - num_steps) / 2.0
            d_topk = abs(math.log2(config.topk) - math.log2(max(topk, 1)))
            d_ndt = abs(math.log2(config.num_draft_tokens) - math.log2(max(num_draft_tokens, 1)))
            return (d_steps + d_topk + d_ndt, config)

        return min(candidates, key=distance)


def _format_values(values: Sequence[int]) -> str:
    """Compress sorted integers into ``a..b`` runs joined by ``|``."""
    ordered = sorted(set(values))
    parts: list[str] = []
    start = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if start == prev else f"{start}..{prev}")
        if value is not None:
            start = prev = value
    return "|".join(parts)


def _describe_allowed(name: str) -> str:
    allowed = _BOUNDS[name]
    return "|".join(map(str, allowed)) if name == "topk" else _format_values(allowed)


def _parse_values(name: str, text: str, spec: str) -> tuple[int, ...]:
    allowed = _BOUNDS[name]
    out: set[int] = set()
    for alternative in text.split("|"):
        alternative = alternative.strip()
        match = _RANGE.match(alternative)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if low > high:
                raise BadInputError(
                    f"--space {spec!r}: range {alternative!r} of {name} is empty (low > high)"
                )
            values: Iterable[int] = range(low, high + 1)
            # A range over topk means "the allowed choices inside it": 1..4 is 1|2|4.
            if name == "topk":
                values = [v for v in values if v in allowed]
                if not values:
                    raise BadInputError(
                        f"--space {spec!r}: topk range {alternative!r} holds none of "
                        f"{_describe_allowed(name)}"
                    )
        elif _INT.match(alternative):
            values = [int(alternative)]
        else:
            raise BadInputError(
                f"--space {spec!r}: cannot read {name} value {alternative!r} "
                f"(expected an integer, a range a..b, or alternatives a|b)"
            )
        for value in values:
            if value not in allowed:
                raise BadInputError(
                    f"--space {spec!r}: {name}={value} is outside the supported "
                    f"{_describe_allowed(name)}"
                )
            out.add(value)
    return tuple(sorted(out))


def parse_space(spec: str | None) -> SearchSpace:
    """Parse ``--space``; None or an empty string means the full space.

    Raises BadInputError naming the offending part, and when the narrowed ranges leave
    no configuration SGLang accepts.
    """
    if spec is None or not spec.strip():
        return SearchSpace()
    chosen: dict[str, tuple[int, ...]] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise BadInputError(
                f"--space {spec!r}: part {part!r} is not name=values "
                f"(e.g. num_steps=2..5,topk=1|4|8,num_draft_tokens=4..32)"
            )
        raw_name, raw_values = (s.strip() for s in part.split("=", 1))
        name = _ALIASES.get(raw_name.lower())
        if name is None:
            raise BadInputError(
                f"--space {spec!r}: unknown parameter {raw_name!r} "
                f"(expected one of {', '.join(PARAM_NAMES)})"
            )
        if name in chosen:
            raise BadInputError(f"--space {spec!r}: {name} is given twice")
        chosen[name] = _parse_values(name, raw_values, spec)
    space = SearchSpace(
        num_steps=chosen.get("num_steps", _BOUNDS["num_steps"]),
        topk=chosen.get("topk", _BOUNDS["topk"]),
        num_draft_tokens=chosen.get("num_draft_tokens", _BOUNDS["num_draft_tokens"]),
    )
    if not space.configs:
        raise BadInputError(
            f"--space {spec!r} leaves no configuration SGLang accepts "
            f"(topk 1 needs num_draft_tokens = num_steps + 1; "
            f"num_draft_tokens - 1 must not exceed num_steps * topk)"
        )
    return space


def chain_space(space: SearchSpace, engine: str) -> SearchSpace:
    """The chains (topk 1, num_draft_tokens = k + 1) of ``space``: an engine without
    token trees (vLLM) searches the chain length k alone."""
    if 1 not in space.topk:
        raise BadInputError(
            f"{engine} drafts a chain (no token tree): --space must allow topk=1 "
            f"(got topk={'|'.join(map(str, space.topk))})"
        )
    steps = tuple(s for s in space.num_steps if s + 1 in space.num_draft_tokens)
    if not steps:
        raise BadInputError(
            f"--space leaves no chain for {engine}: a chain of k drafts needs "
            "num_draft_tokens = k + 1"
        )
    return SearchSpace(num_steps=steps, topk=(1,), num_draft_tokens=tuple(s + 1 for s in steps))


def method_space(
    space: SearchSpace, methods: Sequence[str], offered: Mapping[str, EngineMethod]
) -> SearchSpace:
    """The union over ``methods`` of each one's configurations inside ``space``: the
    space's own triples for a tree method the engine drafts as a tree, its chains for
    the rest, each chain with every combination of the method's own parameter choices
    (``offered``: the methods as the engine offers them, by name)."""
    chains = [c for c in space.configs if c.topk == 1]
    out: list[SpecConfig] = []
    for name in methods:
        engine_method = offered.get(name)
        if engine_method is None:
            raise BadInputError(f"--method {name}: the engine offers no such method")
        tree = engine_method.tree and method(name).tree_numbers
        base = space.configs if tree else tuple(chains)
        grids = [[(p.name, v) for v in p.choices] for p in engine_method.params]
        for config in base:
            for params in itertools.product(*grids):
                out.append(dataclasses.replace(config, method=name, params=tuple(params)))
    if not out:
        raise BadInputError("--space leaves no configuration of the methods asked for")
    return SearchSpace(space.num_steps, space.topk, space.num_draft_tokens, tuple(out))


__all__ = ["PARAM_NAMES", "SearchSpace", "chain_space", "method_space", "parse_space"]
