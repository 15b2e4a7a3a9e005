"""What the gate decides: its options, one row per (configuration, concurrency), the result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from specbench.errors import BadInputError
from specbench.gate.picks import PickComparison

METRIC_TAU = "tau"
METRIC_TOKENS_PER_S = "output_tokens_per_s"
METRIC_SPEEDUP = "speedup"
#: A configuration the baseline measured but whose candidate run failed (server crash).
METRIC_COMPLETED = "completed"

#: Display names (units in the name, as everywhere else).
METRIC_LABELS: dict[str, str] = {
    METRIC_TAU: "tau",
    METRIC_TOKENS_PER_S: "tok/s per request",
    METRIC_SPEEDUP: "speedup",
    METRIC_COMPLETED: "run completed",
    "slo_rate_per_s": "SLO-rate (req/s)",
    "goodput_per_s": "goodput (req/s)",
}

DEFAULT_MAX_TAU_DROP = 0.03
DEFAULT_MAX_SPEEDUP_DROP = 0.05
DEFAULT_ALPHA = 0.002


class Status(str, Enum):
    """Verdict of one row; only REGRESSION fails the gate."""

    PASS = "pass"
    REGRESSION = "regression"
    INSIGNIFICANT = "insignificant"
    IMPROVED = "improved"
    INFO = "info"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_SYMBOLS = {
    Status.PASS: "✓",
    Status.REGRESSION: "✗ REGRESSION",
    Status.INSIGNIFICANT: "~ insignificant",
    Status.IMPROVED: "↑ improved",
    Status.INFO: "· info",
}


@dataclass(frozen=True)
class GateOptions:
    """What to compare and how strict to be. Thresholds are fractions (0.03 = 3%)."""

    configs: tuple[str, ...] = ()  # config keys such as "3-4-8"; empty = every one
    concurrencies: tuple[int, ...] = ()  # empty = every one
    max_tau_drop: float = DEFAULT_MAX_TAU_DROP
    max_speedup_drop: float = DEFAULT_MAX_SPEEDUP_DROP
    #: Threshold of per-request tokens/s; None = the speedup threshold.
    max_tokens_per_s_drop: float | None = None
    #: Threshold of a configuration's SLO-rate (rate loads); None = the speedup threshold.
    max_slo_rate_drop: float | None = None
    alpha: float = DEFAULT_ALPHA
    force: bool = False

    def threshold(self, metric: str) -> float:
        if metric == METRIC_TAU:
            return self.max_tau_drop
        if metric == METRIC_TOKENS_PER_S and self.max_tokens_per_s_drop is not None:
            return self.max_tokens_per_s_drop
        if metric == "slo_rate_per_s" and self.max_slo_rate_drop is not None:
            return self.max_slo_rate_drop
        return self.max_speedup_drop

    def validate(self) -> None:
        for name in (
            "max_tau_drop",
            "max_speedup_drop",
            "max_tokens_per_s_drop",
            "max_slo_rate_drop",
        ):
            value = getattr(self, name)
            if value is not None and not (0.0 <= value < 1.0):
                raise BadInputError(
                    f"--{name.replace('_', '-')} must be between 0% and 100% (got {value:.4g})"
                )
        if not (0.0 < self.alpha < 0.5):
            raise BadInputError(f"--alpha must be between 0 and 0.5 (got {self.alpha:.4g})")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GateRow:
    """One metric of one (configuration, concurrency): values, change, test, verdict."""

    metric: str
    config_key: str
    concurrency: int
    baseline_value: float
    candidate_value: float
    change: float  # candidate / baseline - 1
    threshold: float
    status: Status
    method: str  # gate_stats.METHOD_* or "" for informational rows
    p_value: float | None
    n_baseline: int
    n_candidate: int
    statistic: str  # "median" (of per-request samples) | "aggregate"
    ci_baseline: tuple[float, float] | None = None
    ci_candidate: tuple[float, float] | None = None
    note: str = ""

    @property
    def name(self) -> str:
        """ "tau 3-4-8 c=8"; a rate-load row (concurrency 0) names no concurrency."""
        where = f" c={self.concurrency}" if self.concurrency else ""
        return f"{self.metric} {self.config_key}{where}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "config_key": self.config_key,
            "concurrency": self.concurrency,
            "baseline_value": self.baseline_value,
            "candidate_value": self.candidate_value,
            "change": self.change,
            "threshold": self.threshold,
            "status": self.status.value,
            "method": self.method,
            "p_value": self.p_value,
            "n_baseline": self.n_baseline,
            "n_candidate": self.n_candidate,
            "statistic": self.statistic,
            "ci_baseline": list(self.ci_baseline) if self.ci_baseline else None,
            "ci_candidate": list(self.ci_candidate) if self.ci_candidate else None,
            "note": self.note,
        }


@dataclass
class GateResult:
    """Every compared row plus what could not be compared and why."""

    rows: list[GateRow]
    not_compared: list[str]
    baseline: dict[str, Any]  # GateSide.summary()
    candidate: dict[str, Any]
    options: GateOptions
    workload_differences: list[str] = field(default_factory=list)
    hardware_differences: list[str] = field(default_factory=list)
    forced: bool = False
    #: The two runs' recommended launches compared; None when a run has no verdict.
    picks: PickComparison | None = None

    @property
    def regressions(self) -> list[GateRow]:
        return [r for r in self.rows if r.status is Status.REGRESSION]

    @property
    def simulated(self) -> bool:
        return bool(self.baseline["simulated"] or self.candidate["simulated"])

    @property
    def passed(self) -> bool:
        return not self.regressions

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def count(self, status: Status) -> int:
        return sum(1 for r in self.rows if r.status is status)

    def summary_line(self) -> str:
        """The answer in one line, printed first: PASS/FAIL, why, and the counts."""
        parts = [f"{len(self.rows)} checks"]
        for status in Status:
            n = self.count(status)
            if n:
                parts.append(f"{n} {status.value}")
        verdict = "FAIL" if self.regressions else "PASS"
        sim = " (SIMULATED)" if self.simulated else ""
        return f"gate {verdict}{sim}: {self.reason()} ({', '.join(parts)})"

    def reason(self) -> str:
        """Why the gate passed or failed, naming the worst regression."""
        bad = self.regressions
        if not bad:
            return "no metric dropped past its threshold with a significant test"
        worst = min(bad, key=lambda r: r.change if math.isfinite(r.change) else -math.inf)
        what = (
            f"{worst.config_key} c={worst.concurrency} failed to run"
            if worst.metric == METRIC_COMPLETED
            else f"{METRIC_LABELS.get(worst.metric, worst.metric)} {worst.config_key} "
            f"c={worst.concurrency} {worst.change:+.1%}"
        )
        noun = "metric" if len(bad) == 1 else "metrics"
        return f"{len(bad)} {noun} regressed beyond noise, the worst {what}"

    def to_rows(self) -> list[dict[str, Any]]:
        """Pandas-friendly rows."""
        return [r.as_dict() for r in self.rows]


def shorten_difference(difference: str, limit: int = 24) -> str:
    """Shorten long values (hashes) in a fingerprint difference, keep the field name."""
    name, _, rest = difference.partition(": ")
    parts = rest.split(" != ")
    if len(parts) != 2:
        return difference
    return f"{name}: " + " != ".join(
        p if len(p) <= limit else p[: limit - 4] + "...'" for p in parts
    )


def parse_threshold(text: str, *, option: str = "threshold") -> float:
    """``"3%"`` or ``"0.03"`` as a fraction; a bare number >= 1 is refused as ambiguous."""
    raw = text.strip()
    try:
        if raw.endswith("%"):
            value = float(raw[:-1]) / 100.0
        else:
            value = float(raw)
            if value >= 1.0:
                raise BadInputError(
                    f"{option} {text!r} is ambiguous: write a percentage such as "
                    f"'{raw}%' or a fraction such as '{value / 100:g}'"
                )
    except ValueError:
        raise BadInputError(f"{option}: cannot read {text!r}: expected e.g. 3% or 0.03") from None
    if not (0.0 <= value < 1.0) or math.isnan(value):
        raise BadInputError(f"{option} {text!r} must be between 0% and 100%")
    return value
