"""The statistics behind the gate: MWU floor, the CI fallback, both directions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from specbench.gate.stats import (
    METHOD_MWU,
    METHOD_NONE,
    METHOD_PAIRED,
    METHOD_T_CI,
    compare_paired,
    compare_samples,
    median,
    mwu_min_p_value,
    paired_log_ratios,
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


def test_paired_test_pairs_by_prompt_and_medians_repeats() -> None:
    ratios = paired_log_ratios([2.0, 4.0, 2.0, 9.0], ["a", "b", "b", "x"], [1.0, 3.0], ["a", "b"])
    assert ratios.tolist() == pytest.approx([math.log(0.5), 0.0])


def test_paired_false_alarm_rate_on_pure_noise_is_alpha() -> None:
    # 16 prompts (the sweep's default) with a wide spread of their own and 8% run-to-run
    # noise per prompt: the one-sided paired test must fire about alpha of the time.
    rng = np.random.default_rng(5)
    ids = [f"p{i}" for i in range(16)]
    draws = 3000
    alarms = 0
    for _ in range(draws):
        own = rng.uniform(1.6, 3.8, 16)
        result = compare_paired(
            list(own * rng.lognormal(0.0, 0.08, 16)),
            ids,
            list(own * rng.lognormal(0.0, 0.08, 16)),
            ids,
            alpha=0.002,
        )
        assert result.method == METHOD_PAIRED
        alarms += result.drop
    assert alarms / draws < 0.006  # binomial: 0.002 expected, sd ~0.0008


def test_paired_test_catches_ten_percent_drop_that_mann_whitney_misses() -> None:
    rng = np.random.default_rng(3)
    ids = [f"p{i}" for i in range(16)]
    caught_paired = caught_unpaired = 0
    for _ in range(50):
        own = rng.uniform(1.6, 3.8, 16)
        before = list(own * rng.lognormal(0.0, 0.05, 16))
        after = list(own * 0.9 * rng.lognormal(0.0, 0.05, 16))
        caught_paired += compare_paired(before, ids, after, ids, alpha=0.002).drop
        caught_unpaired += compare_samples(before, after, alpha=0.002).drop
    assert caught_paired >= 45
    assert caught_unpaired <= 10


def test_paired_falls_back_without_ids_or_with_too_few_pairs() -> None:
    base, cand = [3.0, 4.0, 5.0, 6.0, 7.0], [1.0, 2.0, 3.0, 4.0, 5.0]
    assert compare_paired(base, [], cand, [], alpha=0.01).method == METHOD_MWU
    # 5 pairs: 1/32 > alpha, so the paired test could never fire.
    ids = list("abcde")
    assert compare_paired(base, ids, cand, ids, alpha=0.01).method == METHOD_MWU
    tied = compare_paired(
        [2.0] * 12, list("abcdefghijkl"), [2.0] * 12, list("abcdefghijkl"), alpha=0.002
    )
    assert tied.method == METHOD_PAIRED and not tied.drop and tied.p_drop == 1.0
