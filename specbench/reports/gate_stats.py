"""Significance tests for the gate: is a drop between two sets of per-request samples real?

The gate follows asv: a change fails only when it is both large (past a threshold) and
unlikely to be noise. Noise is judged with a one-sided Mann-Whitney U test on the raw
per-request samples, because per-request tau and speed are skewed and multi-modal (three
prompt domains), so a rank test is safer than a t-test on means.

A rank test has a floor: with n1 and n2 samples the smallest p-value it can ever return
is 1 / C(n1 + n2, n1). When that floor is above alpha (e.g. 5 vs 5 samples at
alpha = 0.002), the test could never flag anything, so we fall back to comparing
Student-t confidence intervals of the means, which do tighten as the change grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

#: Method names as shown in the table and stored in JUnit properties.
METHOD_MWU = "mann-whitney"
METHOD_T_CI = "t-ci"
METHOD_NONE = "too-few-samples"


@dataclass(frozen=True)
class SignificanceResult:
    """Outcome of testing ``candidate`` against ``baseline`` in both directions.

    ``p_drop``/``p_rise`` are the one-sided Mann-Whitney p-values (None for the CI
    method); ``drop``/``rise`` say whether the candidate is significantly lower/higher.
    """

    method: str
    drop: bool
    rise: bool
    p_drop: float | None = None
    p_rise: float | None = None
    min_p_value: float | None = None
    ci_baseline: tuple[float, float] | None = None
    ci_candidate: tuple[float, float] | None = None

    def p_value_for(self, change: float) -> float | None:
        """The p-value of the direction the change points to (drop when negative)."""
        return self.p_drop if change < 0 else self.p_rise


def mwu_min_p_value(n1: int, n2: int) -> float:
    """Smallest one-sided p-value an exact Mann-Whitney U test can reach with n1, n2 samples."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return 1.0 / math.comb(n1 + n2, n1)


def t_confidence_interval(samples: npt.ArrayLike, alpha: float) -> tuple[float, float] | None:
    """Two-sided 1-alpha Student-t interval of the mean; None with fewer than 2 samples."""
    values = np.asarray(samples, dtype=float)
    n = values.size
    if n < 2:
        return None
    mean = float(values.mean())
    sem = float(values.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(1.0 - alpha / 2.0, n - 1)) * sem
    return (mean - half, mean + half)


def _mwu_p(baseline: np.ndarray, candidate: np.ndarray, alternative: str) -> float:
    result = stats.mannwhitneyu(baseline, candidate, alternative=alternative)
    p = float(result.pvalue)
    # All-equal samples give NaN (zero variance): there is no evidence of a difference.
    return 1.0 if math.isnan(p) else p


def compare_samples(
    baseline: Sequence[float], candidate: Sequence[float], *, alpha: float
) -> SignificanceResult:
    """Test whether the candidate's samples are significantly lower or higher.

    Mann-Whitney U (one-sided each way) when it can reach ``alpha`` with these sample
    counts; otherwise non-overlapping 1-alpha t intervals of the means; with fewer than
    two samples on a side nothing can be significant.
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    n1, n2 = base.size, cand.size
    floor = mwu_min_p_value(n1, n2)
    if n1 >= 1 and n2 >= 1 and floor <= alpha:
        p_drop = _mwu_p(base, cand, "greater")
        p_rise = _mwu_p(base, cand, "less")
        return SignificanceResult(
            method=METHOD_MWU,
            drop=p_drop < alpha,
            rise=p_rise < alpha,
            p_drop=p_drop,
            p_rise=p_rise,
            min_p_value=floor,
        )
    ci_base = t_confidence_interval(base, alpha)
    ci_cand = t_confidence_interval(cand, alpha)
    if ci_base is None or ci_cand is None:
        return SignificanceResult(method=METHOD_NONE, drop=False, rise=False, min_p_value=floor)
    return SignificanceResult(
        method=METHOD_T_CI,
        drop=ci_base[0] > ci_cand[1],
        rise=ci_cand[0] > ci_base[1],
        min_p_value=floor,
        ci_baseline=ci_base,
        ci_candidate=ci_cand,
    )


def median(samples: Sequence[float]) -> float:
    """Median of the samples (NaN when empty) - the robust centre the gate compares."""
    if len(samples) == 0:
        return math.nan
    return float(np.median(np.asarray(samples, dtype=float)))


__all__ = [
    "METHOD_MWU",
    "METHOD_NONE",
    "METHOD_T_CI",
    "SignificanceResult",
    "compare_samples",
    "median",
    "mwu_min_p_value",
    "t_confidence_interval",
]
