"""Rates found by measuring: a server's saturation rate, and the highest rate served within SLOs.

``--load sweep`` first measures a burst (every request due at once, at the bound rate;
guidellm's sweep starts with such a throughput run) and takes the finished requests per
second as the saturation rate. A configuration's SLO-rate is then found by bisection on
the offered rate: the highest rate whose load meets every objective. Latency grows with
the offered rate (queueing), so "meets" is monotone up to measurement noise, and the
bisection stops at a relative width of :data:`RATE_TOLERANCE`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from specbench.errors import BadInputError
from specbench.harness.loads import ConstantArrival, RateLoad
from specbench.harness.rate_metrics import RateSummary
from specbench.harness.slo import Objective
from specbench.limits import MAX_REQUEST_RATE

#: The bisection stops when its bracket is narrower than this fraction of the rate.
RATE_TOLERANCE = 0.02
#: Measurements one bisection takes at most (each is a whole load).
MAX_BISECTION_STEPS = 12

#: Runs one rate load on one configuration and summarises it.
MeasureRate = Callable[[RateLoad], RateSummary]


def saturation_rate(
    measure: MeasureRate, *, seed: int = 0, max_concurrency: int | None = None
) -> float:
    """Requests per second a server finishes when every request is due at once.

    Raises BadInputError when that is at the rate bound: the server never saturated
    within what the client may offer, so no rate up to it says anything.
    """
    burst = RateLoad(MAX_REQUEST_RATE, ConstantArrival(), seed, max_concurrency)
    rate = measure(burst).completed_per_s
    if rate <= 0:
        raise BadInputError("--load sweep: the burst load finished no request")
    if rate >= 0.95 * MAX_REQUEST_RATE:
        raise BadInputError(
            f"--load sweep: the server kept up with {rate:.4g} req/s, the rate bound; "
            "it never saturates within it (name rates with --load rate:...)"
        )
    return rate


@dataclass
class SloRate:
    """The highest offered rate found to meet every objective, and the loads measured."""

    rate_per_s: float
    #: The rate is the top of the searched range: the true SLO-rate may be higher.
    at_top: bool = False
    #: The lowest rate found to miss an objective (None: none missed): the SLO-rate
    #: lies between ``rate_per_s`` and it.
    high_per_s: float | None = None
    measured: list[RateSummary] = field(default_factory=list)


def slo_rate(
    measure: MeasureRate,
    make_load: Callable[[float], RateLoad],
    objectives: Sequence[Objective],
    top_per_s: float,
    *,
    known_low: float = 0.0,
    known_high: float | None = None,
) -> SloRate:
    """Bisection on the offered rate in (0, ``top_per_s``]; 0 when even a trickle fails.

    ``known_low`` / ``known_high``: rates already measured to meet / to miss the
    objectives (a ``--load sweep``'s evenly spaced loads), which narrow the bracket
    before the first bisection step; with ``known_high`` the top is not measured again.
    """
    if not objectives:
        raise ValueError("slo_rate() needs at least one objective")
    found = SloRate(known_low)

    def meets(rate: float) -> bool:
        summary = measure(make_load(rate))
        found.measured.append(summary)
        return bool(summary.slo_met)

    if known_high is None and meets(top_per_s):
        found.rate_per_s, found.at_top = top_per_s, True
        return found
    low, high = known_low, top_per_s if known_high is None else known_high
    for _ in range(MAX_BISECTION_STEPS):
        if high - low <= RATE_TOLERANCE * high:
            break
        mid = (low + high) / 2.0
        if meets(mid):
            low = mid
        else:
            high = mid
    found.rate_per_s, found.high_per_s = low, high
    return found


__all__ = [
    "MAX_BISECTION_STEPS",
    "RATE_TOLERANCE",
    "MeasureRate",
    "SloRate",
    "saturation_rate",
    "slo_rate",
]
