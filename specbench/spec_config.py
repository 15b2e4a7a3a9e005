"""The speculative configuration triple and SGLang's rules for it.

Every part of specbench (model, harness, sweep, report, gate) speaks of a configuration
as ``(num_steps, topk, num_draft_tokens)``; ``None`` in its place means the
no-speculation baseline. The validity rules live here, once, because SGLang enforces
some at start-up and crashes mid-run on others ("selected index k out of range"), and a
sweep must never spend minutes launching a server for a configuration that cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from specbench.errors import InvalidConfigError

#: Bounds of the search space; inside them invalid_reason keeps what SGLang accepts.
NUM_STEPS_RANGE: tuple[int, ...] = tuple(range(1, 9))
TOPK_CHOICES: tuple[int, ...] = (1, 2, 4, 8)
MIN_DRAFT_TOKENS = 2
MAX_DRAFT_TOKENS = 64

#: Key used for the no-speculation baseline wherever a configuration key is expected.
BASELINE_KEY = "baseline"


@dataclass(frozen=True, order=True)
class SpecConfig:
    """One EAGLE tree shape: draft depth, branching per step, and verified node budget."""

    num_steps: int
    topk: int
    num_draft_tokens: int

    @property
    def key(self) -> str:
        """Stable short name, e.g. ``"3-4-8"``; used in file names and table rows."""
        return f"{self.num_steps}-{self.topk}-{self.num_draft_tokens}"

    def as_dict(self) -> dict[str, int]:
        return {
            "num_steps": self.num_steps,
            "topk": self.topk,
            "num_draft_tokens": self.num_draft_tokens,
        }

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


def make_config(num_steps: int, topk: int, num_draft_tokens: int) -> SpecConfig:
    """Build a configuration, raising InvalidConfigError with the reason if it is invalid."""
    reason = invalid_reason(num_steps, topk, num_draft_tokens)
    if reason is not None:
        raise InvalidConfigError(
            f"invalid configuration {num_steps},{topk},{num_draft_tokens}: {reason}"
        )
    return SpecConfig(num_steps, topk, num_draft_tokens)


_TRIPLE = re.compile(r"^\s*(\d+)\s*[,:x/-]\s*(\d+)\s*[,:x/-]\s*(\d+)\s*$")


def parse_config(text: str) -> SpecConfig:
    """Parse ``"3,4,8"`` (also ``3-4-8``, ``3x4x8``) into a validated configuration."""
    match = _TRIPLE.match(text)
    if match is None:
        raise InvalidConfigError(
            f"cannot read configuration {text!r}: expected num_steps,topk,num_draft_tokens such as 3,4,8"
        )
    steps, topk, ndt = (int(g) for g in match.groups())
    return make_config(steps, topk, ndt)


def parse_configs(texts: Iterable[str]) -> list[SpecConfig]:
    """Parse several configurations (e.g. repeated ``--config`` or ``"3,4,8;5,4,8"``)."""
    out: list[SpecConfig] = []
    for text in texts:
        for part in text.split(";"):
            if part.strip():
                out.append(parse_config(part))
    return out


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
