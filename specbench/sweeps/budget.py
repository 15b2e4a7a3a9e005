"""GPU time as the cost of a sweep: the wall-time estimate and early stopping.

A large model's launch takes minutes (SGLang's own tests allow 600 s, up to an hour on
H200), far more than measuring a configuration, so a launch-mode sweep costs about
``(trials + 1) * (launch + measure)`` (the +1 is the baseline server). The estimate is
printed before the first launch so that a user can stop a sweep they cannot afford.

Early stopping follows Optuna's pruning semantics (optuna.trial.Trial.report /
should_prune, optuna.pruners): a trial reports an intermediate value per step (here:
the speedup at each concurrency, lowest first) and is stopped when that value is
clearly worse than what the best trial reached at the same step. "Clearly" is decided
by confidence intervals, not by point values: the trial's upper bound must lie below
the best trial's lower bound, so measurement noise alone never prunes a configuration
that might be the best.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Default launch time of one server, seconds: a large MoE model with an EAGLE3 draft.
DEFAULT_LAUNCH_TIME_S = 300.0


@dataclass(frozen=True)
class LoadCost:
    """One closed-loop load: how many requests of how many tokens, at what pace."""

    concurrency: int
    requests: int
    max_new_tokens: int
    #: Tokens per second one stream sees (a prediction or an earlier measurement).
    per_stream_tokens_per_s: float
    warmup_requests: int = 0

    def seconds(self) -> float:
        """Waves of ``concurrency`` requests, each ``max_new_tokens`` long."""
        if self.per_stream_tokens_per_s <= 0 or not math.isfinite(self.per_stream_tokens_per_s):
            return math.nan
        waves = math.ceil(self.requests / self.concurrency) + math.ceil(
            self.warmup_requests / self.concurrency
        )
        return waves * self.max_new_tokens / self.per_stream_tokens_per_s


@dataclass(frozen=True)
class WallTimeEstimate:
    """Estimated wall time of a launch-mode sweep, with its parts."""

    trials: int
    launch_s: float
    measure_s: float
    #: "estimate" (the --launch-time-estimate value) or "measured" (a real launch).
    launch_source: str
    #: Whether the baseline's server is still to be started.
    with_baseline: bool = True

    @property
    def servers(self) -> int:
        """Servers started: one per trial, plus the baseline's."""
        return self.trials + int(self.with_baseline)

    @property
    def total_s(self) -> float:
        return self.servers * (self.launch_s + self.measure_s)

    def describe(self) -> str:
        launch = f"{format_duration(self.launch_s)} launch ({self.launch_source})"
        parts = (
            f"{self.trials} trials + baseline" if self.with_baseline else f"{self.trials} trials"
        )
        return (
            f"estimated wall time {format_duration(self.total_s)}: {self.servers} servers "
            f"({parts}) x ({launch} + {format_duration(self.measure_s)} measuring)"
        )


def estimate_wall_time(
    trials: int,
    loads: Sequence[LoadCost],
    *,
    launch_s: float = DEFAULT_LAUNCH_TIME_S,
    launch_source: str = "estimate",
    with_baseline: bool = True,
) -> WallTimeEstimate:
    """``trials x (launch + measure)``, plus the baseline's server unless it has run."""
    if trials < 0:
        raise ValueError(f"trials must be >= 0 (got {trials})")
    measure = sum(load.seconds() for load in loads)
    return WallTimeEstimate(trials, launch_s, measure, launch_source, with_baseline)


def format_duration(seconds: float) -> str:
    """``42 s``, ``7.5 min``, ``3.2 h``."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class Interval:
    """A speedup with its confidence interval at one concurrency."""

    value: float
    low: float
    high: float

    @property
    def known(self) -> bool:
        return all(math.isfinite(v) for v in (self.value, self.low, self.high))


def prune_reason(
    mine: Interval,
    best_by_config: Mapping[str, Interval],
    concurrency: int,
) -> str | None:
    """Why to stop measuring a configuration after this load (None: keep going).

    ``best_by_config``: the other configurations' intervals at the same concurrency.
    Prune only when this configuration's upper bound is below the lower bound of the
    best one (by point value): clearly worse, not just worse by noise.
    """
    candidates = {key: iv for key, iv in best_by_config.items() if iv.known}
    if not mine.known or not candidates:
        return None
    best_key, best = max(candidates.items(), key=lambda item: item[1].value)
    if mine.high < best.low:
        return (
            f"pruned after concurrency {concurrency}: speedup {mine.value:.3f} "
            f"(95% CI {mine.low:.3f}-{mine.high:.3f}) is clearly below {best_key} "
            f"{best.value:.3f} (CI {best.low:.3f}-{best.high:.3f})"
        )
    return None


__all__ = [
    "DEFAULT_LAUNCH_TIME_S",
    "Interval",
    "LoadCost",
    "WallTimeEstimate",
    "estimate_wall_time",
    "format_duration",
    "prune_reason",
]
