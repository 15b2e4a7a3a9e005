"""Fit the acceptance model to a measured run: measure once, predict everywhere.

Input is plain data that both engines report:
  * per-position acceptance of chain drafts (vLLM's Prometheus counters
    ``vllm:spec_decode_num_drafts_total`` and
    ``vllm:spec_decode_num_accepted_tokens_per_pos_total{position="i"}``, i = 0..k-1, or an
    SGLang accept-length histogram of a topk-1 run, via `ChainCounts.from_histogram`);
  * optionally, mean accepted length per domain at a configuration (from per-request
    records: completion_tokens / spec_verify_ct), to set each domain's level.

Why a chain fit extrapolates: in the acceptance model a chain node at draft position d
accepts with ``agreement * depth_decay**(d-1) * E[c]``, independently of the others, so
``log P(first d accepted) = d log A + d (d - 1) / 2 log depth_decay``: a weighted linear
least-squares problem in (log A, log depth_decay). Two positions (k = 2) determine both,
and the same two numbers price every other chain length and, with the preset's draft
sharpness, every tree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import brentq

from specbench.errors import BadInputError
from specbench.model.acceptance import DomainAcceptance, mean_confidence
from specbench.model.draft_profile import DraftProfile
from specbench.model.hardware import HardwareProfile, load_hardware
from specbench.model.performance import PerformanceModel
from specbench.model.targets import DOMAINS, TargetPreset
from specbench.spec_config import SpecConfig

#: Agreement is a probability; a fit that asks for more makes the draft sharper instead.
_MAX_AGREEMENT = 0.995
#: Highest position-1 acceptance the model represents (a draft that is never wrong is not
#: a draft; the bisection needs a finite sharpness).
_MAX_RATE = 0.98


@dataclass(frozen=True)
class ChainCounts:
    """Drafts of a chain of k tokens and how many were accepted at each position."""

    num_drafts: int
    accepted_per_position: tuple[float, ...]  # position 0..k-1: drafts accepted that far

    def __post_init__(self) -> None:
        if self.num_drafts < 1:
            raise BadInputError(f"num_drafts must be >= 1 (got {self.num_drafts})")
        if not self.accepted_per_position:
            raise BadInputError("accepted_per_position needs at least one position")
        prev = float(self.num_drafts)
        for i, n in enumerate(self.accepted_per_position):
            if n < 0 or n > prev + 1e-9:
                raise BadInputError(
                    f"accepted at position {i} ({n:g}) must be in 0..{prev:g}: a draft "
                    f"is accepted at position i only if it was at i - 1"
                )
            prev = n

    @property
    def k(self) -> int:
        return len(self.accepted_per_position)

    @property
    def rates(self) -> np.ndarray:
        """P(accepted through position i), i = 1..k."""
        return np.asarray(self.accepted_per_position, dtype=float) / self.num_drafts

    @property
    def mean_accept_length(self) -> float:
        """Tokens per verify step, bonus included (vLLM's "mean acceptance length")."""
        return 1.0 + float(self.rates.sum())

    @classmethod
    def from_vllm(cls, num_drafts: float, per_position: Mapping[int | str, float]) -> ChainCounts:
        """From vLLM's counters: the drafts total and accepted tokens per position label."""
        by_pos = {int(k): float(v) for k, v in per_position.items()}
        if sorted(by_pos) != list(range(len(by_pos))):
            raise BadInputError(f"positions must be 0..k-1, got {sorted(by_pos)}")
        return cls(int(num_drafts), tuple(by_pos[i] for i in range(len(by_pos))))

    @classmethod
    def from_histogram(cls, histogram: Sequence[float]) -> ChainCounts:
        """From verify steps per accepted draft count (index j: j drafts accepted)."""
        h = np.asarray(histogram, dtype=float)
        if h.ndim != 1 or len(h) < 2 or (h < 0).any() or h.sum() <= 0:
            raise BadInputError("histogram needs counts for 0..k accepted drafts")
        at_least = np.cumsum(h[::-1])[::-1]  # at_least[j]: steps with >= j accepted
        return cls(round(float(h.sum())), tuple(float(v) for v in at_least[1:]))


@dataclass(frozen=True)
class DomainTau:
    """Measured mean accepted length (bonus included) of one domain at one configuration."""

    domain: str
    config: SpecConfig
    mean_tau: float


@dataclass(frozen=True)
class CalibrationResult:
    profile: DraftProfile
    accept_rate: float  # A: P(accept) at position 1 for the fitted domain
    depth_decay: float
    error: Mapping[str, Any]  # per-chain measured vs fitted accept length, worst error


def fit_chain(counts: Sequence[ChainCounts]) -> tuple[float, float]:
    """(A, depth_decay) from per-position chain counts, weighted by binomial precision."""
    rows: list[tuple[float, float]] = []
    ys: list[float] = []
    ws: list[float] = []
    for c in counts:
        for d, p in enumerate(c.rates, start=1):
            if p <= 0:
                continue  # log 0: no information beyond "small"
            p_eff = min(p, 1.0 - 0.5 / c.num_drafts)
            rows.append((d, d * (d - 1) / 2.0))
            ys.append(math.log(p_eff))
            ws.append(c.num_drafts * p_eff / (1.0 - p_eff))
    if not rows:
        raise BadInputError("no accepted drafts at any position: nothing to fit")
    x = np.asarray(rows)
    w = np.sqrt(np.asarray(ws))
    y = np.asarray(ys)
    if np.linalg.matrix_rank(x) < 2:  # one position only: no depth information
        log_a, log_decay = float(np.average(y / x[:, 0], weights=w)), 0.0
    else:
        coef, *_ = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)
        log_a, log_decay = float(coef[0]), float(coef[1])
    decay = min(1.0, math.exp(log_decay))
    if decay < math.exp(log_decay):  # clipped: refit A alone with the decay pinned
        log_a = float(np.average((y - x[:, 1] * math.log(decay)) / x[:, 0], weights=w))
    return min(1.0, math.exp(log_a)), decay


def resample_chain(counts: ChainCounts, rng: np.random.Generator) -> ChainCounts:
    """One parametric-bootstrap draw of a chain run: the same number of drafts, each
    position accepted binomially at the measured conditional rate (acceptance at i given
    acceptance at i - 1), so the draw varies as a rerun of the same load would."""
    drafts = counts.num_drafts
    reached, measured_reached = drafts, float(drafts)
    accepted: list[float] = []
    for measured in counts.accepted_per_position:
        rate = measured / measured_reached if measured_reached > 0 else 0.0
        reached = int(rng.binomial(reached, min(1.0, max(0.0, rate))))
        accepted.append(float(reached))
        measured_reached = measured
    return ChainCounts(drafts, tuple(accepted))


def chain_taus(
    acceptance: tuple[tuple[str, DomainAcceptance], ...], ks: Sequence[int], names: Sequence[str]
) -> dict[int, float]:
    """Mean accept length (bonus included) of a chain of each length in ``ks``, averaged
    over the domains ``names`` (exact for chains: no Monte-Carlo)."""
    by_name = dict(acceptance)
    return {
        k: 1.0 + float(np.mean([by_name[d].chain_acceptance(k) for d in names], axis=0).sum())
        for k in ks
    }


def _with_rate(prior: DomainAcceptance, rate: float, decay: float) -> DomainAcceptance:
    """The prior's draft sharpness, agreement set so that position 1 accepts `rate`."""
    mu, sigma = prior.confidence_mu, prior.confidence_sigma
    rate = min(rate, _MAX_RATE)
    if rate >= _MAX_AGREEMENT * mean_confidence(mu, sigma):  # sharpen the draft instead
        mu = brentq(lambda m: _MAX_AGREEMENT * mean_confidence(m, sigma) - rate, mu, 20.0)
    agreement = min(_MAX_AGREEMENT, rate / mean_confidence(mu, sigma))
    return replace(prior, confidence_mu=mu, agreement=agreement, depth_decay=decay)


def _chain_rate(p: DomainAcceptance) -> float:
    return p.agreement * mean_confidence(p.confidence_mu, p.confidence_sigma)


def fit_acceptance(
    target: TargetPreset,
    counts: Sequence[ChainCounts],
    *,
    domain: str | None = None,
    domain_taus: Sequence[DomainTau] = (),
    hardware: HardwareProfile | None = None,
    name: str = "fitted",
    samples: int = 4000,
) -> CalibrationResult:
    """Fit the target's draft acceptance to measured chain counts (and domain levels).

    `domain` is the text domain of the counted run (None: the mix of chat, code and math,
    as `predict` assumes). The other domains keep their preset ratios to it, unless
    `domain_taus` sets their level. Returns the profile (write it with
    `write_draft_profile`) and the fit's error on the data it was given.
    """
    if not counts:
        raise BadInputError("calibration needs at least one run's per-position counts")
    rate, decay = fit_chain(counts)
    priors = dict(target.acceptance)
    names = DOMAINS if domain is None else (domain,)
    if domain is not None and domain not in priors:
        raise BadInputError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    prior_rate = float(np.mean([_chain_rate(priors[d]) for d in names]))
    fitted = {
        d: _with_rate(p, min(1.0, rate * _chain_rate(p) / prior_rate), decay)
        for d, p in priors.items()
    }
    for measured in domain_taus:
        if measured.domain not in fitted:
            raise BadInputError(f"unknown domain {measured.domain!r}; known: {', '.join(DOMAINS)}")
        fitted[measured.domain] = _level_to_tau(
            target, hardware, fitted[measured.domain], measured, samples
        )
    acceptance = tuple((d, fitted[d]) for d in DOMAINS)
    error = _fit_error(counts, acceptance, names)
    error["domain_taus"] = [
        {
            "domain": m.domain,
            "config": m.config.key,
            "measured": m.mean_tau,
            "fitted": _tau(target, hardware, acceptance, m.config, m.domain, samples),
        }
        for m in domain_taus
    ]
    profile = DraftProfile(
        name=name,
        target=target.name,
        algorithm=target.algorithm,
        draft_model_path=target.draft_model_path,
        sources=(f"specbench calibrate: fitted to {len(counts)} measured run(s)",),
        acceptance=acceptance,
        fit={
            "method": "chain per-position log-linear least squares",
            "domain": domain or "mix",
            "accept_rate_position_1": rate,
            "depth_decay": decay,
            "runs": [
                {"k": c.k, "num_drafts": c.num_drafts, "rates": [float(r) for r in c.rates]}
                for c in counts
            ],
            "error": error,
        },
    )
    return CalibrationResult(profile, rate, decay, error)


def prediction_intervals(
    target: TargetPreset,
    counts: Sequence[ChainCounts],
    measured: Mapping[int, ChainCounts],
    *,
    domain: str | None = None,
    draws: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[int, tuple[float, float]]:
    """Where a measurement of each chain length in ``measured`` should fall, given a fit
    to ``counts``: the fit's own uncertainty (refits to bootstrap draws of the fitted
    runs) plus the sampling noise of that chain's measurement (draws of its own counts).

    Extrapolating a two-parameter fit from k = 2 to k = 4 multiplies the error of the
    depth decay by six (d (d - 1) / 2), so a point prediction alone says too little:
    the interval is what a comparison with a measurement can honestly be held to.
    """
    names = DOMAINS if domain is None else (domain,)
    ks = sorted(measured)
    point = chain_taus(fit_acceptance(target, counts, domain=domain).profile.acceptance, ks, names)
    rng = np.random.default_rng(seed)
    deviations = np.empty((draws, len(ks)))
    for i in range(draws):
        drawn = [resample_chain(c, rng) for c in counts]
        refit = fit_acceptance(target, drawn, domain=domain)
        predicted = chain_taus(refit.profile.acceptance, ks, names)
        for j, k in enumerate(ks):
            # A chain that was fitted on is measured by the same draw that moved the fit.
            same = next((d for c, d in zip(counts, drawn, strict=True) if c == measured[k]), None)
            rerun = (same or resample_chain(measured[k], rng)).mean_accept_length
            deviations[i, j] = predicted[k] - point[k] + rerun - measured[k].mean_accept_length
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(deviations, [tail, 100.0 - tail], axis=0)
    return {k: (point[k] + float(low[j]), point[k] + float(high[j])) for j, k in enumerate(ks)}


def _fit_error(
    counts: Sequence[ChainCounts],
    acceptance: tuple[tuple[str, DomainAcceptance], ...],
    names: Sequence[str],
) -> dict[str, Any]:
    by_name = dict(acceptance)
    rows = []
    worst = 0.0
    for c in counts:
        fitted = np.mean([by_name[d].chain_acceptance(c.k) for d in names], axis=0)
        tau = 1.0 + float(fitted.sum())
        rel = tau / c.mean_accept_length - 1.0
        worst = max(worst, abs(rel))
        rows.append(
            {
                "k": c.k,
                "measured_accept_length": c.mean_accept_length,
                "fitted_accept_length": tau,
                "relative_error": rel,
                "measured_rates": [float(r) for r in c.rates],
                "fitted_rates": [float(r) for r in fitted],
            }
        )
    return {"chains": rows, "max_abs_relative_error": worst}


def _tau(
    target: TargetPreset,
    hardware: HardwareProfile | None,
    acceptance: tuple[tuple[str, DomainAcceptance], ...],
    config: SpecConfig,
    domain: str,
    samples: int,
) -> float:
    if config.topk == 1:  # a chain: exact, no Monte-Carlo needed
        p = dict(acceptance)[domain].chain_acceptance(config.num_steps)
        return 1.0 + float(p.sum())
    # Acceptance does not depend on the hardware; any profile prices the (unused) costs.
    hw = hardware or load_hardware("h100-nvlink", 1)
    model = PerformanceModel(replace(target, acceptance=acceptance), hw, samples=samples)
    return model.expected_tau(config, domain)


def _level_to_tau(
    target: TargetPreset,
    hardware: HardwareProfile | None,
    params: DomainAcceptance,
    measured: DomainTau,
    samples: int,
) -> DomainAcceptance:
    """Scale one domain's position-1 rate until its accept length at the measured
    configuration matches (bisection: the accept length grows with the rate)."""
    base_rate = _chain_rate(params)
    others = tuple((d, p) for d, p in target.acceptance if d != measured.domain)

    def gap(scale: float) -> float:
        p = _with_rate(params, min(1.0, base_rate * scale), params.depth_decay)
        acc = (*others, (measured.domain, p))
        return (
            _tau(target, hardware, acc, measured.config, measured.domain, samples)
            - measured.mean_tau
        )

    lo, hi = 0.05, _MAX_RATE / base_rate
    if gap(lo) >= 0:
        scale = lo
    elif gap(hi) <= 0:
        scale = hi
    else:
        scale = brentq(gap, lo, hi, xtol=1e-4)
    return _with_rate(params, min(1.0, base_rate * scale), params.depth_decay)
