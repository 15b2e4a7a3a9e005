"""Significance tests for the gate: is a drop between two sets of per-request samples real?

The gate follows asv: a change fails only when it is both large (past a threshold) and
unlikely to be noise. Noise is judged with a one-sided Mann-Whitney U test on the raw
per-request samples, because per-request tau and speed are skewed and multi-modal (three
prompt domains), so a rank test is safer than a t-test on means.

A rank test has a floor: with n1 and n2 samples the smallest p-value it can ever return
is 1 / C(n1 + n2, n1). When that floor is above alpha (e.g. 5 vs 5 samples at
alpha = 0.002), the test could never flag anything, so we fall back to comparing
Student-t confidence intervals of the means, which do tighten as the change grows.

Both runs of a gate replay the same prompts (the workload fingerprint says so), and most
of the spread between requests is the prompt's own: a code prompt accepts far more
draft tokens than a chat prompt. An unpaired test counts that spread as noise, so with
the default 16 prompts it misses a real 10% drop most of the time. When both sides carry
prompt ids we therefore pair requests by prompt and test the per-prompt log ratios with
a one-sided Wilcoxon signed-rank test, whose floor is 1 / 2**pairs; the unpaired tests
remain for sides without ids (older baseline files) or too few pairs.
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
METHOD_PAIRED = "wilcoxon-paired"
METHOD_T_CI = "t-ci"
METHOD_NONE = "too-few-samples"


@dataclass(frozen=True)
class SignificanceResult:
    """Outcome of testing ``candidate`` against ``baseline`` in both directions.

    ``p_drop``/``p_rise`` are the one-sided p-values of the rank test used (None for
    the CI method); ``drop``/``rise`` say whether the candidate is significantly lower/higher.
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


def wilcoxon_min_p_value(pairs: int) -> float:
    """Smallest one-sided p-value an exact signed-rank test can reach with ``pairs`` pairs."""
    return 0.5**pairs if pairs >= 1 else 1.0


#: Per-prompt log ratios closer to zero than this are ties: a baseline file keeps six
#: significant digits, and rounding must not count as a direction.
_ZERO_LOG_RATIO = 1e-6


def paired_log_ratios(
    baseline: Sequence[float],
    baseline_ids: Sequence[str],
    candidate: Sequence[float],
    candidate_ids: Sequence[str],
) -> npt.NDArray[np.float64]:
    """log(candidate / baseline) per prompt both sides have, each side's median per prompt.

    Medians per prompt because at high concurrency one prompt is sent several times.
    Prompts with a non-positive value on either side are left out (no log ratio).
    """
    base = _per_prompt_median(baseline, baseline_ids)
    cand = _per_prompt_median(candidate, candidate_ids)
    ratios = [
        math.log(cand[pid] / base[pid])
        for pid in sorted(base.keys() & cand.keys())
        if base[pid] > 0 and cand[pid] > 0
    ]
    out = np.asarray(ratios, dtype=float)
    out[np.abs(out) < _ZERO_LOG_RATIO] = 0.0
    return out


def _per_prompt_median(values: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
    grouped: dict[str, list[float]] = {}
    for pid, value in zip(ids, values, strict=True):
        if math.isfinite(value):
            grouped.setdefault(pid, []).append(float(value))
    return {pid: float(np.median(v)) for pid, v in grouped.items()}


def _wilcoxon_p(log_ratios: npt.NDArray[np.float64], alternative: str) -> float:
    if not np.any(log_ratios != 0.0):
        return 1.0  # every prompt tied: no evidence either way
    p = float(stats.wilcoxon(log_ratios, alternative=alternative, zero_method="wilcox").pvalue)
    return 1.0 if math.isnan(p) else p


def compare_paired(
    baseline: Sequence[float],
    baseline_ids: Sequence[str],
    candidate: Sequence[float],
    candidate_ids: Sequence[str],
    *,
    alpha: float,
) -> SignificanceResult:
    """Paired by prompt when both sides have ids and enough shared prompts to reach alpha;
    otherwise :func:`compare_samples` on the raw samples."""
    if (
        baseline_ids
        and candidate_ids
        and len(baseline_ids) == len(baseline)
        and len(candidate_ids) == len(candidate)
    ):
        ratios = paired_log_ratios(baseline, baseline_ids, candidate, candidate_ids)
        floor = wilcoxon_min_p_value(ratios.size)
        if floor <= alpha:
            p_drop = _wilcoxon_p(ratios, "less")
            p_rise = _wilcoxon_p(ratios, "greater")
            return SignificanceResult(
                method=METHOD_PAIRED,
                drop=p_drop < alpha,
                rise=p_rise < alpha,
                p_drop=p_drop,
                p_rise=p_rise,
                min_p_value=floor,
            )
    return compare_samples(baseline, candidate, alpha=alpha)


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
    "METHOD_PAIRED",
    "METHOD_T_CI",
    "SignificanceResult",
    "compare_paired",
    "compare_samples",
    "median",
    "mwu_min_p_value",
    "paired_log_ratios",
    "t_confidence_interval",
    "wilcoxon_min_p_value",
]
