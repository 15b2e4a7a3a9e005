"""The loads a sweep measures, resolved once from ``--load``, ``--arrival``,
``--max-concurrency`` and ``--slo``.

``--load concurrency:1,8,32`` is today's ``--concurrency`` and resolves into the sweep's
concurrencies. ``--load rate:...`` and ``--load sweep`` add open-loop rate loads: every
configuration (the baseline first) is measured at the same rates, with the same
prompts, send times and seeds, so the comparison is paired. The closed-loop
concurrencies are still measured (the CLI narrows them to ``1`` unless ``--concurrency``
is given): they measure tau and the single-stream speedup the verdict, the report and the
gate are built on, and the rate loads add what a deployed server sees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from specbench.errors import BadInputError
from specbench.harness.loads import (
    ConcurrencyLoad,
    RampLoad,
    RateLoad,
    RateSweepPlan,
    parse_load,
)
from specbench.harness.slo import Objective, parse_objectives
from specbench.limits import MAX_NUM_PROMPTS
from specbench.sweeps.options import SweepOptions

#: Requests per rate load at least: a queue needs more than a handful of arrivals to
#: form, and a p99 of 16 requests is their maximum. ``--num-prompts`` raises it.
MIN_RATE_REQUESTS = 32
#: Seconds a rate load sends for at least: several times a request's own latency, so
#: that a queue reaches its steady state instead of the load being one burst.
MIN_RATE_WINDOW_S = 30.0
#: The arrival process when ``--arrival`` is not given (vllm bench serve's default).
DEFAULT_ARRIVAL = "poisson"


@dataclass(frozen=True)
class RatePlan:
    """The rate loads of one sweep and its latency objectives.

    ``loads`` are named rates; with ``--load sweep`` they are empty and ``sweep`` says
    how many rates to spread up to the baseline's saturation rate (measured once per
    study and stored, so every worker and every resume uses the same rates).
    """

    loads: tuple[RateLoad, ...]
    sweep: RateSweepPlan | None
    objectives: tuple[Objective, ...]
    #: Requests of the lowest-rate load; a faster load sends
    #: for :data:`MIN_RATE_WINDOW_S` at least (see ``requests_for``).
    requests_per_load: int

    def requests_for(self, load: RateLoad) -> int:
        """Requests ``load`` sends: every prompt, and at least a window's worth."""
        window = math.ceil(load.rate_per_s * MIN_RATE_WINDOW_S)
        return min(MAX_NUM_PROMPTS, max(self.requests_per_load, window))

    def describe(self) -> dict[str, Any]:
        """What the manifest keeps: a resume with other rates or SLOs is another sweep."""
        sweep = self.sweep
        return {
            "loads": [load.to_dict() for load in self.loads],
            "sweep": None
            if sweep is None
            else {
                "rates": sweep.count,
                "arrival": sweep.arrival.name,
                "seed": sweep.seed,
                "max_concurrency": sweep.max_concurrency,
            },
            "slo": {o.name: o.limit_ms for o in self.objectives},
            "requests_per_load": self.requests_per_load,
            "min_window_s": MIN_RATE_WINDOW_S,
        }

    def slo_text(self) -> str:
        """The objectives as the headline says them: "p99 TPOT 50 ms, p99 TTFT 2000 ms"."""
        return ", ".join(o.describe() for o in self.objectives)

    def banner(self) -> str:
        """The rate loads in one phrase, for the sweep's banner."""
        if self.sweep is not None:
            what = f"{self.sweep.count} rates up to the baseline's saturation ({self.sweep.arrival.name})"
        else:
            rates = ",".join(f"{load.rate_per_s:g}" for load in self.loads)
            what = f"rates {rates} req/s ({self.loads[0].arrival.name})"
        slo = f", within {self.slo_text()}" if self.objectives else ""
        return (
            f"{what}, {MIN_RATE_WINDOW_S:g} s or {self.requests_per_load} requests each "
            f"(the longer){slo}"
        )


def rate_requests(num_prompts: int) -> int:
    """Requests per rate load: every prompt at least once, and at least
    :data:`MIN_RATE_REQUESTS`."""
    return max(num_prompts, MIN_RATE_REQUESTS)


def resolve_loads(options: SweepOptions, num_prompts: int) -> tuple[SweepOptions, RatePlan | None]:
    """The options with ``--load concurrency:`` folded into the concurrencies, and the
    rate plan (None without rate loads); one BadInputError line for anything wrong."""
    rate_only = {
        "--arrival": options.arrival,
        "--max-concurrency": options.max_concurrency,
        "--slo": options.slo,
    }
    if options.load is None:
        given = [flag for flag, value in rate_only.items() if value is not None]
        if given:
            raise BadInputError(
                f"{given[0]} applies to request-rate loads; add --load rate:R[,R...] or --load sweep"
            )
        return options, None
    parsed = parse_load(
        options.load,
        arrival=options.arrival or DEFAULT_ARRIVAL,
        seed=options.seed,
        max_concurrency=options.max_concurrency,
    )
    if isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], RampLoad):
        given = [flag for flag, value in rate_only.items() if value is not None]
        if given:
            raise BadInputError(f"{given[0]} applies to request-rate loads, not to a ramp")
        return dataclasses.replace(options, ramp=parsed[0].phases, load=None), None
    if isinstance(parsed, list) and all(isinstance(p, ConcurrencyLoad) for p in parsed):
        given = [flag for flag, value in rate_only.items() if value is not None]
        if given:
            raise BadInputError(
                f"{given[0]} applies to request-rate loads, not to --load {options.load}"
            )
        levels = tuple(p.concurrency for p in parsed if isinstance(p, ConcurrencyLoad))
        return dataclasses.replace(options, concurrencies=levels, load=None), None
    objectives = tuple(parse_objectives(options.slo)) if options.slo else ()
    rates = [p for p in parsed if isinstance(p, RateLoad)] if isinstance(parsed, list) else []
    _check_distinct(rates)
    plan = RatePlan(
        loads=tuple(rates),
        sweep=parsed if isinstance(parsed, RateSweepPlan) else None,
        objectives=objectives,
        requests_per_load=rate_requests(num_prompts),
    )
    return options, plan


def _check_distinct(rates: Sequence[RateLoad]) -> None:
    seen: set[float] = set()
    for load in rates:
        if load.rate_per_s in seen:
            raise BadInputError(f"--load rate: {load.rate_per_s:g} is given twice")
        seen.add(load.rate_per_s)


__all__ = [
    "DEFAULT_ARRIVAL",
    "MIN_RATE_REQUESTS",
    "RatePlan",
    "rate_requests",
    "resolve_loads",
]
