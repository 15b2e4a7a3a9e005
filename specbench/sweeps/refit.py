"""Calibration in the loop: the model refitted to what the sweep measured, after each trial.

The prior model is always somewhat wrong on a real machine, and a search that trusts it
blindly is no cheaper than a grid when it is wrong. Every measured configuration says
two things the model predicted: its accept length tau (how good the draft is here) and
its step-time ratio ``tau / speedup`` (what a speculative step costs here against a plain
one). The refit corrects both, from everything measured so far:

* acceptance: ``tau - 1 = a * (tau_prior - 1) ** b`` (least squares in logs; ``b`` = 1
  until six configurations are measured), so a draft that accepts less than the prior
  thought, or whose acceptance grows more slowly with the tree, is priced as measured;
* cost: the cost model's seven scales (all-reduce latency and bandwidth, HBM and compute
  efficiency, per-layer, draft and speculative overheads; model.cost.CostScales) fitted
  to the measured step-time ratios by regularised least squares, each held near 1 by a
  prior width, so a few measurements move the model only as far as they say.

The interval of an unmeasured configuration's speedup comes from the cost fit's
covariance (Gauss-Newton at the fit, draws of the scales) and the noise, whichever is
wider; the search proposes the unmeasured configuration with the highest upper bound. It
is settled when no unmeasured configuration's upper bound beats the best measured
speedup by more than the noise: measuring more could not change the recommendation by
more than the noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from specbench.model.cost import CostModel, CostScales
from specbench.model.performance import PerformanceModel
from specbench.spec_config import SpecConfig

#: Measured configurations before the refit takes the full shape (b, three cost weights).
FULL_FIT_AT = 6
#: Draws of the cost scales behind each interval.
DRAWS = 64
#: Prior width (a factor, one sigma) of each cost scale, in CostScales order: all-reduce
#: latency and bandwidth vary most between machines (NVLink, P2P, host-staged PCIe).
_SCALE_WIDTH = np.array([3.0, 3.0, 1.3, 1.3, 1.5, 1.5, 1.5])
#: Default relative noise of one measured speedup (one sigma).
DEFAULT_NOISE = 0.01


@dataclass(frozen=True)
class Ranked:
    """The refit model's speedup for one unmeasured configuration, with its interval."""

    config: SpecConfig
    speedup: float
    low: float
    high: float


@dataclass(frozen=True)
class Settled:
    """Why the search stopped: the model's best unmeasured and the best measured."""

    launches: int
    best_measured: SpecConfig
    best_measured_speedup: float
    best_unmeasured: Ranked | None

    def describe(self) -> str:
        if self.best_unmeasured is None:
            return f"settled after {self.launches} launches: every configuration measured"
        below = 1.0 - self.best_unmeasured.speedup / self.best_measured_speedup
        return (
            f"settled after {self.launches} launches: the model's best unmeasured "
            f"({self.best_unmeasured.config.key}) is {below:.1%} below the best measured "
            f"({self.best_measured.key}, {self.best_measured_speedup:.2f}x)"
        )


@dataclass
class InLoopModel:
    """The prior's predictions for a space at one concurrency, refitted as trials land."""

    prior: PerformanceModel
    configs: Sequence[SpecConfig]
    concurrency: int
    noise: float = DEFAULT_NOISE
    seed: int = 0
    _taus: dict[SpecConfig, float] = field(init=False, default_factory=dict)
    _measured: dict[SpecConfig, tuple[float, float | None]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for c in self.configs:
            self._taus[c] = self.prior.expected_tau(c)

    # -- measurements ------------------------------------------------------------
    def add(self, config: SpecConfig, speedup: float, tau: float | None = None) -> None:
        """One measured configuration: its speedup and, where known, its tau."""
        if config not in self._taus:
            self._taus[config] = self.prior.expected_tau(config)
        if not math.isfinite(speedup) or speedup <= 0:
            return
        ok_tau = tau if tau is not None and math.isfinite(tau) and tau >= 1.0 else None
        self._measured[config] = (float(speedup), ok_tau)

    @property
    def measured(self) -> int:
        return len(self._measured)

    def best_measured(self) -> tuple[SpecConfig, float] | None:
        if not self._measured:
            return None
        config = max(self._measured, key=lambda c: self._measured[c][0])
        return config, self._measured[config][0]

    # -- the refit ---------------------------------------------------------------
    def _ratios(self, configs: Sequence[SpecConfig], log_scales: np.ndarray) -> np.ndarray:
        """Speculative over plain step time of `configs` under exp(log_scales)."""
        p = self.prior
        cost = CostModel(
            p.target,
            p.hardware,
            CostScales(*np.exp(log_scales)),
            engine=p.engine,
            context_tokens=p.cost.context_tokens,
            draft_tp=p.cost.draft_tp,
        )
        b = np.asarray(float(self.concurrency))
        steps = cost.spec_step_s(
            np.array([c.num_steps for c in configs], dtype=float),
            np.array([c.topk for c in configs], dtype=float),
            np.array([c.num_draft_tokens for c in configs], dtype=float),
            b,
        )
        out: np.ndarray = steps / cost.baseline_step_s(b)
        return out

    def _fit_cost(
        self, configs: Sequence[SpecConfig], ratios: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log cost scales at the fit and their covariance."""
        width = np.log(_SCALE_WIDTH)

        def residuals(x: np.ndarray) -> np.ndarray:
            fit = np.log(self._ratios(configs, x) / ratios) / self.noise
            return np.concatenate([fit, x / width])

        fit = least_squares(residuals, np.zeros(len(_SCALE_WIDTH)), method="lm", x_scale=width)
        jac = fit.jac
        try:
            cov = np.linalg.inv(jac.T @ jac)
        except np.linalg.LinAlgError:
            cov = np.diag(width**2)
        misfit = float(np.mean(fit.fun[: len(configs)] ** 2)) if len(configs) > 1 else 1.0
        return fit.x, cov * max(1.0, misfit)

    def _fit_acceptance(
        self, configs: Sequence[SpecConfig], taus: np.ndarray
    ) -> tuple[float, float]:
        """(a, b) of ``tau - 1 = a (tau_prior - 1) ** b``."""
        prior_gain = np.array([max(self._taus[c] - 1.0, 1e-6) for c in configs])
        gain = np.maximum(taus - 1.0, 1e-6)
        if len(configs) >= FULL_FIT_AT and np.ptp(np.log(prior_gain)) > 1e-6:
            b = float(np.clip(np.polyfit(np.log(prior_gain), np.log(gain), 1)[0], 0.3, 3.0))
        else:
            b = 1.0
        return float(np.exp(np.mean(np.log(gain) - b * np.log(prior_gain)))), b

    def _taus_for(self, configs: Sequence[SpecConfig], acc: tuple[float, float]) -> np.ndarray:
        a, b = acc
        gain = np.array([max(self._taus[c] - 1.0, 1e-6) for c in configs])
        out: np.ndarray = 1.0 + a * gain**b
        return out

    def ranked(self) -> list[Ranked]:
        """Unmeasured configurations, highest upper bound first (the prior alone, with
        the noise as its interval, before anything is measured)."""
        unmeasured = [c for c in self._taus if c not in self._measured]
        if not unmeasured:
            return []
        if not self._measured:
            tau = np.array([self._taus[c] for c in unmeasured])
            centre = tau / self._ratios(unmeasured, np.zeros(len(_SCALE_WIDTH)))
            return sorted(
                (
                    Ranked(c, float(v), float(v), float(v))
                    for c, v in zip(unmeasured, centre, strict=True)
                ),
                key=lambda r: -r.high,
            )
        configs = list(self._measured)
        speedups = np.array([self._measured[c][0] for c in configs])
        taus = np.array([self._measured[c][1] or self._taus[c] for c in configs])
        acc = self._fit_acceptance(configs, taus)
        x, cov = self._fit_cost(configs, taus / speedups)
        tau = self._taus_for(unmeasured, acc)
        centre = tau / self._ratios(unmeasured, x)
        rng = np.random.default_rng([self.seed, len(configs)])
        draws = np.array(
            [
                tau / self._ratios(unmeasured, d)
                for d in rng.multivariate_normal(x, cov, size=DRAWS, check_valid="ignore")
            ]
        )
        band = 2.0 * self.noise * centre
        low = np.minimum(np.percentile(draws, 2.5, axis=0), centre - band)
        high = np.maximum(np.percentile(draws, 97.5, axis=0), centre + band)
        out = [
            Ranked(c, float(m), float(lo), float(hi))
            for c, m, lo, hi in zip(unmeasured, centre, low, high, strict=True)
        ]
        return sorted(out, key=lambda r: -r.high)

    # -- the search's questions --------------------------------------------------
    def next_config(self) -> SpecConfig | None:
        ranked = self.ranked()
        return ranked[0].config if ranked else None

    def settled(self, launches: int) -> Settled | None:
        """Settled when no unmeasured configuration's upper bound beats the best measured
        by more than the noise (or nothing is left to measure)."""
        best = self.best_measured()
        if best is None:
            return None
        ranked = self.ranked()
        top = max(ranked, key=lambda r: r.speedup) if ranked else None
        if ranked and ranked[0].high > best[1] * (1.0 + self.noise):
            return None
        return Settled(launches, best[0], best[1], top)


__all__ = ["InLoopModel", "Ranked", "Settled"]
