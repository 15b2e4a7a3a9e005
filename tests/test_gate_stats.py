"""The statistics behind the gate: MWU floor, the CI fallback, both directions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from specbench.reports.gate_stats import (
    METHOD_MWU,
    METHOD_NONE,
    METHOD_T_CI,
    compare_samples,
    median,
    mwu_min_p_value,
    t_confidence_interval,
)


def test_min_p_value_is_one_over_binomial() -> None:
    assert mwu_min_p_value(3, 3) == pytest.approx(1 / 20)
    assert mwu_min_p_value(5, 5) == pytest.approx(1 / 252)
    assert mwu_min_p_value(6, 6) == pytest.approx(1 / 924)
    assert mwu_min_p_value(0, 5) == 1.0


def test_min_p_value_matches_scipy_exact_extreme() -> None:
    # The floor is what an exact one-sided test returns for complete separation.
    from scipy import stats

    p = stats.mannwhitneyu([10, 11, 12, 13], [1, 2, 3], alternative="greater", method="exact")
    assert p.pvalue == pytest.approx(mwu_min_p_value(4, 3))


def test_switches_to_ci_when_mwu_cannot_reach_alpha() -> None:
    rng = np.random.default_rng(0)
    # 5 vs 5: floor 1/252 = 0.004 > 0.002, so MWU could never flag anything.
    small = compare_samples(rng.normal(10, 1, 5), rng.normal(5, 1, 5), alpha=0.002)
    assert small.method == METHOD_T_CI
    assert small.min_p_value == pytest.approx(1 / 252)
    assert small.drop and not small.rise  # a 5-sigma shift separates even 99.8% intervals
    # 6 vs 6: floor 1/924 < 0.002, so the rank test is used.
    enough = compare_samples(rng.normal(10, 1, 6), rng.normal(5, 1, 6), alpha=0.002)
    assert enough.method == METHOD_MWU
    assert enough.drop and enough.p_drop is not None and enough.p_drop < 0.002
    # At a looser alpha the same 5 vs 5 may use the rank test.
    assert compare_samples([3, 4, 5, 6, 7], [1, 2, 3, 4, 5], alpha=0.01).method == METHOD_MWU


def test_three_samples_with_a_large_change_are_not_significant() -> None:
    base, cand = [2.6, 2.9, 2.4], [2.1, 2.4, 1.95]  # about -18%, but three samples each
    result = compare_samples(base, cand, alpha=0.002)
    assert result.method == METHOD_T_CI
    assert not result.drop
    assert result.ci_baseline is not None and result.ci_candidate is not None


def test_directions_and_noise() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(100, 5, 40)
    lower = compare_samples(base, base * 0.9, alpha=0.002)
    assert lower.drop and not lower.rise and lower.p_value_for(-0.1) == lower.p_drop
    higher = compare_samples(base, base * 1.1, alpha=0.002)
    assert higher.rise and not higher.drop and higher.p_value_for(0.1) == higher.p_rise
    same = compare_samples(base, rng.normal(100, 5, 40), alpha=0.002)
    assert not same.drop and not same.rise


def test_degenerate_samples() -> None:
    flat = compare_samples([2.0] * 10, [2.0] * 10, alpha=0.002)
    assert flat.method == METHOD_MWU and not flat.drop and not flat.rise
    one = compare_samples([1.0], [5.0], alpha=0.002)
    assert one.method == METHOD_NONE and not one.drop
    assert t_confidence_interval([1.0], 0.05) is None
    lo, hi = t_confidence_interval([1.0, 2.0, 3.0], 0.05) or (math.nan, math.nan)
    assert lo < 2.0 < hi
    assert math.isnan(median([]))
    assert median([3.0, 1.0, 2.0]) == 2.0
