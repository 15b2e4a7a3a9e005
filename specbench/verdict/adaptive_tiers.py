"""Speculation that follows the batch size, read off a run's per-load results.

Both engines can change the chain length with the running batch size (SGLang 0.5.23's
``--speculative-adaptive``, vLLM 0.32's ``num_speculative_tokens_per_batch_size``) and
leave the numbers to the user. A sweep already knows them: at each measured load, which
chain lengths were within noise of the best, and whether any beat no speculation. This
module turns that into one tier per measured load, engine-neutral; the engines' own
formats are written by ``specbench.harness.adaptive_config``.

Both engines switch only the chain length (topk 1: SGLang's adaptive mode refuses a
tree, vLLM has none), so a run whose best configuration at some load was a tree gets
the best chain there, and the tier keeps the tree it gave up and by how much.

A tier covers the batch sizes from its load up to the next measured load: SGLang routes
a batch to the largest configured batch size not above it (adaptive_step_router.py,
``batch_size_key_for_batch``), and the vLLM table is written with the same boundaries,
so both files mean the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from specbench.errors import BadInputError
from specbench.verdict.candidates import Candidate, candidate_table, candidates_at, tree_cost


@dataclass(frozen=True)
class AdaptiveTier:
    """The chain lengths to allow from ``batch_size`` up to the next tier.

    ``steps`` are the chain lengths within noise of the best chain that beat no
    speculation (``(0,)``: none did, speculation off here); ``pick`` is the cheapest of
    them (the one a fixed per-batch-size table uses, 0 when off).
    """

    batch_size: int
    steps: tuple[int, ...]
    pick: int
    #: The measured load (concurrency) the tier comes from.
    measured_at: int
    #: The measured best chain and best configuration of any shape at this load.
    best_chain: Candidate | None = None
    best_any: Candidate | None = None

    @property
    def speculates(self) -> bool:
        return self.pick > 0

    @property
    def tree_cost_fraction(self) -> float | None:
        """How much slower the best chain was than the best tree here (0.04 = 4%), or
        None when the best configuration was a chain already or nothing was measured."""
        if self.best_chain is None or self.best_any is None:
            return None
        if self.best_any.config.topk == 1:
            return None
        return 1.0 - self.best_chain.speedup / self.best_any.speedup

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "steps": list(self.steps),
            "pick": self.pick,
            "measured_at": self.measured_at,
            "best_chain": None if self.best_chain is None else self.best_chain.to_json(),
            "best_any": None if self.best_any is None else self.best_any.to_json(),
            "tree_cost_fraction": self.tree_cost_fraction,
        }


def _tier_at(table: pd.DataFrame, concurrency: int) -> AdaptiveTier:
    """One load's tier: every paying chain within the best chain's interval."""
    everything = candidates_at(table, concurrency)
    chains = [c for c in everything if c.config.topk == 1]
    best_any = everything[0] if everything else None
    if not chains:
        return AdaptiveTier(concurrency, (0,), 0, concurrency, None, best_any)
    best = chains[0]
    if not best.pays:
        return AdaptiveTier(concurrency, (0,), 0, concurrency, best, best_any)
    within = [c for c in chains if c.speedup >= best.ci[0] and c.pays]
    pick = min(within, key=lambda c: (tree_cost(c.config), -c.speedup, c.key))
    steps = tuple(sorted({c.config.num_steps for c in within}))
    return AdaptiveTier(concurrency, steps, pick.config.num_steps, concurrency, best, best_any)


def adaptive_tiers(trials: pd.DataFrame, concurrencies: Sequence[int]) -> list[AdaptiveTier]:
    """One tier per measured load, lowest first; the lowest also covers every smaller
    batch (SGLang sends batches below its smallest key there; vLLM's table must start at
    batch size 1). BadInputError when the run measured no chain at all."""
    table = candidate_table(trials)
    if table.empty or not (table["topk"] == 1).any():
        raise BadInputError(
            "the run measured no chain (topk 1) configuration, and adaptive speculation "
            "switches chain lengths only: measure some with --space topk=1 (or add "
            "--config 2,1,3 --config 3,1,4)"
        )
    loads = sorted(set(int(c) for c in concurrencies))
    tiers = [_tier_at(table, c) for c in loads]
    return [replace(tiers[0], batch_size=1), *tiers[1:]]


__all__ = ["AdaptiveTier", "adaptive_tiers"]
