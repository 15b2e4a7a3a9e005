"""The speculative configuration: one typed value from the CLI to the run directory.

Every part of specbench (model, harness, sweep, report, gate) speaks of a configuration
as a ``SpecConfig``; ``None`` in its place means the no-speculation baseline. A config
names its speculative ``method`` and holds that method's numbers; today the one method is
EAGLE3-style drafting (a tree on SGLang, a chain on vLLM), described by
``(num_steps, topk, num_draft_tokens)``.

A ``SpecConfig`` is valid by construction: ``__post_init__`` applies the method's rules
(for EAGLE3, SGLang's: it enforces some at start-up and crashes mid-run on others,
"selected index k out of range"), so a sweep never spends minutes launching a server for
a configuration that cannot run and no later stage checks again. Text enters through
``SpecConfig.parse`` and table columns through ``SpecConfig.from_fields``; the ``key``
("3-4-8") is derived from the value for file names and table rows and is never split
back into numbers.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specbench.errors import InvalidConfigError

#: EAGLE3-style drafting (SGLang ``--speculative-algorithm EAGLE3``, vLLM
#: ``{"method": "eagle3"}``; an EAGLE-1/2 head takes the same numbers). Method names are
#: spelled as the engines spell them, lower case.
EAGLE3 = "eagle3"
#: Every method a configuration can name.
METHODS: tuple[str, ...] = (EAGLE3,)

#: Bounds of the search space; inside them invalid_reason keeps what SGLang accepts.
NUM_STEPS_RANGE: tuple[int, ...] = tuple(range(1, 9))
TOPK_CHOICES: tuple[int, ...] = (1, 2, 4, 8)
MIN_DRAFT_TOKENS = 2
MAX_DRAFT_TOKENS = 64

#: Key used for the no-speculation baseline wherever a configuration key is expected.
BASELINE_KEY = "baseline"

#: The numeric fields of an EAGLE3 configuration, in key order (also the Optuna
#: parameter names and the trials.csv column names).
NUMBER_FIELDS: tuple[str, ...] = ("num_steps", "topk", "num_draft_tokens")

_TRIPLE = re.compile(r"^\s*(\d+)\s*[,:x/-]\s*(\d+)\s*[,:x/-]\s*(\d+)\s*$")


@dataclass(frozen=True, order=True)
class SpecConfig:
    """One speculative configuration: for EAGLE3, draft depth, branching per step and
    verified node budget. Construction refuses an invalid one (InvalidConfigError)."""

    num_steps: int
    topk: int
    num_draft_tokens: int
    method: str = EAGLE3

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidConfigError(
                f"unknown speculative method {self.method!r} (expected {', '.join(METHODS)})"
            )
        for name in NUMBER_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InvalidConfigError(f"configuration {name} must be an integer (got {value!r})")
            object.__setattr__(self, name, int(value))  # numpy integers from tables
        reason = invalid_reason(self.num_steps, self.topk, self.num_draft_tokens)
        if reason is not None:
            raise InvalidConfigError(
                f"invalid configuration {self.num_steps},{self.topk},{self.num_draft_tokens}: "
                f"{reason}"
            )

    @classmethod
    def parse(cls, text: str) -> SpecConfig:
        """Parse ``"3,4,8"`` (also ``3-4-8``, ``3x4x8``) into a configuration."""
        match = _TRIPLE.match(text)
        if match is None:
            raise InvalidConfigError(
                f"cannot read configuration {text!r}: expected num_steps,topk,num_draft_tokens "
                "such as 3,4,8"
            )
        steps, topk, ndt = (int(g) for g in match.groups())
        return cls(steps, topk, ndt)

    @classmethod
    def parse_list(cls, texts: Iterable[str]) -> list[SpecConfig]:
        """Several configurations (repeated ``--config``, or ``"3,4,8;5,4,8"``)."""
        return [cls.parse(part) for text in texts for part in text.split(";") if part.strip()]

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> SpecConfig:
        """The configuration a table row or JSON object describes by its columns.

        Rows of trials.csv, results.json and the Optuna study carry ``num_steps``,
        ``topk`` and ``num_draft_tokens`` (whole floats where pandas read a column with
        gaps); a ``method`` column is optional, EAGLE3 when absent (every file written so
        far).
        """
        method = fields.get("method")
        if method is None or (isinstance(method, float) and math.isnan(method)):
            method = EAGLE3
        values: list[int] = []
        for name in NUMBER_FIELDS:
            value = fields.get(name)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InvalidConfigError(
                    f"configuration field {name} must be an integer (got {value!r})"
                )
            values.append(int(value))
        return cls(values[0], values[1], values[2], str(method))

    @property
    def key(self) -> str:
        """Stable short name derived from the value, e.g. ``"3-4-8"`` for EAGLE3; used in
        file names and table rows. A later method gets its own form; never parse it."""
        return f"{self.num_steps}-{self.topk}-{self.num_draft_tokens}"

    def as_dict(self) -> dict[str, int]:
        """The numbers, as results.json, recommendation.json and the Optuna study store
        them (the method is not written: every file so far is EAGLE3)."""
        return {name: getattr(self, name) for name in NUMBER_FIELDS}

    def __str__(self) -> str:
        return f"(steps={self.num_steps}, topk={self.topk}, draft_tokens={self.num_draft_tokens})"


def config_key(config: SpecConfig | None) -> str:
    """Key of a configuration, with ``"baseline"`` for no speculation."""
    return BASELINE_KEY if config is None else config.key


def invalid_reason(num_steps: int, topk: int, num_draft_tokens: int) -> str | None:
    """Why SGLang would reject or crash on this triple, or None when it is valid.

    The reasons are phrased for users: they say which flag to change.
    """
    if num_steps < 1:
        return f"--speculative-num-steps must be >= 1 (got {num_steps})"
    if topk < 1:
        return f"--speculative-eagle-topk must be >= 1 (got {topk})"
    if num_draft_tokens < MIN_DRAFT_TOKENS:
        return (
            f"--speculative-num-draft-tokens must be >= {MIN_DRAFT_TOKENS} (got {num_draft_tokens})"
        )
    if topk == 1 and num_draft_tokens != num_steps + 1:
        return (
            f"with --speculative-eagle-topk 1 the tree is a chain, so SGLang forces "
            f"--speculative-num-draft-tokens = num_steps + 1 = {num_steps + 1} "
            f"(got {num_draft_tokens})"
        )
    pool = num_steps * topk
    if num_draft_tokens - 1 > pool:
        return (
            f"--speculative-num-draft-tokens {num_draft_tokens} asks to verify "
            f"{num_draft_tokens - 1} draft nodes but {num_steps} steps x topk {topk} "
            f"propose only {pool} (SGLang fails with 'selected index out of range'); "
            f"use at most {pool + 1}"
        )
    return None


def valid_configs(
    num_steps: Sequence[int] = NUM_STEPS_RANGE,
    topks: Sequence[int] = TOPK_CHOICES,
    draft_tokens: Sequence[int] | None = None,
) -> list[SpecConfig]:
    """Every valid configuration in the given ranges, in a stable sorted order."""
    ndts = (
        list(draft_tokens)
        if draft_tokens is not None
        else list(range(MIN_DRAFT_TOKENS, MAX_DRAFT_TOKENS + 1))
    )
    out = [
        SpecConfig(s, k, n)
        for s in sorted(set(num_steps))
        for k in sorted(set(topks))
        for n in sorted(set(ndts))
        if invalid_reason(s, k, n) is None
    ]
    return out
