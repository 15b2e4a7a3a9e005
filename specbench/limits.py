"""Sane maxima for every size a user can type, checked once at the CLI boundary.

Unchecked sizes turn a typo into a resource incident: ``--concurrency 1000000`` opens a
million streams and writes gigabytes of records, ``--max-new-tokens 100000000`` asks a
server for a hundred million tokens per request. Each bound is far above any real use
(SGLang's own ``--max-running-requests`` defaults are in the hundreds, the longest context
windows of served models are about a million tokens) and far below the point where the
machine running specbench suffers. One table, so that ``sweep``, ``predict``, ``gate`` and
``serve-sim`` accept and reject the same values with the same one-line message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from specbench.errors import BadInputError


@dataclass(frozen=True)
class Bound:
    """The accepted closed range of one option, and its unit for the message."""

    low: float
    high: float
    unit: str = ""

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{_number(self.low)}..{_number(self.high)}{unit}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: Concurrent streams: SGLang caps its running batch at a few hundred to a few thousand.
MAX_CONCURRENCY = 4096
#: Tokens per answer: above the longest context window of any served model (1M).
MAX_NEW_TOKENS = 1_048_576
#: Prompts per load.
MAX_NUM_PROMPTS = 100_000
#: Configurations in one study.
MAX_TRIALS = 100_000
#: Re-measurements of a load flagged noisy (0: never): more than this only hides a
#: machine that is never quiet.
MAX_REPEATS = 5
#: Expected launch time of one server: SGLang's own tests allow up to an hour for a large
#: model on H200; four is a generous ceiling for the estimate.
MAX_LAUNCH_TIME_S = 4 * 3600.0
#: A week: no single wait (a request, a server start) is longer than that on purpose.
MAX_TIMEOUT_S = 7 * 24 * 3600.0
#: Tensor parallel size: the largest NVLink domains hold 72 GPUs.
MAX_TP = 1024
#: Offered request rate (requests/s): far above what one server answers (a few hundred
#: short requests a second) and within what one client core can time (see
#: benchmarks/send_accuracy.py).
MAX_REQUEST_RATE = 10_000.0
#: Lowest offered rate: one request every ~17 minutes is a trickle, not a load.
MIN_REQUEST_RATE = 0.001
#: Rates in one ``--load rate:`` list or measured by one ``--load sweep``.
MAX_RATES = 64
#: A latency objective: a day, in milliseconds.
MAX_SLO_MS = 86_400_000.0

BOUNDS: dict[str, Bound] = {
    "--concurrency": Bound(1, MAX_CONCURRENCY),
    "--max-new-tokens": Bound(1, MAX_NEW_TOKENS, "tokens"),
    "--num-prompts": Bound(1, MAX_NUM_PROMPTS),
    "--trials": Bound(1, MAX_TRIALS),
    "--repeats": Bound(0, MAX_REPEATS),
    "--launch-time-estimate": Bound(0.001, MAX_LAUNCH_TIME_S, "s"),
    "--request-timeout": Bound(0.001, MAX_TIMEOUT_S, "s"),
    "--ready-timeout": Bound(0.001, MAX_TIMEOUT_S, "s"),
    # Any positive budget: one far below a trial's duration still measures one trial.
    "--budget-minutes": Bound(1e-6, MAX_TIMEOUT_S / 60.0, "minutes"),
    "--storage-retry": Bound(0, MAX_TIMEOUT_S, "s"),
    "--port": Bound(1, 65535),
    "--tp": Bound(1, MAX_TP),
    "--time-scale": Bound(1e-4, 1e4),
    "--startup-delay": Bound(0, MAX_TIMEOUT_S, "s"),
    "--sim-perturbation": Bound(0, 10),
    "--load rate": Bound(MIN_REQUEST_RATE, MAX_REQUEST_RATE, "requests/s"),
    "--rate": Bound(MIN_REQUEST_RATE, MAX_REQUEST_RATE, "requests/s"),
    "--max-concurrency": Bound(1, MAX_CONCURRENCY),
    "--slo": Bound(0.001, MAX_SLO_MS, "ms"),
    "--sweep-rates": Bound(2, MAX_RATES),
}


def check_bound(option: str, value: float | None) -> None:
    """Raise one BadInputError line when ``value`` is outside the option's range.

    None (an unset optional value) passes; NaN and infinities never do, because a float
    option parsed from text accepts ``nan`` and ``inf``.
    """
    if value is None:
        return
    bound = BOUNDS[option]
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInputError(f"{option} must be a finite number in {bound.describe()}")
    unit = f" {bound.unit}" if bound.unit else ""
    if value < bound.low:
        raise BadInputError(
            f"{option} must be >= {_number(bound.low)}{unit} (got {_number(value)})"
        )
    if value > bound.high:
        raise BadInputError(
            f"{option} must be <= {_number(bound.high)}{unit} (got {_number(value)}); "
            f"the accepted range is {bound.describe()}"
        )


def check_bounds(values: dict[str, float | None]) -> None:
    """Check several options at once, in the order given (the first offender is named)."""
    for option, value in values.items():
        check_bound(option, value)


__all__ = [
    "BOUNDS",
    "MAX_CONCURRENCY",
    "MAX_LAUNCH_TIME_S",
    "MAX_NEW_TOKENS",
    "MAX_NUM_PROMPTS",
    "MAX_RATES",
    "MAX_REPEATS",
    "MAX_REQUEST_RATE",
    "MAX_SLO_MS",
    "MAX_TIMEOUT_S",
    "MAX_TP",
    "MAX_TRIALS",
    "MIN_REQUEST_RATE",
    "Bound",
    "check_bound",
    "check_bounds",
]
