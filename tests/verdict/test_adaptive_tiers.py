"""Tiers of adaptive speculation from per-load results (specbench.verdict.adaptive_tiers)."""

from __future__ import annotations

import pandas as pd
import pytest

from specbench.errors import BadInputError
from specbench.verdict.adaptive_tiers import adaptive_tiers
from tests.support.verdict_rows import trial_rows

#: A tree wins at 1, chains at 8, nothing pays at 32.
SHAPES = {
    "3-4-8": {1: 1.80, 8: 1.10, 32: 0.80},
    "3-1-4": {1: 1.62, 8: 1.20, 32: 0.90},
    "2-1-3": {1: 1.60, 8: 1.25, 32: 0.95},
    "1-1-2": {1: 1.30, 8: 1.24, 32: 0.97},
}
CI = {(key, c): (s * 0.97, s * 1.03) for key, by_c in SHAPES.items() for c, s in by_c.items()}


def test_each_load_gets_the_chains_within_noise_and_zero_where_none_pays() -> None:
    tiers = adaptive_tiers(trial_rows(SHAPES, CI), [1, 8, 32])
    assert [t.batch_size for t in tiers] == [1, 8, 32]
    assert [t.measured_at for t in tiers] == [1, 8, 32]
    # At 1: 3-1-4 (1.62, interval from 1.57) and 2-1-3 (1.60) are within noise; 1-1-2 is not.
    assert tiers[0].steps == (2, 3)
    assert tiers[0].pick == 2  # the cheaper chain within noise
    # At 8: every chain within 1.25's interval (from 1.2125) that pays.
    assert tiers[1].steps == (1, 2)
    assert tiers[1].pick == 1
    # At 32 no chain beats no speculation.
    assert tiers[2].steps == (0,) and tiers[2].pick == 0 and not tiers[2].speculates


def test_a_tree_that_won_is_replaced_by_the_best_chain_with_its_measured_cost() -> None:
    first = adaptive_tiers(trial_rows(SHAPES, CI), [1, 8, 32])[0]
    assert first.best_any is not None and first.best_any.key == "3-4-8"
    assert first.best_chain is not None and first.best_chain.key == "3-1-4"
    assert first.tree_cost_fraction == pytest.approx(1 - 1.62 / 1.80)
    # Where a chain was best already there is no cost to state.
    assert adaptive_tiers(trial_rows(SHAPES, CI), [1, 8, 32])[1].tree_cost_fraction is None


def test_the_lowest_tier_starts_at_batch_one_whatever_load_it_was_measured_at() -> None:
    rows = trial_rows({k: {8: v[8], 32: v[32]} for k, v in SHAPES.items()}, CI)
    tiers = adaptive_tiers(rows, [8, 32])
    assert [(t.batch_size, t.measured_at) for t in tiers] == [(1, 8), (32, 32)]


def test_a_run_without_any_chain_is_refused_with_the_flags_that_measure_one() -> None:
    rows: pd.DataFrame = trial_rows({"3-4-8": SHAPES["3-4-8"]}, CI)
    with pytest.raises(BadInputError, match="--space topk=1"):
        adaptive_tiers(rows, [1, 8, 32])
